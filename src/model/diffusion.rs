//! The conditional diffusion model: a codec to the latent space, the UNet denoiser and
//! the Anomaly-Masked Network that conditions it, with the training losses and the
//! reconstruction path of inference (noise the input's latent to t_s, then DDIM
//! conditioned on the AMN of the input itself).

use super::amn::{amn_loss, Amn, AmnConfig};
use super::codec::LatentCodec;
use super::ddim::{ddim_sample, ddim_timesteps};
use super::noise::normal;
use super::schedule::{add_noise, target, Schedule};
use super::unet::{UNet, UNetConfig};
use crate::config::{Config, Prediction};
use crate::error::{Error, Result};
use crate::image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};

/// The two parts of the training loss, and their sum to back-propagate.
pub struct Losses {
    /// Denoising loss + AMN loss.
    pub total: Tensor,
    /// The denoising MSE.
    pub diffusion: f64,
    /// The AMN feature loss.
    pub amn: f64,
}

/// UNet + AMN + codec + schedule.
pub struct DiffusionModel {
    unet: UNet,
    amn: Amn,
    codec: Box<dyn LatentCodec>,
    schedule: Schedule,
    prediction: Prediction,
    context: Option<Tensor>,
    device: Device,
}

impl DiffusionModel {
    /// Builds the UNet under `root / "unet"` and the AMN under `root / "amn"`.
    /// `context` (1 x tokens x unet_context_dim) feeds the UNet's cross-attention and is
    /// required exactly when `unet_context_dim` is not 0.
    pub fn new(
        root: &nn::Path,
        config: &Config,
        codec: Box<dyn LatentCodec>,
        context: Option<Tensor>,
    ) -> Result<Self> {
        match (&context, config.unet_context_dim) {
            (None, 0) => {}
            (Some(c), dim) if dim > 0 && c.dim() == 3 && c.size()[0] == 1 && c.size()[2] == dim as i64 => {}
            (c, dim) => {
                return Err(Error::invalid(format!(
                    "cross-attention context of shape {:?} does not fit unet_context_dim {dim}; expected \
                     1 x tokens x {dim} (or none when the width is 0)",
                    c.as_ref().map(|c| c.size())
                )))
            }
        }
        let unet_config = UNetConfig::from_config(config, codec.latent_channels());
        let amn_config = AmnConfig::from_config(config, codec.stride())?;
        Ok(DiffusionModel {
            unet: UNet::new(root / "unet", &unet_config),
            amn: Amn::new(root / "amn", &amn_config)?,
            codec,
            schedule: Schedule::scaled_linear(config.timesteps),
            prediction: config.prediction,
            context: context.map(|c| c.to_device(root.device())),
            device: root.device(),
        })
    }

    /// The codec.
    pub fn codec(&self) -> &dyn LatentCodec {
        self.codec.as_ref()
    }

    /// The device the model lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The constant context repeated for a batch of `n`.
    fn batch_context(&self, n: i64) -> Option<Tensor> {
        self.context.as_ref().map(|c| c.expand([n, -1, -1], false))
    }

    /// The training losses for clean images and their condition inputs (the same
    /// images, some of them patch-perturbed), both N x 3 x H x W ImageNet-normalised.
    /// Timesteps and noise come from `rng`.
    pub fn losses(&self, clean: &Tensor, condition_input: &Tensor, rng: &mut ChaCha8Rng) -> Losses {
        let z0 = tch::no_grad(|| self.codec.encode(clean));
        let n = z0.size()[0];
        let timesteps: Vec<usize> = (0..n)
            .map(|_| rng.random_range(0..self.schedule.len()))
            .collect();
        let noise = normal(&z0.size(), rng, self.device);
        let alpha_bar = self.schedule.alpha_bar_batch(&timesteps, &z0);
        let zt = add_noise(&z0, &noise, &alpha_bar);
        let condition = self.amn.forward(condition_input, true);
        let t = Tensor::from_slice(&timesteps.iter().map(|&t| t as i64).collect::<Vec<_>>())
            .to_device(self.device);
        let context = self.batch_context(n);
        let output = self
            .unet
            .forward(&zt, &t, context.as_ref(), Some(&condition));
        let diffusion = (output - target(self.prediction, &z0, &noise, &alpha_bar))
            .square()
            .mean(Kind::Float);
        // The AMN target is detached: compute it without building a graph.
        let target = tch::no_grad(|| self.amn.stem_features(clean));
        let amn = amn_loss(&condition, &target);
        Losses {
            diffusion: diffusion.double_value(&[]),
            amn: amn.double_value(&[]),
            total: diffusion + amn,
        }
    }

    /// Inference reconstruction of an image batch: returns (z0, the clean-latent
    /// estimate) after noising z0 to `start_step` with noise from `rng` and running
    /// `steps` DDIM steps conditioned on the AMN of the images themselves.
    pub fn reconstruct(
        &self,
        images: &Tensor,
        start_step: usize,
        steps: usize,
        rng: &mut ChaCha8Rng,
    ) -> (Tensor, Tensor) {
        tch::no_grad(|| {
            let z0 = self.codec.encode(images);
            let condition = self.amn.forward(images, false);
            let start_step = start_step.min(self.schedule.len() - 1);
            let noise = normal(&z0.size(), rng, self.device);
            let alpha_bar = Tensor::from(self.schedule.alpha_bar(Some(start_step)) as f32)
                .to_device(self.device);
            let z_start = add_noise(&z0, &noise, &alpha_bar);
            let timesteps = ddim_timesteps(start_step, steps);
            let n = z0.size()[0];
            let estimate = ddim_sample(
                &self.schedule,
                self.prediction,
                &z_start,
                &timesteps,
                |z, t| {
                    let t = Tensor::full([n], t as i64, (Kind::Int64, self.device));
                    self.unet.forward(z, &t, None, Some(&condition))
                },
            );
            (z0, estimate)
        })
    }
}

/// Stacks images of equal size into an ImageNet-normalised N x 3 x H x W tensor.
pub fn image_batch(images: &[&RgbImage], device: Device) -> Result<Tensor> {
    let first = images
        .first()
        .ok_or_else(|| Error::invalid("an image batch needs at least one image"))?;
    let (w, h) = (first.width(), first.height());
    if let Some(other) = images.iter().find(|i| (i.width(), i.height()) != (w, h)) {
        return Err(Error::invalid(format!(
            "images of a batch must share one size: {w}x{h} and {}x{} given",
            other.width(),
            other.height()
        )));
    }
    let mut values = Vec::with_capacity(images.len() * 3 * w * h);
    for image in images {
        values.extend(crate::data::preprocess::normalize_imagenet(image));
    }
    Ok(Tensor::from_slice(&values)
        .view([images.len() as i64, 3, h as i64, w as i64])
        .to_device(device))
}
