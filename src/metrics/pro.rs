//! AU-PRO: the area under the per-region-overlap curve up to a false-positive-rate
//! limit, computed exactly as the MVTec AD evaluation does.
//!
//! Ground-truth regions are the 8-connected components of each mask. Every distinct
//! score is a threshold t; at t, PRO is the mean over all regions of all images of the
//! fraction of the region's pixels scoring >= t, and FPR is the fraction of all good
//! pixels of all images scoring >= t. The curve starts at (0, 0); PRO is integrated
//! over FPR with the trapezoid rule up to the limit, the curve interpolated linearly at
//! exactly FPR = limit, and the area divided by the limit (a perfect map gives 1).

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::metrics::pixel::check_pairs;
use crate::metrics::regions::Regions;

/// The FPR limit of the published AU-PRO numbers (method.md section 7).
pub const DEFAULT_FPR_LIMIT: f64 = 0.3;

/// AU-PRO of the anomaly maps against their masks (true = defect), normalised by
/// `fpr_limit` in (0, 1]. Errors for invalid pairs, no defect region in any mask, or no
/// good pixel in any mask. Sorts all pixels once and updates the overlap incrementally.
pub fn au_pro(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>], fpr_limit: f64) -> Result<f64> {
    if !(fpr_limit > 0.0 && fpr_limit <= 1.0) {
        return Err(Error::invalid(format!(
            "AU-PRO: the FPR limit must lie in (0, 1], not {fpr_limit}"
        )));
    }
    check_pairs(maps, masks)?;
    let (mut pixels, inverse_sizes) = label_pixels(maps, masks)?;
    let good = pixels.iter().filter(|p| p.1 == 0).count();
    if inverse_sizes.is_empty() {
        return Err(Error::invalid(
            "AU-PRO: no defect region in any mask; AU-PRO needs at least one anomalous pixel",
        ));
    }
    if good == 0 {
        return Err(Error::invalid(
            "AU-PRO: no good pixel in any mask; the false positive rate is undefined",
        ));
    }
    pixels.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));

    let (good, regions) = (good as f64, inverse_sizes.len() as f64);
    let (mut false_positives, mut overlap_sum) = (0usize, 0.0);
    let (mut previous_fpr, mut previous_pro, mut area) = (0.0, 0.0, 0.0);
    for group in pixels.chunk_by(|a, b| a.0 == b.0) {
        for &(_, region) in group {
            match region.checked_sub(1) {
                None => false_positives += 1,
                Some(k) => overlap_sum += inverse_sizes[k as usize],
            }
        }
        let fpr = false_positives as f64 / good;
        let pro = (overlap_sum / regions).min(1.0);
        if fpr >= fpr_limit {
            // fpr > previous_fpr here, since previous_fpr < fpr_limit.
            let pro_at_limit = previous_pro
                + (pro - previous_pro) * (fpr_limit - previous_fpr) / (fpr - previous_fpr);
            area += (fpr_limit - previous_fpr) * (previous_pro + pro_at_limit) / 2.0;
            break;
        }
        area += (fpr - previous_fpr) * (previous_pro + pro) / 2.0;
        previous_fpr = fpr;
        previous_pro = pro;
    }
    Ok(area / fpr_limit)
}

/// A pixel's score and global region id: 0 for good, k >= 1 for region k.
type Pixel = (f32, u32);

/// Every pixel of every image, region ids counted over all images, with `1 / size` of
/// each region k at index k - 1.
fn label_pixels(
    maps: &[ArrayView2<f32>],
    masks: &[ArrayView2<bool>],
) -> Result<(Vec<Pixel>, Vec<f64>)> {
    let mut pixels = Vec::with_capacity(maps.iter().map(|m| m.len()).sum());
    let mut inverse_sizes = Vec::new();
    for (map, mask) in maps.iter().zip(masks) {
        let regions = Regions::label(mask.view());
        let offset = inverse_sizes.len();
        inverse_sizes.extend(regions.sizes.iter().map(|&size| 1.0 / size as f64));
        if u32::try_from(inverse_sizes.len()).is_err() {
            return Err(Error::invalid("AU-PRO: more than 2^32 - 1 defect regions"));
        }
        for (&score, &label) in map.iter().zip(regions.labels.iter()) {
            // Checked above: every id fits in u32.
            let region = if label == 0 {
                0
            } else {
                (offset + label) as u32
            };
            pixels.push((score, region));
        }
    }
    Ok((pixels, inverse_sizes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    /// Three images: a 2x5 one with a 2-pixel region and a 1-pixel region, an all-defect
    /// 1x3 one (3-pixel region), a good 1x3 one; 10 good pixels in all.
    fn hand_case() -> (Vec<Array2<f32>>, Vec<Array2<bool>>) {
        let maps = vec![
            array![[0.9, 0.5, 0.4, 0.1, 0.3], [0.1, 0.1, 0.1, 0.1, 0.7]],
            array![[0.6, 0.3, 0.2]],
            array![[0.8, 0.3, 0.05]],
        ];
        let masks = vec![
            array![
                [true, true, false, false, false],
                [false, false, false, false, true]
            ],
            Array2::from_elem((1, 3), true),
            Array2::from_elem((1, 3), false),
        ];
        (maps, masks)
    }

    fn hand_au_pro(limit: f64) -> f64 {
        let (maps, masks) = hand_case();
        let maps: Vec<_> = maps.iter().map(|m| m.view()).collect();
        let masks: Vec<_> = masks.iter().map(|m| m.view()).collect();
        au_pro(&maps, &masks, limit).unwrap()
    }

    // Curve points (FPR, PRO), PRO = (h1/2 + h2/1 + h3/3) / 3:
    // 0.9 (0, 1/6); 0.8 (0.1, 1/6); 0.7 (0.1, 1/2); 0.6 (0.1, 11/18); 0.5 (0.1, 7/9);
    // 0.4 (0.2, 7/9); 0.3 (two good + one defect) (0.4, 8/9); 0.2 (0.4, 1);
    // 0.1 (0.9, 1); 0.05 (1, 1).
    #[test]
    fn hand_computed_with_interpolation_at_the_limit() {
        // 0.1 * 1/6 + 0.1 * 7/9 + 0.1 * (7/9 + 5/6) / 2, PRO(0.3) = 5/6 interpolated;
        // = 63/360, over 0.3 = 7/12.
        assert!(close(hand_au_pro(0.3), 7.0 / 12.0));
    }

    #[test]
    fn hand_computed_limit_on_a_curve_point() {
        // 0.1 * 1/6 + 0.1 * 7/9 = 34/360, over 0.2 = 17/36.
        assert!(close(hand_au_pro(0.2), 17.0 / 36.0));
    }

    #[test]
    fn hand_computed_whole_curve() {
        // 34/360 + 0.2 * (7/9 + 8/9) / 2 + 0.5 + 0.1 = 31/36.
        assert!(close(hand_au_pro(1.0), 31.0 / 36.0));
    }

    #[test]
    fn perfect_and_inverted_maps() {
        let masks = [
            array![
                [false, true, false],
                [false, false, false],
                [true, true, false]
            ],
            Array2::from_elem((3, 3), false),
        ];
        let perfect: Vec<_> = masks.iter().map(|m| m.mapv(|d| d as u8 as f32)).collect();
        let inverted: Vec<_> = perfect.iter().map(|m| m.mapv(|s| 1.0 - s)).collect();
        let masks: Vec<_> = masks.iter().map(|m| m.view()).collect();
        let perfect: Vec<_> = perfect.iter().map(|m| m.view()).collect();
        let inverted: Vec<_> = inverted.iter().map(|m| m.view()).collect();
        assert!(close(
            au_pro(&perfect, &masks, DEFAULT_FPR_LIMIT).unwrap(),
            1.0
        ));
        assert!(close(
            au_pro(&inverted, &masks, DEFAULT_FPR_LIMIT).unwrap(),
            0.0
        ));
    }

    #[test]
    fn constant_map_is_the_diagonal() {
        // One threshold: (0, 0) -> (1, 1); the mean PRO up to 0.3 is 0.15.
        let mask = array![[true, false], [false, false]];
        let map = Array2::from_elem((2, 2), 0.5f32);
        assert!(close(
            au_pro(&[map.view()], &[mask.view()], 0.3).unwrap(),
            0.15
        ));
    }

    #[test]
    fn regions_weigh_equally_whatever_their_size() {
        // A 1-pixel region found at once, a 3-pixel region never above the good pixels.
        let mask = array![
            [true, false, true, true, true],
            [false, false, false, false, false]
        ];
        let map = array![[1.0f32, 0.5, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5, 0.5]];
        // (0, 1/2) then (1, 1/2) then (1, 1): area 0.3 * 1/2, normalised 1/2.
        assert!(close(
            au_pro(&[map.view()], &[mask.view()], 0.3).unwrap(),
            0.5
        ));
    }

    #[test]
    fn matches_a_direct_evaluation_of_every_threshold() {
        // Pseudo-random maps with many ties (scores on a coarse grid).
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let masks: Vec<Array2<bool>> = (0..4)
            .map(|_| Array2::from_shape_simple_fn((9, 11), || next() % 5 == 0))
            .collect();
        let maps: Vec<Array2<f32>> = (0..4)
            .map(|_| Array2::from_shape_simple_fn((9, 11), || (next() % 17) as f32 / 16.0))
            .collect();
        let maps: Vec<_> = maps.iter().map(|m| m.view()).collect();
        let masks: Vec<_> = masks.iter().map(|m| m.view()).collect();
        for limit in [0.05, 0.3, 1.0] {
            let fast = au_pro(&maps, &masks, limit).unwrap();
            assert!(
                (fast - direct_au_pro(&maps, &masks, limit)).abs() < 1e-9,
                "limit {limit}"
            );
        }
    }

    /// Recomputes PRO and FPR from scratch at every threshold.
    fn direct_au_pro(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>], limit: f64) -> f64 {
        let labelled: Vec<Regions> = masks.iter().map(|m| Regions::label(m.view())).collect();
        let mut thresholds: Vec<f32> = maps.iter().flat_map(|m| m.iter().copied()).collect();
        thresholds.sort_by(|a, b| b.total_cmp(a));
        thresholds.dedup();
        let mut curve = vec![(0.0, 0.0)];
        for t in thresholds {
            let (mut fp, mut good, mut overlaps, mut regions) = (0, 0, 0.0, 0);
            for (map, r) in maps.iter().zip(&labelled) {
                for (&s, &l) in map.iter().zip(r.labels.iter()) {
                    if l == 0 {
                        good += 1;
                        fp += (s >= t) as usize;
                    }
                }
                for k in 1..=r.sizes.len() {
                    let hits = map
                        .iter()
                        .zip(r.labels.iter())
                        .filter(|&(&s, &l)| l == k && s >= t);
                    overlaps += hits.count() as f64 / r.sizes[k - 1] as f64;
                    regions += 1;
                }
            }
            curve.push((fp as f64 / good as f64, overlaps / regions as f64));
        }
        let mut area = 0.0;
        for pair in curve.windows(2) {
            let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
            if x0 >= limit {
                break;
            }
            if x1 > limit {
                let y = y0 + (y1 - y0) * (limit - x0) / (x1 - x0);
                area += (limit - x0) * (y0 + y) / 2.0;
                break;
            }
            area += (x1 - x0) * (y0 + y1) / 2.0;
        }
        area / limit
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let map = array![[0.1f32, 0.2]];
        let mixed = array![[true, false]];
        let all = array![[true, true]];
        let none = array![[false, false]];
        let message = |r: Result<f64>| r.unwrap_err().to_string();
        for limit in [0.0, -0.1, 1.5, f64::NAN] {
            assert!(message(au_pro(&[map.view()], &[mixed.view()], limit)).contains("FPR limit"));
        }
        assert!(message(au_pro(&[map.view()], &[none.view()], 0.3)).contains("no defect region"));
        assert!(message(au_pro(&[map.view()], &[all.view()], 0.3)).contains("no good pixel"));
        assert!(message(au_pro(&[], &[], 0.3)).contains("no anomaly maps"));
    }
}
