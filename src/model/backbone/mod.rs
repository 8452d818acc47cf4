//! Frozen pretrained ImageNet backbones.
