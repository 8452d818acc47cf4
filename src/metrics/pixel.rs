//! Pixel-level metrics: every pixel of every anomaly map is one sample, labelled by its
//! ground-truth mask (true = defect). Masks held as `u8` convert with
//! `mask.mapv(|v| v != 0)`.

use ndarray::ArrayView2;

use crate::error::{Error, Result};
use crate::metrics::ranking::Ranking;

/// Checks that maps and masks pair up: at least one pair, one mask per map, each pair
/// of the same shape, and no NaN score. Different pairs may differ in shape.
pub(crate) fn check_pairs(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>]) -> Result<()> {
    if maps.is_empty() {
        return Err(Error::invalid("pixel metrics: no anomaly maps"));
    }
    if maps.len() != masks.len() {
        return Err(Error::invalid(format!(
            "pixel metrics: {} anomaly maps but {} masks; need one mask per map",
            maps.len(),
            masks.len()
        )));
    }
    for (index, (map, mask)) in maps.iter().zip(masks).enumerate() {
        if map.dim() != mask.dim() {
            return Err(Error::invalid(format!(
                "pixel metrics: anomaly map {index} is {:?} but its mask is {:?}",
                map.dim(),
                mask.dim()
            )));
        }
        if map.iter().any(|s| s.is_nan()) {
            return Err(Error::invalid(format!(
                "pixel metrics: anomaly map {index} contains NaN"
            )));
        }
    }
    Ok(())
}

/// Ranks all pixels of all maps (sorted once); pixel AUROC and AUPR read this one
/// ranking. Errors for invalid pairs (see the module) and when no mask has a defect
/// pixel or every pixel is a defect.
pub fn pixel_ranking(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>]) -> Result<Ranking> {
    check_pairs(maps, masks)?;
    let defects: usize = masks.iter().map(|m| m.iter().filter(|&&d| d).count()).sum();
    let total: usize = masks.iter().map(|m| m.len()).sum();
    let mut positives = Vec::with_capacity(defects);
    let mut negatives = Vec::with_capacity(total - defects);
    for (map, mask) in maps.iter().zip(masks) {
        for (&score, &defect) in map.iter().zip(mask.iter()) {
            if defect {
                positives.push(score);
            } else {
                negatives.push(score);
            }
        }
    }
    Ranking::new(positives, negatives).map_err(|e| Error::invalid(format!("pixel metrics: {e}")))
}

/// Pixel AUROC over all pixels of all maps (ties count one half; never flipped).
pub fn pixel_auroc(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>]) -> Result<f64> {
    Ok(pixel_ranking(maps, masks)?.auroc())
}

/// Pixel AUPR (average precision) over all pixels of all maps.
pub fn pixel_aupr(maps: &[ArrayView2<f32>], masks: &[ArrayView2<bool>]) -> Result<f64> {
    Ok(pixel_ranking(maps, masks)?.average_precision())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn image_without_defects_adds_negatives() {
        let maps = [
            array![[0.9f32, 0.1], [0.2, 0.3]],
            array![[0.95f32, 0.0], [0.0, 0.0]],
        ];
        let masks = [
            array![[true, false], [false, false]],
            Array2::from_elem((2, 2), false),
        ];
        let maps: Vec<_> = maps.iter().map(|m| m.view()).collect();
        let masks: Vec<_> = masks.iter().map(|m| m.view()).collect();
        // The one defect pixel (0.9) beats 6 of the 7 good pixels (not 0.95).
        assert!(close(pixel_auroc(&maps, &masks).unwrap(), 6.0 / 7.0));
        // Steps: 0.95 -> (0,1); 0.9 -> (1,1), recall 1 at precision 1/2.
        assert!(close(pixel_aupr(&maps, &masks).unwrap(), 0.5));
    }

    #[test]
    fn perfect_and_inverted_maps() {
        let mask = array![[false, true, true], [false, false, true]];
        let perfect = mask.mapv(|d| if d { 1.0f32 } else { 0.0 });
        let inverted = perfect.mapv(|s| 1.0 - s);
        assert!(close(
            pixel_auroc(&[perfect.view()], &[mask.view()]).unwrap(),
            1.0
        ));
        assert!(close(
            pixel_aupr(&[perfect.view()], &[mask.view()]).unwrap(),
            1.0
        ));
        assert!(close(
            pixel_auroc(&[inverted.view()], &[mask.view()]).unwrap(),
            0.0
        ));
        // Good pixels first (3), then all 3 defects: precision 3/6 at recall 1.
        assert!(close(
            pixel_aupr(&[inverted.view()], &[mask.view()]).unwrap(),
            0.5
        ));
    }

    #[test]
    fn constant_map_gives_half() {
        let mask = array![[false, true], [true, false]];
        let map = Array2::from_elem((2, 2), 0.4f32);
        assert!(close(
            pixel_auroc(&[map.view()], &[mask.view()]).unwrap(),
            0.5
        ));
    }

    #[test]
    fn invalid_pairs_are_errors() {
        let map = array![[0.1f32, 0.2]];
        let mask = array![[true, false]];
        let tall = array![[true], [false]];
        let nan = array![[f32::NAN, 0.2]];
        let good = array![[false, false]];
        let message = |r: Result<f64>| r.unwrap_err().to_string();
        assert!(message(pixel_auroc(&[], &[])).contains("no anomaly maps"));
        assert!(message(pixel_auroc(&[map.view()], &[])).contains("1 anomaly maps but 0 masks"));
        assert!(message(pixel_auroc(&[map.view()], &[tall.view()])).contains("map 0 is (1, 2)"));
        assert!(message(pixel_aupr(
            &[map.view(), nan.view()],
            &[mask.view(), mask.view()]
        ))
        .contains("map 1 contains NaN"));
        assert!(message(pixel_auroc(&[map.view()], &[good.view()])).contains("no positive"));
    }
}
