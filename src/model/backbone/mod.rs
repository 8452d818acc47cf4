//! Frozen pretrained ImageNet backbones.

mod efficientnet;

pub use efficientnet::{EfficientNetLite0, FEATURE_CHANNELS, FEATURE_STRIDES};
