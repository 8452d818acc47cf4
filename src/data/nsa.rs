//! NSA ("natural synthetic anomalies") patch perturbation of training images.
//!
//! One to `max_patches` rectangular patches are cut from a random other image of the
//! class (or the image itself), rescaled, moved, and Poisson-blended ("normal clone")
//! into the image. The result comes with the mask of the pixels that actually changed.
//! All randomness comes from the caller's seeded generator.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::data::poisson::{PoissonBlender, Rect};
use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};

/// Parameters of the NSA perturbation; [`Default`] gives the paper's values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NsaConfig {
    /// Most patches per image (at least 1).
    pub max_patches: usize,
    /// Probability of each patch after the first (the first is always made).
    pub extra_patch_probability: f64,
    /// Smallest patch width (height) as a fraction of the image width (height).
    pub min_size_fraction: f64,
    /// Largest patch width (height) as a fraction of the image width (height).
    pub max_size_fraction: f64,
    /// Mean of the normal distribution the scale is drawn from.
    pub scale_mean: f64,
    /// Standard deviation of the normal distribution the scale is drawn from.
    pub scale_std: f64,
    /// Lower clip of the scale (destination size over source size).
    pub min_scale: f64,
    /// Upper clip of the scale.
    pub max_scale: f64,
    /// Largest shift, per axis and as a fraction of the image side, between the patch's
    /// position in the source and its position in the image.
    pub max_shift_fraction: f64,
    /// A pixel counts as changed when some channel moved by more than this.
    pub change_threshold: f32,
    /// The Poisson solver used for blending.
    pub blender: PoissonBlender,
}

impl Default for NsaConfig {
    /// Up to 4 patches (further ones with probability 0.5), sides 3 %..40 %, scale
    /// N(1, 0.5) clipped to [0.7, 1.3], shift up to 20 % of the side, threshold 1/255.
    fn default() -> Self {
        NsaConfig {
            max_patches: 4,
            extra_patch_probability: 0.5,
            min_size_fraction: 0.03,
            max_size_fraction: 0.40,
            scale_mean: 1.0,
            scale_std: 0.5,
            min_scale: 0.7,
            max_scale: 1.3,
            max_shift_fraction: 0.2,
            change_threshold: 1.0 / 255.0,
            blender: PoissonBlender::default(),
        }
    }
}

impl NsaConfig {
    /// Checks that every parameter is in range and consistent with the others.
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        if self.max_patches == 0 {
            return Err(Error::invalid("NSA max_patches must be at least 1"));
        }
        if !unit(self.extra_patch_probability) {
            return Err(Error::invalid(format!(
                "NSA extra_patch_probability must be in [0, 1], got {}",
                self.extra_patch_probability
            )));
        }
        if !(self.min_size_fraction > 0.0
            && self.min_size_fraction <= self.max_size_fraction
            && self.max_size_fraction <= 1.0)
        {
            return Err(Error::invalid(format!(
                "NSA patch size fractions must satisfy 0 < min <= max <= 1, got {}..{}",
                self.min_size_fraction, self.max_size_fraction
            )));
        }
        if !(self.min_scale > 0.0
            && self.min_scale <= self.max_scale
            && self.max_scale.is_finite()
            && self.scale_mean.is_finite()
            && self.scale_std.is_finite()
            && self.scale_std >= 0.0)
        {
            return Err(Error::invalid(format!(
                "NSA scale must have a finite mean, std >= 0 and clip bounds 0 < min <= max, \
                 got mean {} std {} bounds {}..{}",
                self.scale_mean, self.scale_std, self.min_scale, self.max_scale
            )));
        }
        if !unit(self.max_shift_fraction) {
            return Err(Error::invalid(format!(
                "NSA max_shift_fraction must be in [0, 1], got {}",
                self.max_shift_fraction
            )));
        }
        if !(self.change_threshold >= 0.0 && self.change_threshold.is_finite()) {
            return Err(Error::invalid(format!(
                "NSA change_threshold must be finite and >= 0, got {}",
                self.change_threshold
            )));
        }
        Ok(())
    }
}

/// Where one patch came from and where it went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatchRecord {
    /// The blended region in the perturbed image.
    pub destination: Rect,
    /// Index into `sources` of the image the patch was cut from; `None` for the image itself.
    pub source: Option<usize>,
    /// The region cut from the source before rescaling.
    pub source_rect: Rect,
    /// The drawn scale (destination size over source size, up to rounding).
    pub scale: f64,
}

/// A perturbed image, the mask of its changed pixels and the patches that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Perturbation {
    /// The perturbed image.
    pub image: RgbImage,
    /// Pixels inside the patches where some channel changed by more than the threshold.
    pub mask: Mask,
    /// The patches, in the order they were blended.
    pub patches: Vec<PatchRecord>,
}

/// Perturbs `image` with NSA patches cut from `sources` (other images of the same class,
/// any size) or from `image` itself (always the unperturbed original). Same generator
/// state, same result.
///
/// Errors when the configuration is invalid, the image is smaller than 3x3, or a
/// source is empty.
pub fn perturb(
    image: &RgbImage,
    sources: &[&RgbImage],
    config: &NsaConfig,
    rng: &mut ChaCha8Rng,
) -> Result<Perturbation> {
    config.validate()?;
    let (width, height) = (image.width(), image.height());
    if width < 3 || height < 3 {
        return Err(Error::invalid(format!(
            "NSA needs an image of at least 3x3 pixels, got {width}x{height}"
        )));
    }
    if let Some(index) = sources
        .iter()
        .position(|s| s.width() == 0 || s.height() == 0)
    {
        return Err(Error::invalid(format!(
            "NSA source {index} is an empty image"
        )));
    }

    let count = patch_count(config, rng);
    let mut perturbed = image.clone();
    let mut patches = Vec::with_capacity(count);
    for _ in 0..count {
        let source_index = rng.random_range(0..=sources.len());
        let (source, source_id) = match sources.get(source_index) {
            Some(&other) => (other, Some(source_index)),
            None => (image, None),
        };
        let record = place_patch(image, source, source_id, config, rng);
        let patch = resample_bilinear(
            source,
            record.source_rect,
            record.destination.width,
            record.destination.height,
        );
        config
            .blender
            .blend(&mut perturbed, &patch, record.destination, (0, 0))?;
        patches.push(record);
    }

    let mask = changed_mask(image, &perturbed, &patches, config.change_threshold);
    Ok(Perturbation {
        image: perturbed,
        mask,
        patches,
    })
}

/// 1 plus the number of consecutive successes of further-patch draws, capped.
fn patch_count(config: &NsaConfig, rng: &mut ChaCha8Rng) -> usize {
    let mut count = 1;
    while count < config.max_patches && rng.random_bool(config.extra_patch_probability) {
        count += 1;
    }
    count
}

/// Draws size, scale, source position and shifted destination position of one patch.
fn place_patch(
    image: &RgbImage,
    source: &RgbImage,
    source_id: Option<usize>,
    config: &NsaConfig,
    rng: &mut ChaCha8Rng,
) -> PatchRecord {
    let width = patch_side(image.width(), config, rng);
    let height = patch_side(image.height(), config, rng);
    let scale = (config.scale_mean + config.scale_std * standard_normal(rng))
        .clamp(config.min_scale, config.max_scale);

    let source_side =
        |side: usize, limit: usize| ((side as f64 / scale).round() as usize).clamp(1, limit);
    let source_width = source_side(width, source.width());
    let source_height = source_side(height, source.height());
    let source_rect = Rect {
        x: rng.random_range(0..=source.width() - source_width),
        y: rng.random_range(0..=source.height() - source_height),
        width: source_width,
        height: source_height,
    };

    // Same relative centre as in the source, moved by a random shift, kept inside.
    let mut place = |start: usize, extent: usize, source_side: usize, side: usize, size: usize| {
        let centre = (start as f64 + extent as f64 / 2.0) / source_side as f64 * side as f64;
        let reach = config.max_shift_fraction * side as f64;
        let shift = if reach > 0.0 {
            rng.random_range(-reach..=reach)
        } else {
            0.0
        };
        (centre + shift - size as f64 / 2.0)
            .round()
            .clamp(0.0, (side - size) as f64) as usize
    };
    let x = place(
        source_rect.x,
        source_width,
        source.width(),
        image.width(),
        width,
    );
    let y = place(
        source_rect.y,
        source_height,
        source.height(),
        image.height(),
        height,
    );

    PatchRecord {
        destination: Rect {
            x,
            y,
            width,
            height,
        },
        source: source_id,
        source_rect,
        scale,
    }
}

/// A patch side drawn uniformly from the whole pixel counts within the configured
/// fractions of `side`, at least 3 (the smallest Poisson region) and at most `side`.
fn patch_side(side: usize, config: &NsaConfig, rng: &mut ChaCha8Rng) -> usize {
    // The small epsilon keeps exact products such as 0.03 * 100 from rounding outward.
    let low = ((config.min_size_fraction * side as f64 - 1e-9).ceil() as usize).clamp(3, side);
    let high = ((config.max_size_fraction * side as f64 + 1e-9).floor() as usize).clamp(low, side);
    rng.random_range(low..=high)
}

/// A standard normal sample (Box-Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let radius_uniform = 1.0 - rng.random::<f64>(); // in (0, 1], so the log is finite
    let angle = std::f64::consts::TAU * rng.random::<f64>();
    (-2.0 * radius_uniform.ln()).sqrt() * angle.cos()
}

/// Bilinear resampling of `rect` of `source` to a `width x height` image (pixel centres
/// aligned, edges clamped).
fn resample_bilinear(source: &RgbImage, rect: Rect, width: usize, height: usize) -> RgbImage {
    let axis = |out_len: usize, in_start: usize, in_len: usize| -> Vec<(usize, usize, f32)> {
        let ratio = in_len as f64 / out_len as f64;
        (0..out_len)
            .map(|i| {
                let position = ((i as f64 + 0.5) * ratio - 0.5).clamp(0.0, (in_len - 1) as f64);
                let low = position.floor() as usize;
                let high = (low + 1).min(in_len - 1);
                (
                    in_start + low,
                    in_start + high,
                    (position - low as f64) as f32,
                )
            })
            .collect()
    };
    let columns = axis(width, rect.x, rect.width);
    let rows = axis(height, rect.y, rect.height);
    let mut out = RgbImage::zeros(width, height);
    for channel in 0..3 {
        let input = source.plane(channel);
        let stride = source.width();
        let output = out.plane_mut(channel);
        for (out_row, &(y0, y1, ty)) in output.chunks_exact_mut(width).zip(&rows) {
            for (value, &(x0, x1, tx)) in out_row.iter_mut().zip(&columns) {
                let top = input[y0 * stride + x0] * (1.0 - tx) + input[y0 * stride + x1] * tx;
                let bottom = input[y1 * stride + x0] * (1.0 - tx) + input[y1 * stride + x1] * tx;
                *value = top * (1.0 - ty) + bottom * ty;
            }
        }
    }
    out
}

/// Marks the pixels inside the patches where some channel differs by more than `threshold`.
fn changed_mask(
    before: &RgbImage,
    after: &RgbImage,
    patches: &[PatchRecord],
    threshold: f32,
) -> Mask {
    let mut mask = Mask::zeros(before.width(), before.height());
    for rect in patches.iter().map(|p| p.destination) {
        for y in rect.y..rect.y + rect.height {
            for x in rect.x..rect.x + rect.width {
                let (a, b) = (before.pixel(x, y), after.pixel(x, y));
                if a.iter().zip(&b).any(|(u, v)| (u - v).abs() > threshold) {
                    mask.set(x, y, true);
                }
            }
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// A deterministic textured image; `kind` picks the pattern.
    fn textured(width: usize, height: usize, kind: u32) -> RgbImage {
        let mut image = RgbImage::zeros(width, height);
        let k = kind as f32 + 1.0;
        for y in 0..height {
            for x in 0..width {
                let (fx, fy) = (x as f32, y as f32);
                let v = |c: f32| {
                    0.5 + 0.25 * (fx * 0.37 * k + c).sin() * (fy * 0.23 + c * k).cos()
                        + 0.15 * ((fx + 2.0 * fy) * 0.11 * k).sin()
                };
                image.set_pixel(x, y, [v(0.0), v(1.3), v(2.6)]);
            }
        }
        image
    }

    fn run(image: &RgbImage, sources: &[&RgbImage], seed: u64) -> Perturbation {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        perturb(image, sources, &NsaConfig::default(), &mut rng).unwrap()
    }

    #[test]
    fn same_seed_same_output_different_seed_differs() {
        let image = textured(64, 64, 0);
        let (a, b) = (textured(64, 64, 1), textured(80, 70, 2));
        let sources = [&a, &b];
        assert_eq!(run(&image, &sources, 7), run(&image, &sources, 7));
        assert_ne!(run(&image, &sources, 7), run(&image, &sources, 8));
    }

    #[test]
    fn patch_counts_sizes_and_scales_follow_the_distributions() {
        let image = textured(100, 100, 0);
        let other = textured(100, 100, 3);
        let trials = 1000;
        let mut counts = [0usize; 5];
        let mut fractions = Vec::new();
        let mut scales = Vec::new();
        for seed in 0..trials {
            let result = run(&image, &[&other], seed);
            counts[result.patches.len()] += 1;
            for patch in &result.patches {
                fractions.push(patch.destination.width as f64 / 100.0);
                fractions.push(patch.destination.height as f64 / 100.0);
                scales.push(patch.scale);
            }
        }

        let n = trials as f64;
        for (k, p) in [(1, 0.5), (2, 0.25), (3, 0.125), (4, 0.125)] {
            let observed = counts[k] as f64 / n;
            let tolerance = 4.0 * (p * (1.0 - p) / n).sqrt();
            assert!(
                (observed - p).abs() <= tolerance,
                "P({k}) = {observed}, expected {p}"
            );
        }
        assert_eq!(counts[0], 0);

        assert!(fractions.iter().all(|&f| (0.03..=0.40).contains(&f)));
        let mean = fractions.iter().sum::<f64>() / fractions.len() as f64;
        assert!((mean - 0.215).abs() < 0.01, "mean size fraction {mean}");
        // Roughly uniform: each quarter of the range holds about a quarter of the sides.
        let mut quarters = [0usize; 4];
        for &f in &fractions {
            quarters[(((f - 0.03) / 0.37 * 4.0) as usize).min(3)] += 1;
        }
        for (quarter, &held) in quarters.iter().enumerate() {
            let share = held as f64 / fractions.len() as f64;
            assert!(
                (share - 0.25).abs() < 0.05,
                "quarter {quarter} holds {share}"
            );
        }

        assert!(scales.iter().all(|&s| (0.7..=1.3).contains(&s)));
        // Clipping N(1, 0.5) at +-0.3 puts about 27 % of the mass on each bound.
        for bound in [0.7, 1.3] {
            let share = scales.iter().filter(|&&s| s == bound).count() as f64 / scales.len() as f64;
            assert!((share - 0.274).abs() < 0.05, "share at {bound}: {share}");
        }
    }

    #[test]
    fn mask_and_changes_stay_inside_the_patches() {
        let image = textured(128, 128, 0);
        let (a, b) = (textured(128, 128, 1), textured(96, 112, 2));
        for seed in 0..20 {
            let result = run(&image, &[&a, &b], seed);
            assert!(result.mask.count() > 0, "seed {seed}: empty mask");
            for y in 0..128 {
                for x in 0..128 {
                    let inside = result.patches.iter().any(|p| p.destination.contains(x, y));
                    if !inside {
                        assert!(!result.mask.get(x, y));
                        assert_eq!(result.image.pixel(x, y), image.pixel(x, y));
                    }
                }
            }
            for patch in &result.patches {
                let source = match patch.source {
                    Some(i) => [&a, &b][i],
                    None => &image,
                };
                assert!(patch.source_rect.fits_in(source.width(), source.height()));
                assert!(patch.destination.fits_in(128, 128));
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let image = textured(16, 16, 0);
        let tiny = textured(2, 16, 0);
        let empty = RgbImage::zeros(0, 0);
        let config = NsaConfig::default();
        assert!(perturb(&tiny, &[], &config, &mut rng).is_err());
        assert!(perturb(&image, &[&empty], &config, &mut rng).is_err());
        let broken = [
            NsaConfig {
                max_patches: 0,
                ..config
            },
            NsaConfig {
                extra_patch_probability: 1.5,
                ..config
            },
            NsaConfig {
                min_size_fraction: 0.5,
                max_size_fraction: 0.4,
                ..config
            },
            NsaConfig {
                min_scale: 0.0,
                ..config
            },
            NsaConfig {
                scale_std: f64::NAN,
                ..config
            },
            NsaConfig {
                max_shift_fraction: -0.1,
                ..config
            },
            NsaConfig {
                change_threshold: -1.0,
                ..config
            },
        ];
        for bad in broken {
            assert!(
                matches!(
                    perturb(&image, &[], &bad, &mut rng),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
    }
}
