//! Resizing and normalisation of images and masks to the model input.

use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};

/// ImageNet per-channel mean (R, G, B).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];

/// ImageNet per-channel standard deviation (R, G, B).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Resizes to `size` x `size` with a triangle (bilinear) filter that widens with the
/// scale factor when shrinking, so that downscaling averages over the covered area
/// instead of aliasing. Pixel centres are aligned as in `align_corners = false`.
///
/// # Panics
/// When `size` is 0 or the image has no pixels.
pub fn resize_image(image: &RgbImage, size: usize) -> RgbImage {
    assert!(size > 0, "resize_image: the output size must be at least 1");
    let (width, height) = (image.width(), image.height());
    assert!(
        width > 0 && height > 0,
        "resize_image: the input image has no pixels"
    );
    let columns = filter_taps(width, size);
    let rows = filter_taps(height, size);
    let mut out = RgbImage::zeros(size, size);
    let mut horizontal = vec![0.0f32; size * height];
    for channel in 0..3 {
        let src = image.plane(channel);
        for y in 0..height {
            let src_row = &src[y * width..(y + 1) * width];
            for (x, tap) in columns.iter().enumerate() {
                horizontal[y * size + x] = tap.apply(|j| src_row[j]);
            }
        }
        let dst = out.plane_mut(channel);
        for (y, tap) in rows.iter().enumerate() {
            for x in 0..size {
                dst[y * size + x] = tap.apply(|j| horizontal[j * size + x]);
            }
        }
    }
    out
}

/// Resizes a mask to `size` x `size` by nearest neighbour, so it stays binary.
///
/// # Panics
/// When `size` is 0 or the mask has no pixels.
pub fn resize_mask(mask: &Mask, size: usize) -> Mask {
    assert!(size > 0, "resize_mask: the output size must be at least 1");
    let (width, height) = (mask.width(), mask.height());
    assert!(
        width > 0 && height > 0,
        "resize_mask: the input mask has no pixels"
    );
    // The source pixel whose area holds the centre of output pixel `i`.
    let nearest = |i: usize, src: usize| ((2 * i + 1) * src / (2 * size)).min(src - 1);
    let mut out = Mask::zeros(size, size);
    for y in 0..size {
        let sy = nearest(y, height);
        for x in 0..size {
            out.set(x, y, mask.get(nearest(x, width), sy));
        }
    }
    out
}

/// Planar CHW samples `(x - mean) / std` per channel with the ImageNet statistics.
pub fn normalize_imagenet(image: &RgbImage) -> Vec<f32> {
    let mut out = Vec::with_capacity(image.as_planar().len());
    for channel in 0..3 {
        let (mean, std) = (IMAGENET_MEAN[channel], IMAGENET_STD[channel]);
        out.extend(image.plane(channel).iter().map(|&v| (v - mean) / std));
    }
    out
}

/// The inverse of [`normalize_imagenet`]: `x * std + mean` per channel, clamped to
/// [0, 1]. `chw` must hold `3 * width * height` samples.
pub fn denormalize_imagenet(chw: &[f32], width: usize, height: usize) -> Result<RgbImage> {
    let n = width * height;
    if n == 0 || chw.len() != 3 * n {
        return Err(Error::invalid(format!(
            "denormalize_imagenet: {} samples given for a {width}x{height} image; expected \
             3 * width * height = {} with width and height at least 1",
            chw.len(),
            3 * n
        )));
    }
    let data = chw
        .chunks_exact(n)
        .zip(IMAGENET_MEAN.iter().zip(&IMAGENET_STD))
        .flat_map(|(plane, (&mean, &std))| {
            plane.iter().map(move |&v| (v * std + mean).clamp(0.0, 1.0))
        })
        .collect();
    RgbImage::from_planar(width, height, data)
        .ok_or_else(|| Error::invalid("denormalize_imagenet: the samples do not form an image"))
}

/// The source samples and weights that make one output sample along one axis.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

impl Taps {
    /// The weighted sum of `sample(first + k)` over the weights.
    fn apply(&self, sample: impl Fn(usize) -> f32) -> f32 {
        self.weights
            .iter()
            .enumerate()
            .map(|(k, w)| w * sample(self.first + k))
            .sum()
    }
}

/// Triangle-filter taps mapping `src` samples onto `dst`, with the filter radius widened
/// to the scale factor when shrinking; weights of each output sum to 1.
fn filter_taps(src: usize, dst: usize) -> Vec<Taps> {
    let scale = src as f64 / dst as f64;
    let radius = scale.max(1.0);
    (0..dst)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let first = (centre - radius).floor().max(0.0) as usize;
            let end = ((centre + radius).ceil() as usize).min(src);
            let raw: Vec<f64> = (first..end)
                .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / radius).abs()).max(0.0))
                .collect();
            // The source sample under the centre is always within the radius, so the
            // sum is positive.
            let total: f64 = raw.iter().sum();
            Taps {
                first,
                weights: raw.iter().map(|w| (w / total) as f32).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-5
    }

    #[test]
    fn upscaling_is_bilinear_with_centre_alignment() {
        let img = RgbImage::from_planar(2, 1, vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0]).unwrap();
        let out = resize_image(&img, 4);
        let row: Vec<f32> = (0..4).map(|x| out.pixel(x, 2)[1]).collect();
        for (got, want) in row.iter().zip([0.0, 0.25, 0.75, 1.0]) {
            assert!(close(*got, want), "{row:?}");
        }
    }

    #[test]
    fn downscaling_averages_instead_of_aliasing() {
        let mut img = RgbImage::zeros(16, 16);
        for y in 0..16 {
            for x in 0..16 {
                let v = ((x + y) % 2) as f32;
                img.set_pixel(x, y, [v, v, v]);
            }
        }
        let out = resize_image(&img, 4);
        for v in out.as_planar() {
            assert!((v - 0.5).abs() < 0.05, "{v}");
        }
    }

    #[test]
    fn constant_image_stays_constant_and_same_size_is_identity() {
        let mut img = RgbImage::zeros(7, 3);
        for y in 0..3 {
            for x in 0..7 {
                img.set_pixel(x, y, [0.3, 0.6, 0.9]);
            }
        }
        let out = resize_image(&img, 5);
        for y in 0..5 {
            for x in 0..5 {
                let p = out.pixel(x, y);
                assert!(
                    close(p[0], 0.3) && close(p[1], 0.6) && close(p[2], 0.9),
                    "{p:?}"
                );
            }
        }
        let square = resize_image(&img, 5);
        assert_eq!(resize_image(&square, 5), square);
    }

    #[test]
    fn resize_mask_stays_binary_and_keeps_blocks() {
        let mut mask = Mask::zeros(10, 6);
        for y in 0..3 {
            for x in 5..10 {
                mask.set(x, y, true);
            }
        }
        for size in [3, 4, 17, 64] {
            let out = resize_mask(&mask, size);
            assert!(out.as_bytes().iter().all(|&b| b <= 1));
            assert!(out.get(size - 1, 0) && !out.get(0, size - 1), "size {size}");
        }
        let out = resize_mask(&mask, 20);
        assert_eq!(out.count(), 100);
    }

    #[test]
    fn normalisation_uses_imagenet_statistics_and_round_trips() {
        let mut img = RgbImage::zeros(3, 2);
        img.set_pixel(1, 1, [0.485, 1.0, 0.0]);
        img.set_pixel(2, 0, [0.1, 0.7, 0.33]);
        let chw = normalize_imagenet(&img);
        assert_eq!(chw.len(), 18);
        let at = |c: usize, x: usize, y: usize| chw[c * 6 + y * 3 + x];
        assert!(close(at(0, 1, 1), 0.0));
        assert!(close(at(1, 1, 1), (1.0 - 0.456) / 0.224));
        assert!(close(at(2, 0, 0), -0.406 / 0.225));
        let back = denormalize_imagenet(&chw, 3, 2).unwrap();
        for (a, b) in back.as_planar().iter().zip(img.as_planar()) {
            assert!(close(*a, *b), "{a} vs {b}");
        }
    }

    #[test]
    fn denormalize_rejects_wrong_length() {
        let message = denormalize_imagenet(&[0.0; 10], 2, 2)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("10 samples") && message.contains("12"),
            "{message}"
        );
    }
}
