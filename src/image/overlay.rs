//! Heat-map overlays: an anomaly map drawn over its image in colours from blue (low)
//! through green and yellow to red (high), more opaque where the map is higher.

use super::RgbImage;
use crate::error::{Error, Result};

/// The colour of a normalised value in [0, 1] (blue, cyan, green, yellow, red).
fn heat(t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0) * 4.0;
    let ramp = |x: f32| x.clamp(0.0, 1.0);
    [ramp(t - 2.0), ramp(t.min(4.0 - t)), ramp(2.0 - t)]
}

/// Blends `map` (row-major, the image's size) over `image`: values at or below `low`
/// leave the image as it is, values at `high` and above are drawn fully red at 60 %
/// opacity.
pub fn overlay(image: &RgbImage, map: &[f32], low: f32, high: f32) -> Result<RgbImage> {
    let (w, h) = (image.width(), image.height());
    if map.len() != w * h {
        return Err(Error::invalid(format!(
            "map has {} values; the image has {w}x{h} pixels",
            map.len()
        )));
    }
    if !(high > low) || !low.is_finite() || !high.is_finite() {
        return Err(Error::invalid(format!(
            "overlay range [{low}, {high}] must be finite with high > low"
        )));
    }
    let mut out = image.clone();
    for y in 0..h {
        for x in 0..w {
            let t = (map[y * w + x] - low) / (high - low);
            if t <= 0.0 || t.is_nan() {
                continue;
            }
            let alpha = 0.6 * t.min(1.0);
            let colour = heat(t);
            let base = image.pixel(x, y);
            out.set_pixel(
                x,
                y,
                [0, 1, 2].map(|c| base[c] + alpha * (colour[c] - base[c])),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_values_leave_the_image_and_high_values_turn_red() {
        let image = RgbImage::from_planar(2, 1, vec![0.5; 6]).unwrap();
        let out = overlay(&image, &[0.0, 10.0], 1.0, 5.0).unwrap();
        assert_eq!(out.pixel(0, 0), [0.5; 3]);
        let red = out.pixel(1, 0);
        assert!(
            (red[0] - 0.8).abs() < 1e-6
                && (red[1] - 0.2).abs() < 1e-6
                && (red[2] - 0.2).abs() < 1e-6,
            "{red:?}"
        );
        assert!(overlay(&image, &[0.0], 0.0, 1.0).is_err());
        assert!(overlay(&image, &[0.0, 1.0], 1.0, 1.0).is_err());
    }
}
