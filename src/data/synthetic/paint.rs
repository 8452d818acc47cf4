//! Painting primitives for the synthetic benchmark: coverage of thin curves, soft blobs,
//! and alpha blending that records which pixels a defect changed.

use super::noise;
use crate::image::{Mask, RgbImage};

/// A point in pixel coordinates.
pub type Point = (f32, f32);

/// Distance from `p` to the segment `a`-`b`.
pub fn segment_distance(p: Point, a: Point, b: Point) -> f32 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / length2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (a.0 + t * dx, a.1 + t * dy);
    ((p.0 - qx).powi(2) + (p.1 - qy).powi(2)).sqrt()
}

/// Anti-aliased coverage in [0, 1] of a polyline of the given width at pixel centre `p`.
pub fn polyline_coverage(p: Point, points: &[Point], width: f32) -> f32 {
    let d = points
        .windows(2)
        .map(|s| segment_distance(p, s[0], s[1]))
        .fold(f32::MAX, f32::min);
    (width / 2.0 + 0.5 - d).clamp(0.0, 1.0)
}

/// The bounding box (x0, y0, x1, y1) of points grown by `margin`, clipped to the image.
fn bounds(
    points: &[Point],
    margin: f32,
    width: usize,
    height: usize,
) -> (usize, usize, usize, usize) {
    let min_x = points.iter().map(|p| p.0).fold(f32::MAX, f32::min) - margin;
    let max_x = points.iter().map(|p| p.0).fold(f32::MIN, f32::max) + margin;
    let min_y = points.iter().map(|p| p.1).fold(f32::MAX, f32::min) - margin;
    let max_y = points.iter().map(|p| p.1).fold(f32::MIN, f32::max) + margin;
    let clip = |v: f32, n: usize| (v.max(0.0) as usize).min(n);
    (
        clip(min_x, width),
        clip(min_y, height),
        clip(max_x + 1.0, width),
        clip(max_y + 1.0, height),
    )
}

/// Blends `colour(x, y, old)` into the image with per-pixel `alpha(x, y)` over the
/// pixels of a box, and marks in `mask` every pixel whose alpha reaches `mask_alpha`.
pub fn blend(
    image: &mut RgbImage,
    mask: &mut Mask,
    region: (usize, usize, usize, usize),
    mask_alpha: f32,
    mut alpha: impl FnMut(f32, f32) -> f32,
    mut colour: impl FnMut(f32, f32, [f32; 3]) -> [f32; 3],
) {
    let (x0, y0, x1, y1) = region;
    for y in y0..y1 {
        for x in x0..x1 {
            let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
            let a = alpha(px, py).clamp(0.0, 1.0);
            if a <= 0.0 {
                continue;
            }
            let old = image.pixel(x, y);
            let new = colour(px, py, old);
            let mixed = [0, 1, 2].map(|c| (old[c] + a * (new[c] - old[c])).clamp(0.0, 1.0));
            image.set_pixel(x, y, mixed);
            if a >= mask_alpha {
                mask.set(x, y, true);
            }
        }
    }
}

/// Paints a polyline of `width` pixels with `colour(old)`, marking covered pixels.
pub fn stroke(
    image: &mut RgbImage,
    mask: &mut Mask,
    points: &[Point],
    width: f32,
    opacity: f32,
    colour: impl Fn([f32; 3]) -> [f32; 3],
) {
    let region = bounds(points, width + 2.0, image.width(), image.height());
    blend(
        image,
        mask,
        region,
        0.35,
        |x, y| opacity * polyline_coverage((x, y), points, width),
        |_, _, old| colour(old),
    );
}

/// Alpha of a soft, irregular blob of radius `radius` around `centre` (1 inside,
/// falling to 0 over `softness` pixels; the outline is perturbed by noise).
fn blob_alpha(
    p: Point,
    centre: Point,
    radius: f32,
    softness: f32,
    roughness: f32,
    seed: u64,
) -> f32 {
    let (dx, dy) = (p.0 - centre.0, p.1 - centre.1);
    let d = (dx * dx + dy * dy).sqrt();
    let wobble = noise::fbm(
        p.0 / (radius * 0.6 + 1.0),
        p.1 / (radius * 0.6 + 1.0),
        3,
        seed,
    ) - 0.5;
    let edge = radius * (1.0 + roughness * wobble * 2.0);
    ((edge - d) / softness.max(0.5) + 0.5).clamp(0.0, 1.0)
}

/// A soft, irregular blob: where and how large, how soft and rough its edge, how opaque.
#[derive(Debug, Clone, Copy)]
pub struct Blob {
    /// Centre in pixels.
    pub centre: Point,
    /// Nominal radius in pixels.
    pub radius: f32,
    /// Width of the edge fall-off in pixels.
    pub softness: f32,
    /// Relative outline perturbation.
    pub roughness: f32,
    /// Peak alpha.
    pub opacity: f32,
    /// Seed of the outline noise.
    pub seed: u64,
}

/// Blends `colour(x, y, old)` over the blob, marking pixels whose alpha reaches 0.5.
pub fn paint_blob(
    image: &mut RgbImage,
    mask: &mut Mask,
    blob: &Blob,
    colour: impl FnMut(f32, f32, [f32; 3]) -> [f32; 3],
) {
    let region = bounds(
        &[blob.centre],
        blob.radius * 1.6 + 2.0,
        image.width(),
        image.height(),
    );
    let alpha = |x: f32, y: f32| {
        blob.opacity
            * blob_alpha(
                (x, y),
                blob.centre,
                blob.radius,
                blob.softness,
                blob.roughness,
                blob.seed,
            )
    };
    blend(image, mask, region, 0.5, alpha, colour);
}

/// Luminance of an RGB triple.
pub fn luminance(rgb: [f32; 3]) -> f32 {
    0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
}

/// Linear mix of two colours.
pub fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t)
}

/// Smooth step from 0 at `edge0` to 1 at `edge1`.
pub fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_distance_is_euclidean() {
        assert_eq!(segment_distance((0.0, 3.0), (-5.0, 0.0), (5.0, 0.0)), 3.0);
        assert_eq!(segment_distance((8.0, 4.0), (0.0, 0.0), (5.0, 0.0)), 5.0);
    }

    #[test]
    fn a_stroke_changes_exactly_the_pixels_it_marks_and_a_few_faint_neighbours() {
        let mut image = RgbImage::zeros(32, 32);
        let mut mask = Mask::zeros(32, 32);
        stroke(
            &mut image,
            &mut mask,
            &[(4.0, 16.0), (28.0, 16.0)],
            2.0,
            1.0,
            |_| [1.0; 3],
        );
        assert!(
            mask.count() >= 24 * 2 && mask.count() <= 28 * 4,
            "{}",
            mask.count()
        );
        for y in 0..32 {
            for x in 0..32 {
                let changed = image.pixel(x, y)[0] > 0.0;
                if mask.get(x, y) {
                    assert!(image.pixel(x, y)[0] >= 0.35);
                } else if changed {
                    assert!(image.pixel(x, y)[0] < 0.35);
                }
            }
        }
    }
}
