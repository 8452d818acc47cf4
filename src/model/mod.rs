//! The diffusion model: latent codecs, the SD-style UNet, the Anomaly-Masked Network,
//! the noise schedule, the DDIM sampler, the optimiser and the training step.

pub mod amn;
pub mod backbone;
pub mod builder;
pub mod checkpoint;
pub mod codec;
pub mod ddim;
pub mod diffusion;
pub mod init;
pub mod layers;
pub mod noise;
pub mod optimizer;
pub mod schedule;
pub mod scorer;
pub mod training;
pub mod unet;
