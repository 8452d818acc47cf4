//! Frozen pretrained ImageNet backbones: the built-in EfficientNet-Lite0, and any
//! TorchScript module a user brings for scoring (e.g. a ResNet-50 or WideResNet-50).

mod efficientnet;
mod torchscript;

pub use efficientnet::{EfficientNetLite0, FEATURE_CHANNELS, FEATURE_STRIDES};
pub use torchscript::TorchScriptBackbone;

use crate::error::Result;
use tch::Tensor;

/// A frozen network that turns an ImageNet-normalised N x 3 x H x W batch into a list
/// of N x C x h x w feature maps (shallow to deep); the scorer compares the maps that
/// `score_layers` selects.
pub trait FeatureBackbone: Send + Sync {
    /// The first `count` feature maps (fewer only if the network has fewer).
    fn feature_maps(&self, images: &Tensor, count: usize) -> Result<Vec<Tensor>>;

    /// The serialised module when the network came from a user's file, so that a saved
    /// detector carries it; `None` for the built-in backbone (its weights are variables).
    fn serialized(&self) -> Option<&[u8]> {
        None
    }
}

impl FeatureBackbone for EfficientNetLite0 {
    fn feature_maps(&self, images: &Tensor, count: usize) -> Result<Vec<Tensor>> {
        let deepest = FEATURE_STRIDES[count.clamp(1, FEATURE_STRIDES.len()) - 1];
        Ok(self.forward_features_to(images, deepest))
    }
}
