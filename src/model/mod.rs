//! The diffusion model: latent codecs, the SD-style UNet, the Anomaly-Masked Network,
//! the noise schedule, the DDIM sampler, the optimiser and the training step.

pub mod backbone;
pub mod checkpoint;
pub mod codec;
pub mod unet;
