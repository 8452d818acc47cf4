//! Latent codecs: the space the diffusion runs in. An image batch (N x 3 x H x W,
//! ImageNet-normalised) is encoded to a latent (N x C x H/s x W/s) and, where the codec
//! has a decoder, decoded back.

mod features;
mod pixel;
mod vae;

pub use features::FeatureCodec;
pub use pixel::PixelCodec;
pub use vae::{AutoencoderKL, AutoencoderKLConfig, VaeCodec, SD_SCALE_FACTOR, SD_VAE_PREFIX};

use tch::Tensor;

/// The interface every codec offers.
pub trait LatentCodec: Send + Sync {
    /// Channels of the latent.
    fn latent_channels(&self) -> i64;
    /// Image pixels per latent pixel along each side.
    fn stride(&self) -> i64;
    /// Encodes an ImageNet-normalised image batch into latents.
    fn encode(&self, images: &Tensor) -> Tensor;
    /// Decodes latents back into an ImageNet-normalised image batch; `None` when the
    /// codec has no decoder (the anomaly map is then computed in latent space).
    fn decode(&self, latents: &Tensor) -> Option<Tensor>;
    /// Fits whatever statistics the codec keeps on a task's ImageNet-normalised
    /// training images (batches N x 3 x H x W); codecs without statistics do nothing.
    fn fit_statistics(&self, _batches: Vec<Tensor>) -> crate::error::Result<()> {
        Ok(())
    }
}
