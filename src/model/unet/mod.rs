//! The Stable-Diffusion-style UNet denoiser: residual blocks, spatial transformers and
//! the timestep embedding, assembled with SD1.5's checkpoint key names.

mod attention;
mod embeddings;
mod resnet;
#[allow(clippy::module_inception)]
mod unet;

pub use attention::{SpatialTransformer, SpatialTransformerConfig};
pub use embeddings::{timestep_embedding, TimestepEmbedding, TimestepEmbeddingConfig};
pub use resnet::{ResBlock, ResBlockConfig};
pub use unet::{UNet, UNetConfig};
