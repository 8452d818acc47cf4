//! From reconstruction to anomaly map (method.md section 6): with a decoding codec the
//! frozen backbone's feature maps of D(E(x)) and of the decoded reconstruction are
//! compared per stage (channel-wise L2 distance, bilinear upsampling to image size,
//! sum); with the `features` codec the input's and the reconstructed latent features
//! are compared directly. The map is then smoothed with a Gaussian; the image score is
//! its maximum.

use super::backbone::FeatureBackbone;
use super::diffusion::DiffusionModel;
use crate::config::Config;
use crate::error::Result;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;
use tch::{Kind, Tensor};

/// Turns images into anomaly maps with a trained model.
pub struct Scorer {
    backbone: Arc<dyn FeatureBackbone>,
    stages: Vec<usize>,
    map_count: usize,
    sigma_at_256: f64,
    start_step: usize,
    steps: usize,
    seeds: usize,
    seed: u64,
}

impl Scorer {
    /// A scorer with the configuration's stages, smoothing, start level, DDIM steps and
    /// seed (the same image always gets the same map).
    pub fn new(backbone: Arc<dyn FeatureBackbone>, config: &Config) -> Self {
        Scorer {
            backbone,
            stages: config.score_layers.clone(),
            map_count: config.score_map_count(),
            sigma_at_256: config.map_sigma,
            start_step: config.start_step,
            steps: config.ddim_steps,
            seeds: config.map_seeds.max(1),
            seed: config.seed,
        }
    }

    /// Anomaly maps (N x H x W, same size as the images) of an ImageNet-normalised
    /// N x 3 x H x W batch.
    pub fn maps(&self, model: &DiffusionModel, images: &Tensor) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let (h, w) = (images.size()[2], images.size()[3]);
        let raw_map = |rng: &mut ChaCha8Rng| -> Result<Tensor> {
            let (z0, estimate) = model.reconstruct(images, self.start_step, self.steps, rng);
            tch::no_grad(
                || match (model.codec().decode(&z0), model.codec().decode(&estimate)) {
                    (Some(reference), Some(reconstruction)) => {
                        self.feature_distance(&reference, &reconstruction, h, w)
                    }
                    _ => Ok(upsample(&channel_distance(&z0, &estimate), h, w)),
                },
            )
        };
        let mut raw = raw_map(&mut rng)?;
        if self.seeds > 1 {
            for _ in 1..self.seeds {
                raw += raw_map(&mut rng)?;
            }
            raw /= self.seeds as f64;
        }
        Ok(tch::no_grad(|| {
            gaussian_blur(&raw, self.sigma_at_256 * h as f64 / 256.0).squeeze_dim(1)
        }))
    }

    fn feature_distance(&self, a: &Tensor, b: &Tensor, h: i64, w: i64) -> Result<Tensor> {
        let (fa, fb) = (
            self.backbone.feature_maps(a, self.map_count)?,
            self.backbone.feature_maps(b, self.map_count)?,
        );
        Ok(self
            .stages
            .iter()
            .filter_map(|&s| Some(upsample(&channel_distance(fa.get(s)?, fb.get(s)?), h, w)))
            .fold(
                Tensor::zeros([a.size()[0], 1, h, w], (Kind::Float, a.device())),
                |sum, d| sum + d,
            ))
    }
}

/// Per-position L2 distance over channels: N x C x h x w -> N x 1 x h x w.
fn channel_distance(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b)
        .square()
        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
        .sqrt()
}

fn upsample(map: &Tensor, h: i64, w: i64) -> Tensor {
    if map.size()[2] == h && map.size()[3] == w {
        return map.shallow_clone();
    }
    map.upsample_bilinear2d([h, w], false, None, None)
}

/// Separable Gaussian smoothing of N x 1 x H x W maps with reflected borders.
pub fn gaussian_blur(maps: &Tensor, sigma: f64) -> Tensor {
    if sigma < 0.3 {
        return maps.shallow_clone();
    }
    let (h, w) = (maps.size()[2], maps.size()[3]);
    let radius = ((4.0 * sigma).ceil() as i64).min((h.min(w) - 1).max(1));
    let weights: Vec<f32> = (-radius..=radius)
        .map(|x| (-(x * x) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = weights.iter().sum();
    let kernel = Tensor::from_slice(&weights.iter().map(|v| v / total).collect::<Vec<_>>())
        .to_device(maps.device());
    let horizontal = kernel.view([1, 1, 1, -1]);
    let vertical = kernel.view([1, 1, -1, 1]);
    let padded = maps.pad([radius, radius, 0, 0], "reflect", None);
    let maps = padded.conv2d(&horizontal, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
    let padded = maps.pad([0, 0, radius, radius], "reflect", None);
    padded.conv2d(&vertical, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
}

/// The image score of each map: its maximum.
pub fn image_scores(maps: &Tensor) -> Vec<f32> {
    let n = maps.size()[0];
    let maxima = maps.view([n, -1]).amax([1i64].as_slice(), false);
    Vec::<f32>::try_from(maxima.to_kind(Kind::Float)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn blur_keeps_mass_and_spreads_a_peak() {
        let map = Tensor::zeros([1, 1, 33, 33], (Kind::Float, Device::Cpu));
        let _ = map.get(0).get(0).get(16).get(16).fill_(1.0);
        let blurred = gaussian_blur(&map, 2.0);
        assert!((blurred.sum(Kind::Float).double_value(&[]) - 1.0).abs() < 1e-4);
        let peak = blurred.double_value(&[0, 0, 16, 16]);
        assert!(
            (peak - 1.0 / (2.0 * std::f64::consts::PI * 4.0)).abs() < 2e-3,
            "{peak}"
        );
        assert!(blurred.double_value(&[0, 0, 16, 18]) < peak);
        assert!(gaussian_blur(&map, 0.0).equal(&map));
    }

    #[test]
    fn distances_and_scores() {
        let a = Tensor::zeros([2, 3, 2, 2], (Kind::Float, Device::Cpu));
        let b = a.copy();
        let _ = b.get(1).get(0).get(1).get(1).fill_(3.0);
        let _ = b.get(1).get(2).get(1).get(1).fill_(4.0);
        let d = channel_distance(&a, &b);
        assert_eq!(d.size(), [2, 1, 2, 2]);
        assert_eq!(d.double_value(&[1, 0, 1, 1]), 5.0);
        assert_eq!(image_scores(&d.squeeze_dim(1)), vec![0.0, 5.0]);
    }
}
