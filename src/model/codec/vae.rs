//! The `vae` codec: the KL-regularised autoencoder of latent diffusion ("High-Resolution
//! Image Synthesis with Latent Diffusion Models", Rombach et al. 2022), as used by
//! Stable Diffusion 1.5 (KL-f8: 3 x H x W <-> 4 x H/8 x W/8). Variable names equal the
//! CompVis checkpoint keys without their `first_stage_model.` prefix, so an SD1.5
//! checkpoint loads without a translation table. The weights are frozen.

use super::LatentCodec;
use crate::data::preprocess::{IMAGENET_MEAN, IMAGENET_STD};
use crate::error::Result;
use crate::model::checkpoint::{load_prefixed, read_tensors};
use std::path::Path;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// Key prefix of the autoencoder inside a full SD1.5 checkpoint.
pub const SD_VAE_PREFIX: &str = "first_stage_model.";

/// Latent scale of SD1.5: latents are the posterior mean times this factor.
pub const SD_SCALE_FACTOR: f64 = 0.18215;

/// GroupNorm with the LDM autoencoder's settings (32 groups, eps 1e-6).
fn norm(vs: nn::Path, channels: i64) -> nn::GroupNorm {
    let config = nn::GroupNormConfig {
        eps: 1e-6,
        ..Default::default()
    };
    nn::group_norm(vs, 32, channels, config)
}

/// A convolution with `kernel` x `kernel` taps, stride 1 and "same" zero padding.
fn conv(vs: nn::Path, in_channels: i64, out_channels: i64, kernel: i64) -> nn::Conv2D {
    let config = nn::ConvConfig {
        padding: kernel / 2,
        ..Default::default()
    };
    nn::conv2d(vs, in_channels, out_channels, kernel, config)
}

/// Residual block without timestep input: (GroupNorm, SiLU, 3x3 conv) twice plus a
/// skip path, which is a 1x1 `nin_shortcut` convolution when the widths differ.
#[derive(Debug)]
struct ResnetBlock {
    norm1: nn::GroupNorm,
    conv1: nn::Conv2D,
    norm2: nn::GroupNorm,
    conv2: nn::Conv2D,
    nin_shortcut: Option<nn::Conv2D>,
}

impl ResnetBlock {
    fn new(vs: nn::Path, in_channels: i64, out_channels: i64) -> Self {
        ResnetBlock {
            norm1: norm(&vs / "norm1", in_channels),
            conv1: conv(&vs / "conv1", in_channels, out_channels, 3),
            norm2: norm(&vs / "norm2", out_channels),
            conv2: conv(&vs / "conv2", out_channels, out_channels, 3),
            nin_shortcut: (in_channels != out_channels)
                .then(|| conv(&vs / "nin_shortcut", in_channels, out_channels, 1)),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let h = xs.apply(&self.norm1).silu().apply(&self.conv1);
        let h = h.apply(&self.norm2).silu().apply(&self.conv2);
        match &self.nin_shortcut {
            Some(shortcut) => xs.apply(shortcut) + h,
            None => xs + h,
        }
    }
}

/// Single-head self-attention over all positions, with 1x1 convolutions as the
/// query, key, value and output projections.
#[derive(Debug)]
struct AttnBlock {
    norm: nn::GroupNorm,
    q: nn::Conv2D,
    k: nn::Conv2D,
    v: nn::Conv2D,
    proj_out: nn::Conv2D,
}

impl AttnBlock {
    fn new(vs: nn::Path, channels: i64) -> Self {
        AttnBlock {
            norm: norm(&vs / "norm", channels),
            q: conv(&vs / "q", channels, channels, 1),
            k: conv(&vs / "k", channels, channels, 1),
            v: conv(&vs / "v", channels, channels, 1),
            proj_out: conv(&vs / "proj_out", channels, channels, 1),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let (n, c, h, w) = xs.size4().expect("attention input is N x C x H x W");
        let normed = xs.apply(&self.norm);
        // [N, C, H, W] -> [N, HW, C] for queries, keys and values.
        let tokens = |conv: &nn::Conv2D| normed.apply(conv).reshape([n, c, h * w]).transpose(1, 2);
        let (q, k, v) = (tokens(&self.q), tokens(&self.k), tokens(&self.v));
        let weights = (q.matmul(&k.transpose(1, 2)) * (c as f64).powf(-0.5))
            .softmax(-1, Kind::Float)
            .to_kind(v.kind());
        let attended = weights.matmul(&v).transpose(1, 2).reshape([n, c, h, w]);
        xs + attended.apply(&self.proj_out)
    }
}

/// The resolution levels' widths and depth of an LDM autoencoder.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoencoderKLConfig {
    /// Width of the first level.
    pub ch: i64,
    /// Width multiplier of each level; every level but the last halves the resolution.
    pub ch_mult: Vec<i64>,
    /// Residual blocks per encoder level (the decoder has one more).
    pub num_res_blocks: usize,
    /// Latent channels.
    pub z_channels: i64,
}

impl Default for AutoencoderKLConfig {
    /// Stable Diffusion 1.5's KL-f8 autoencoder.
    fn default() -> Self {
        AutoencoderKLConfig {
            ch: 128,
            ch_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            z_channels: 4,
        }
    }
}

/// One encoder level: residual blocks, then an optional stride-2 downsampling.
#[derive(Debug)]
struct DownLevel {
    blocks: Vec<ResnetBlock>,
    downsample: Option<nn::Conv2D>,
}

/// One decoder level: residual blocks, then an optional nearest 2x upsampling + conv.
#[derive(Debug)]
struct UpLevel {
    blocks: Vec<ResnetBlock>,
    upsample: Option<nn::Conv2D>,
}

/// The middle of encoder and decoder: residual block, attention, residual block.
#[derive(Debug)]
struct Mid {
    block_1: ResnetBlock,
    attn_1: AttnBlock,
    block_2: ResnetBlock,
}

impl Mid {
    fn new(vs: nn::Path, channels: i64) -> Self {
        Mid {
            block_1: ResnetBlock::new(&vs / "block_1", channels, channels),
            attn_1: AttnBlock::new(&vs / "attn_1", channels),
            block_2: ResnetBlock::new(&vs / "block_2", channels, channels),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        self.block_2
            .forward(&self.attn_1.forward(&self.block_1.forward(xs)))
    }
}

/// Image (3 channels, [-1, 1]) to the Gaussian posterior's mean and log-variance.
#[derive(Debug)]
struct Encoder {
    conv_in: nn::Conv2D,
    down: Vec<DownLevel>,
    mid: Mid,
    norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Encoder {
    fn new(vs: nn::Path, config: &AutoencoderKLConfig) -> Self {
        let widths: Vec<i64> = config.ch_mult.iter().map(|m| m * config.ch).collect();
        let mut channels = config.ch;
        let down = widths
            .iter()
            .enumerate()
            .map(|(i, &width)| {
                let level = &vs / "down" / i;
                let blocks = (0..config.num_res_blocks)
                    .map(|j| {
                        let block = ResnetBlock::new(&level / "block" / j, channels, width);
                        channels = width;
                        block
                    })
                    .collect();
                let stride2 = nn::ConvConfig {
                    stride: 2,
                    ..Default::default()
                };
                let downsample = (i + 1 < widths.len())
                    .then(|| nn::conv2d(&level / "downsample" / "conv", width, width, 3, stride2));
                DownLevel { blocks, downsample }
            })
            .collect();
        Encoder {
            conv_in: conv(&vs / "conv_in", 3, config.ch, 3),
            down,
            mid: Mid::new(&vs / "mid", channels),
            norm_out: norm(&vs / "norm_out", channels),
            conv_out: conv(&vs / "conv_out", channels, 2 * config.z_channels, 3),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.apply(&self.conv_in);
        for level in &self.down {
            for block in &level.blocks {
                h = block.forward(&h);
            }
            if let Some(downsample) = &level.downsample {
                // Asymmetric padding: one zero column right and one zero row below.
                h = h.constant_pad_nd([0, 1, 0, 1]).apply(downsample);
            }
        }
        self.mid
            .forward(&h)
            .apply(&self.norm_out)
            .silu()
            .apply(&self.conv_out)
    }
}

/// Latent (`z_channels`) to image (3 channels, [-1, 1]).
#[derive(Debug)]
struct Decoder {
    conv_in: nn::Conv2D,
    mid: Mid,
    /// Indexed by level like the checkpoint (`up.0` is the full-resolution level); the
    /// forward pass runs them from the last to the first.
    up: Vec<UpLevel>,
    norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
}

impl Decoder {
    fn new(vs: nn::Path, config: &AutoencoderKLConfig) -> Self {
        let widths: Vec<i64> = config.ch_mult.iter().map(|m| m * config.ch).collect();
        let top = widths.last().copied().unwrap_or(config.ch);
        let mut channels = top;
        let mut up: Vec<UpLevel> = widths
            .iter()
            .enumerate()
            .rev()
            .map(|(i, &width)| {
                let level = &vs / "up" / i;
                let blocks = (0..=config.num_res_blocks)
                    .map(|j| {
                        let block = ResnetBlock::new(&level / "block" / j, channels, width);
                        channels = width;
                        block
                    })
                    .collect();
                let upsample = (i > 0).then(|| conv(&level / "upsample" / "conv", width, width, 3));
                UpLevel { blocks, upsample }
            })
            .collect();
        up.reverse();
        Decoder {
            conv_in: conv(&vs / "conv_in", config.z_channels, top, 3),
            mid: Mid::new(&vs / "mid", top),
            up,
            norm_out: norm(&vs / "norm_out", channels),
            conv_out: conv(&vs / "conv_out", channels, 3, 3),
        }
    }

    fn forward(&self, zs: &Tensor) -> Tensor {
        let mut h = self.mid.forward(&zs.apply(&self.conv_in));
        for level in self.up.iter().rev() {
            for block in &level.blocks {
                h = block.forward(&h);
            }
            if let Some(upsample) = &level.upsample {
                let (_, _, height, width) = h.size4().expect("decoder state is N x C x H x W");
                h = h
                    .upsample_nearest2d([2 * height, 2 * width], None, None)
                    .apply(upsample);
            }
        }
        h.apply(&self.norm_out).silu().apply(&self.conv_out)
    }
}

/// The KL autoencoder: encoder + `quant_conv` to the posterior moments,
/// `post_quant_conv` + decoder back to the image.
#[derive(Debug)]
pub struct AutoencoderKL {
    encoder: Encoder,
    decoder: Decoder,
    quant_conv: nn::Conv2D,
    post_quant_conv: nn::Conv2D,
    z_channels: i64,
}

impl AutoencoderKL {
    /// An autoencoder with its variables under `vs`, named as in the LDM checkpoint.
    pub fn new(vs: nn::Path, config: &AutoencoderKLConfig) -> Self {
        let z = config.z_channels;
        AutoencoderKL {
            encoder: Encoder::new(&vs / "encoder", config),
            decoder: Decoder::new(&vs / "decoder", config),
            quant_conv: conv(&vs / "quant_conv", 2 * z, 2 * z, 1),
            post_quant_conv: conv(&vs / "post_quant_conv", z, z, 1),
            z_channels: z,
        }
    }

    /// The mean of the latent posterior for images in [-1, 1] (unscaled).
    pub fn encode_mean(&self, images: &Tensor) -> Tensor {
        self.encoder
            .forward(images)
            .apply(&self.quant_conv)
            .narrow(1, 0, self.z_channels)
    }

    /// Images in [-1, 1] (unclamped) from unscaled latents.
    pub fn decode(&self, latents: &Tensor) -> Tensor {
        self.decoder.forward(&latents.apply(&self.post_quant_conv))
    }
}

/// The SD1.5 KL-f8 autoencoder as a [`LatentCodec`]: encode gives the posterior mean
/// times 0.18215 (deterministic, no sampling); decode divides by it. Images cross the
/// interface ImageNet-normalised and are mapped to the autoencoder's [-1, 1] inside.
#[derive(Debug)]
pub struct VaeCodec {
    model: AutoencoderKL,
}

// SAFETY: the codec holds frozen weights that no method mutates after construction;
// libtorch allows any number of threads to read the same tensors concurrently.
unsafe impl Sync for VaeCodec {}

impl VaeCodec {
    /// A codec with freshly initialised (random) weights, for tests and shape checks.
    pub fn random(device: Device) -> Self {
        let mut vs = nn::VarStore::new(device);
        let model = AutoencoderKL::new(vs.root(), &AutoencoderKLConfig::default());
        vs.freeze();
        VaeCodec { model }
    }

    /// Loads SD1.5 autoencoder weights from a safetensors file: either a full SD1.5
    /// checkpoint (keys `first_stage_model.*`, other keys ignored) or the autoencoder
    /// alone with bare keys (`encoder.conv_in.weight`, ...). Every key must be present
    /// with its shape; errors name the key. The weights are frozen.
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let file = read_tensors(path)?;
        let prefix = if file.keys().any(|k| k.starts_with(SD_VAE_PREFIX)) {
            SD_VAE_PREFIX
        } else {
            ""
        };
        let mut vs = nn::VarStore::new(device);
        let model = AutoencoderKL::new(vs.root(), &AutoencoderKLConfig::default());
        load_prefixed(&vs, &file, prefix, path)?;
        vs.freeze();
        Ok(VaeCodec { model })
    }
}

/// Per-channel ImageNet mean and std as [1, 3, 1, 1] tensors of the kind and device
/// of `like`.
fn imagenet_stats(like: &Tensor) -> (Tensor, Tensor) {
    let channel = |values: &[f32]| {
        Tensor::from_slice(values)
            .to_kind(like.kind())
            .to_device(like.device())
            .view([1, 3, 1, 1])
    };
    (channel(&IMAGENET_MEAN), channel(&IMAGENET_STD))
}

impl LatentCodec for VaeCodec {
    fn latent_channels(&self) -> i64 {
        self.model.z_channels
    }

    fn stride(&self) -> i64 {
        8
    }

    fn encode(&self, images: &Tensor) -> Tensor {
        let (mean, std) = imagenet_stats(images);
        let unit = images * std + mean;
        self.model.encode_mean(&(unit * 2.0 - 1.0)) * SD_SCALE_FACTOR
    }

    fn decode(&self, latents: &Tensor) -> Option<Tensor> {
        let decoded = self.model.decode(&(latents / SD_SCALE_FACTOR));
        let (mean, std) = imagenet_stats(&decoded);
        let unit = ((decoded + 1.0) / 2.0).clamp(0.0, 1.0);
        Some((unit - mean) / std)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checkpoint::save_prefixed;

    fn random_model() -> (nn::VarStore, AutoencoderKL) {
        let vs = nn::VarStore::new(Device::Cpu);
        let model = AutoencoderKL::new(vs.root(), &AutoencoderKLConfig::default());
        (vs, model)
    }

    #[test]
    fn variables_match_the_sd15_checkpoint() {
        let (vs, _) = random_model();
        let variables = vs.variables();
        let count: i64 = variables
            .values()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        assert_eq!(count, 83_653_863);
        let shape = |key: &str| {
            variables
                .get(key)
                .unwrap_or_else(|| panic!("no variable {key}"))
                .size()
        };
        assert_eq!(shape("encoder.conv_in.weight"), [128, 3, 3, 3]);
        assert_eq!(
            shape("encoder.down.1.block.0.nin_shortcut.weight"),
            [256, 128, 1, 1]
        );
        assert_eq!(
            shape("encoder.down.2.downsample.conv.weight"),
            [512, 512, 3, 3]
        );
        assert_eq!(shape("encoder.mid.attn_1.q.weight"), [512, 512, 1, 1]);
        assert_eq!(shape("encoder.conv_out.weight"), [8, 512, 3, 3]);
        assert_eq!(shape("quant_conv.weight"), [8, 8, 1, 1]);
        assert_eq!(shape("post_quant_conv.weight"), [4, 4, 1, 1]);
        assert_eq!(shape("decoder.conv_in.weight"), [512, 4, 3, 3]);
        assert_eq!(shape("decoder.up.3.block.2.conv2.weight"), [512, 512, 3, 3]);
        assert_eq!(
            shape("decoder.up.1.block.0.nin_shortcut.weight"),
            [256, 512, 1, 1]
        );
        assert_eq!(shape("decoder.up.1.upsample.conv.bias"), [256]);
        assert_eq!(shape("decoder.norm_out.weight"), [128]);
        assert!(!variables.contains_key("encoder.down.3.downsample.conv.weight"));
        assert!(!variables.contains_key("decoder.up.0.upsample.conv.weight"));
    }

    #[test]
    fn encode_and_decode_shapes() {
        tch::manual_seed(0);
        let codec = VaeCodec::random(Device::Cpu);
        let images = Tensor::randn([1, 3, 64, 64], (Kind::Float, Device::Cpu));
        let latents = tch::no_grad(|| codec.encode(&images));
        assert_eq!(latents.size(), [1, 4, 8, 8]);
        assert_eq!((codec.latent_channels(), codec.stride()), (4, 8));
        let back = tch::no_grad(|| codec.decode(&latents)).expect("the VAE has a decoder");
        assert_eq!(back.size(), [1, 3, 64, 64]);
    }

    #[test]
    fn saved_weights_load_with_or_without_prefix_and_missing_keys_are_named() {
        tch::manual_seed(1);
        let dir = tempfile::tempdir().expect("temporary directory");
        let (vs, model) = random_model();
        let reference = VaeCodec { model };
        let images = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let expected = tch::no_grad(|| reference.encode(&images));
        for prefix in [SD_VAE_PREFIX, ""] {
            let path = dir.path().join("vae.safetensors");
            save_prefixed(&vs, prefix, &path).expect("save");
            let loaded = VaeCodec::load(&path, Device::Cpu).expect("load");
            assert!(tch::no_grad(|| loaded.encode(&images)).equal(&expected));
        }

        let mut partial: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(name, _)| name != "decoder.mid.attn_1.k.bias")
            .map(|(name, t)| (format!("{SD_VAE_PREFIX}{name}"), t))
            .collect();
        partial.push((
            "model.diffusion_model.x".into(),
            Tensor::zeros([1], (Kind::Float, Device::Cpu)),
        ));
        let path = dir.path().join("partial.safetensors");
        Tensor::write_safetensors(&partial, &path).expect("write");
        let err = VaeCodec::load(&path, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("missing key 'first_stage_model.decoder.mid.attn_1.k.bias'"),
            "{err}"
        );
    }
}
