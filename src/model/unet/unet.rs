//! The denoiser `eps_theta(z_t, t, c)`: the UNet of latent diffusion ("High-Resolution
//! Image Synthesis with Latent Diffusion Models", Rombach et al. 2022) as shipped in
//! Stable Diffusion 1.5, with CDAD's condition added after the input convolution
//! ("One-for-More: Continual Diffusion Model for Anomaly Detection", CVPR 2025).
//!
//! Variable names equal the keys of the original (CompVis) SD1.5 checkpoint without
//! their `model.diffusion_model.` prefix: `time_embed`, `input_blocks.{i}.{j}`,
//! `middle_block.{0,1,2}`, `output_blocks.{i}.{j}`, `out.{0,2}`.

use super::attention::{SpatialTransformer, SpatialTransformerConfig};
use super::embeddings::TimestepEmbedding;
use super::resnet::{ResBlock, ResBlockConfig};
use crate::config::Config;
use crate::model::layers;
use tch::{nn, Tensor};

/// Shape of a UNet. [`UNetConfig::sd15`] (also the `Default`) is Stable Diffusion 1.5.
#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    /// Channels of the latent that goes in.
    pub in_channels: i64,
    /// Channels of the prediction that comes out.
    pub out_channels: i64,
    /// Width of the first level (SD: model_channels); also the width of the condition.
    pub model_channels: i64,
    /// Width multiplier of each level, from the highest resolution down.
    pub channel_mult: Vec<i64>,
    /// Residual blocks per level on the way down (one more on the way up).
    pub num_res_blocks: usize,
    /// Levels (0 = highest resolution) whose blocks carry a spatial transformer. The
    /// middle block always carries one, as in LDM.
    pub attention_levels: Vec<usize>,
    /// Attention heads; a head is `width / num_heads` wide.
    pub num_heads: i64,
    /// Width of the cross-attention context; `None` builds no cross-attention.
    pub context_dim: Option<i64>,
    /// GroupNorm groups of every normalisation.
    pub norm_groups: i64,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self::sd15()
    }
}

impl UNetConfig {
    /// The Stable Diffusion 1.5 UNet (859,520,964 parameters).
    pub fn sd15() -> Self {
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            model_channels: 320,
            channel_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attention_levels: vec![0, 1, 2],
            num_heads: 8,
            context_dim: Some(768),
            norm_groups: 32,
        }
    }

    /// The UNet of a detector configuration (one that passed [`Config::validate`]) for
    /// latents with `latent_channels` channels in and out. `unet_context_dim = 0` means
    /// no cross-attention. The GroupNorm groups are 32 when every width is a multiple of
    /// 32, otherwise the largest divisor of `unet_channels` up to 32 (which divides every
    /// level width, all of them being multiples of `unet_channels`).
    pub fn from_config(config: &Config, latent_channels: i64) -> Self {
        let model_channels = config.unet_channels as i64;
        UNetConfig {
            in_channels: latent_channels,
            out_channels: latent_channels,
            model_channels,
            channel_mult: config.unet_channel_mult.iter().map(|&m| m as i64).collect(),
            num_res_blocks: config.unet_res_blocks,
            attention_levels: config.unet_attention_levels.clone(),
            num_heads: config.unet_heads as i64,
            context_dim: Some(config.unet_context_dim as i64).filter(|&d| d > 0),
            norm_groups: (1..=model_channels.min(32))
                .rev()
                .find(|g| model_channels % g == 0)
                .unwrap_or(1),
        }
    }
}

/// One layer of a UNet block (LDM's `TimestepEmbedSequential` holds a list of them);
/// the large variants are boxed.
#[derive(Debug)]
enum Layer {
    Res(Box<ResBlock>),
    Attention(Box<SpatialTransformer>),
    /// 3x3 convolution with stride 2 (`op`).
    Down(layers::Conv2d),
    /// Nearest-neighbour x2 upsampling, then a 3x3 convolution (`conv`).
    Up(layers::Conv2d),
}

/// A numbered UNet block: its layers applied in order.
#[derive(Debug)]
struct Block(Vec<Layer>);

impl Block {
    fn forward(&self, xs: &Tensor, emb: &Tensor, context: Option<&Tensor>) -> Tensor {
        self.0
            .iter()
            .fold(xs.shallow_clone(), |h, layer| match layer {
                Layer::Res(block) => block.forward(&h, emb),
                Layer::Attention(block) => block.forward(&h, context),
                Layer::Down(conv) => h.apply(conv),
                Layer::Up(conv) => h
                    .upsample_nearest2d_vec(None::<&[i64]>, [2.0, 2.0])
                    .apply(conv),
            })
    }
}

/// The UNet denoiser.
#[derive(Debug)]
pub struct UNet {
    time_embed: TimestepEmbedding,
    conv_in: layers::Conv2d,
    input_blocks: Vec<Block>,
    middle_block: Block,
    output_blocks: Vec<Block>,
    out_norm: nn::GroupNorm,
    out_conv: layers::Conv2d,
    model_channels: i64,
}

impl UNet {
    /// Builds the UNet under `vs` with variable names equal to the SD1.5 checkpoint keys.
    /// `config` must be buildable: attention levels that exist, `num_heads` dividing the
    /// widths of attention levels and of the deepest level, `norm_groups` dividing
    /// `model_channels` (true for [`UNetConfig::sd15`] and for [`UNetConfig::from_config`]
    /// of a validated [`Config`]); libtorch panics on shapes it cannot build or apply.
    /// As in SD, the output convolution, the last convolution of every residual block and
    /// every transformer's `proj_out` start at zero.
    pub fn new(vs: nn::Path, config: &UNetConfig) -> UNet {
        let mc = config.model_channels;
        let emb_channels = 4 * mc;
        let groups = config.norm_groups;
        let conv3 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let res = |p: nn::Path, ch_in: i64, out: i64| {
            let block = ResBlockConfig {
                out_channels: Some(out),
                emb_channels,
                groups,
                eps: 1e-5,
            };
            Layer::Res(Box::new(ResBlock::new(p, ch_in, block)))
        };
        let attention = |p: nn::Path, width: i64| {
            let heads = config.num_heads;
            let transformer = SpatialTransformerConfig {
                heads,
                head_dim: width / heads,
                context_dim: config.context_dim,
                groups,
            };
            Layer::Attention(Box::new(SpatialTransformer::new(p, width, transformer)))
        };
        let levels = config.channel_mult.len();

        let inputs = &vs / "input_blocks";
        let conv_in = layers::conv2d(&inputs / 0 / 0, config.in_channels, mc, 3, conv3);
        let mut input_blocks = Vec::new();
        let mut skip_widths = vec![mc];
        let mut ch = mc;
        for (level, &mult) in config.channel_mult.iter().enumerate() {
            for _ in 0..config.num_res_blocks {
                let p = &inputs / (input_blocks.len() + 1);
                let mut layers = vec![res(&p / 0, ch, mc * mult)];
                ch = mc * mult;
                if config.attention_levels.contains(&level) {
                    layers.push(attention(&p / 1, ch));
                }
                input_blocks.push(Block(layers));
                skip_widths.push(ch);
            }
            if level + 1 < levels {
                let p = &inputs / (input_blocks.len() + 1) / 0 / "op";
                let down = nn::ConvConfig { stride: 2, ..conv3 };
                input_blocks.push(Block(vec![Layer::Down(layers::conv2d(p, ch, ch, 3, down))]));
                skip_widths.push(ch);
            }
        }

        let middle = &vs / "middle_block";
        let middle_block = Block(vec![
            res(&middle / 0, ch, ch),
            attention(&middle / 1, ch),
            res(&middle / 2, ch, ch),
        ]);

        let outputs = &vs / "output_blocks";
        let mut output_blocks = Vec::new();
        // Each output block consumes the latest unconsumed input-block activation.
        let mut skips = skip_widths.into_iter().rev();
        for (level, &mult) in config.channel_mult.iter().enumerate().rev() {
            for (i, skip) in (0..=config.num_res_blocks).zip(&mut skips) {
                let p = &outputs / output_blocks.len();
                let mut layers = vec![res(&p / 0, ch + skip, mc * mult)];
                ch = mc * mult;
                if config.attention_levels.contains(&level) {
                    layers.push(attention(&p / 1, ch));
                }
                if level > 0 && i == config.num_res_blocks {
                    let conv = layers::conv2d(&p / layers.len() / "conv", ch, ch, 3, conv3);
                    layers.push(Layer::Up(conv));
                }
                output_blocks.push(Block(layers));
            }
        }

        let out = &vs / "out";
        let zero = nn::ConvConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: nn::Init::Const(0.0),
            ..conv3
        };
        UNet {
            time_embed: TimestepEmbedding::new(
                &vs / "time_embed",
                mc,
                emb_channels,
                Default::default(),
            ),
            conv_in,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm: nn::group_norm(&out / 0, groups, ch, Default::default()),
            out_conv: layers::conv2d(&out / 2, ch, config.out_channels, 3, zero),
            model_channels: mc,
        }
    }

    /// Width of the first level: the channels a condition must have.
    pub fn model_channels(&self) -> i64 {
        self.model_channels
    }

    /// Predicts from the noisy latent `x` (`N x in_channels x H x W`, H and W divisible
    /// by `2^(levels - 1)`) at `timesteps` (`[N]`, integer or float). `context`
    /// (`N x M x context_dim`) feeds the cross-attention; without it the cross-attention
    /// sub-layers are skipped (a UNet built without cross-attention ignores it). `condition` (`N x model_channels x H x W`, the AMN's
    /// output) is added to the hidden state right after `input_blocks.0.0`; a zero
    /// condition is the same as `None`. Returns `N x out_channels x H x W`.
    pub fn forward(
        &self,
        x: &Tensor,
        timesteps: &Tensor,
        context: Option<&Tensor>,
        condition: Option<&Tensor>,
    ) -> Tensor {
        let emb = self.time_embed.forward(&timesteps.to_device(x.device()));
        let h = x.apply(&self.conv_in);
        let mut h = match condition {
            Some(condition) => h + condition,
            None => h,
        };
        let mut skips = vec![h.shallow_clone()];
        for block in &self.input_blocks {
            h = block.forward(&h, &emb, context);
            skips.push(h.shallow_clone());
        }
        h = self.middle_block.forward(&h, &emb, context);
        for (block, skip) in self.output_blocks.iter().zip(skips.iter().rev()) {
            h = block.forward(&Tensor::cat(&[&h, skip], 1), &emb, context);
        }
        h.apply(&self.out_norm).silu().apply(&self.out_conv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use crate::model::checkpoint::{load_prefixed, read_tensors, save_prefixed};
    use std::collections::BTreeMap;
    use std::path::Path;
    use tch::{nn::VarStore, Device, Kind};

    const PREFIX: &str = "model.diffusion_model.";

    fn build(config: &UNetConfig) -> (VarStore, UNet) {
        let vs = VarStore::new(Device::Cpu);
        let unet = UNet::new(vs.root(), config);
        (vs, unet)
    }

    /// Replaces every weight by small random values (in name order, so a seed fixes
    /// them), so no zero-initialised layer hides what flows through the network.
    fn randomise(vs: &VarStore) {
        let variables: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        tch::no_grad(|| {
            for mut variable in variables.into_values() {
                variable.copy_(&(variable.randn_like() * 0.2));
            }
        });
    }

    fn tiny() -> UNetConfig {
        // The tiny preset's pixel codec: factor 4 turns a 32 px RGB image into 48 x 8 x 8.
        UNetConfig::from_config(&Preset::Tiny.config(), 48)
    }

    /// Runs `unet` on a batch of two `side x side` latents and checks the output shape.
    fn run(unet: &UNet, config: &UNetConfig, side: i64, context: Option<&Tensor>) -> Tensor {
        let x = Tensor::ones(
            [2, config.in_channels, side, side],
            (Kind::Float, Device::Cpu),
        );
        let out = unet.forward(&x, &Tensor::from_slice(&[999i64, 0]), context, None);
        assert_eq!(out.size(), x.size());
        assert!(bool::try_from(out.isfinite().all()).unwrap());
        out
    }

    fn max_abs(t: &Tensor) -> f64 {
        t.abs().max().double_value(&[])
    }

    #[test]
    fn output_has_the_input_shape_for_every_preset() {
        let config = tiny();
        assert_eq!((config.norm_groups, config.context_dim), (16, None));
        let (_, unet) = build(&config);
        assert_eq!(unet.model_channels(), 16);
        // The zero-initialised output convolution makes a fresh UNet predict zero.
        assert_eq!(max_abs(&run(&unet, &config, 8, None)), 0.0);

        let config = UNetConfig::from_config(&Preset::Compact.config(), 112);
        assert_eq!(config.norm_groups, 32);
        let (_, unet) = build(&config);
        assert_eq!(max_abs(&run(&unet, &config, 16, None)), 0.0);

        // The paper's shape (4 levels, attention at 0..2, cross-attention) at small width.
        let mut paper = Preset::Paper.config();
        paper.unet_channels = 32;
        paper.unet_context_dim = 24;
        let config = UNetConfig::from_config(&paper, 4);
        let expected = UNetConfig {
            model_channels: 32,
            context_dim: Some(24),
            ..UNetConfig::sd15()
        };
        assert_eq!(config, expected);
        let (vs, unet) = build(&config);
        randomise(&vs);
        let context = Tensor::randn([2, 3, 24], (Kind::Float, Device::Cpu));
        let with_context = run(&unet, &config, 8, Some(&context));
        assert!(max_abs(&(with_context - run(&unet, &config, 8, None))) > 1e-4);
    }

    #[test]
    fn norm_groups_are_the_largest_divisor_of_the_first_width_up_to_32() {
        for (channels, groups) in [(16, 16), (24, 24), (40, 20), (64, 32), (320, 32)] {
            let config = Config {
                unet_channels: channels,
                ..Preset::Tiny.config()
            };
            assert_eq!(
                UNetConfig::from_config(&config, 48).norm_groups,
                groups,
                "{channels}"
            );
        }
    }

    #[test]
    fn sd15_has_the_checkpoint_parameter_count_and_key_names() {
        // Half precision halves the memory (1.7 GB instead of 3.4 GB); names and shapes
        // do not depend on it.
        let mut vs = VarStore::new(Device::Cpu);
        vs.set_kind(Kind::Half);
        let _ = UNet::new(vs.root(), &UNetConfig::sd15());
        let variables = vs.variables();
        let total: i64 = variables
            .values()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        assert_eq!(total, 859_520_964);
        assert_eq!(variables.len(), 686);
        for (key, size) in [
            (
                "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
                vec![320, 768],
            ),
            ("middle_block.1.proj_in.weight", vec![1280, 1280, 1, 1]),
            (
                "output_blocks.11.0.skip_connection.weight",
                vec![320, 640, 1, 1],
            ),
            ("time_embed.0.weight", vec![1280, 320]),
            ("time_embed.2.bias", vec![1280]),
            ("out.2.weight", vec![4, 320, 3, 3]),
            ("out.0.bias", vec![320]),
            ("input_blocks.0.0.weight", vec![320, 4, 3, 3]),
            ("input_blocks.3.0.op.weight", vec![320, 320, 3, 3]),
            (
                "input_blocks.4.0.skip_connection.weight",
                vec![640, 320, 1, 1],
            ),
            ("input_blocks.10.0.emb_layers.1.weight", vec![1280, 1280]),
            (
                "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight",
                vec![10240, 1280],
            ),
            (
                "middle_block.1.transformer_blocks.0.ff.net.2.weight",
                vec![1280, 5120],
            ),
            ("middle_block.2.out_layers.3.weight", vec![1280, 1280, 3, 3]),
            ("output_blocks.2.1.conv.weight", vec![1280, 1280, 3, 3]),
            ("output_blocks.5.2.conv.weight", vec![1280, 1280, 3, 3]),
            ("output_blocks.8.2.conv.bias", vec![640]),
            (
                "output_blocks.3.1.transformer_blocks.0.attn1.to_out.0.weight",
                vec![1280, 1280],
            ),
            (
                "output_blocks.9.1.transformer_blocks.0.norm2.weight",
                vec![320],
            ),
        ] {
            assert_eq!(variables.get(key).map(Tensor::size), Some(size), "{key}");
        }
        for absent in [
            "input_blocks.10.1.norm.weight",
            "output_blocks.2.1.norm.weight",
            "input_blocks.3.1.conv.weight",
        ] {
            assert!(!variables.contains_key(absent), "{absent}");
        }
        let zero = |key: &str| max_abs(&variables[key]) == 0.0;
        assert!(zero("out.2.weight") && zero("middle_block.0.out_layers.3.weight"));
        assert!(
            zero("output_blocks.5.1.proj_out.weight") && !zero("output_blocks.5.1.proj_in.weight")
        );
    }

    #[test]
    fn weights_round_trip_through_an_sd_checkpoint_and_mismatches_are_named() {
        let config = tiny();
        let (source, unet) = build(&config);
        randomise(&source);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("unet.safetensors");
        save_prefixed(&source, PREFIX, &path).unwrap();
        let file = read_tensors(&path).unwrap();
        assert!(file.contains_key("model.diffusion_model.input_blocks.2.0.op.weight"));
        assert!(file.contains_key("model.diffusion_model.output_blocks.1.2.conv.weight"));

        let (target, loaded) = build(&config);
        load_prefixed(&target, &file, PREFIX, &path).unwrap();
        let x = Tensor::randn([2, 48, 8, 8], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[10i64, 700]);
        let expected = unet.forward(&x, &t, None, None);
        assert!(expected.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        assert!(loaded.forward(&x, &t, None, None).equal(&expected));

        let check = |file: &BTreeMap<String, Tensor>, needle: &str| {
            let err =
                load_prefixed(&target, file, PREFIX, Path::new("unet.safetensors")).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        };
        let key = "model.diffusion_model.middle_block.1.transformer_blocks.0.attn1.to_k.weight";
        let mut missing: BTreeMap<String, Tensor> = file
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        missing.remove(key);
        check(&missing, &format!("missing key '{key}'"));

        let mut misshaped = missing;
        misshaped.insert(
            key.into(),
            Tensor::zeros([32, 31], (Kind::Float, Device::Cpu)),
        );
        check(
            &misshaped,
            &format!("key '{key}' has shape [32, 31], expected [32, 32]"),
        );

        let mut extra = misshaped;
        extra.insert(key.into(), file[key].shallow_clone());
        let stray = "model.diffusion_model.middle_block.3.weight";
        extra.insert(stray.into(), Tensor::zeros([1], (Kind::Float, Device::Cpu)));
        check(&extra, &format!("unexpected key '{stray}'"));
    }

    #[test]
    fn condition_is_added_after_the_input_convolution() {
        let config = tiny();
        let (vs, unet) = build(&config);
        randomise(&vs);
        let x = Tensor::randn([2, 48, 8, 8], (Kind::Float, Device::Cpu));
        let t = Tensor::from_slice(&[3i64, 300]);
        let plain = unet.forward(&x, &t, None, None);
        let zero = Tensor::zeros([2, 16, 8, 8], (Kind::Float, Device::Cpu));
        assert!(unet.forward(&x, &t, None, Some(&zero)).equal(&plain));
        let condition = Tensor::randn([2, 16, 8, 8], (Kind::Float, Device::Cpu));
        let conditioned = unet.forward(&x, &t, None, Some(&condition));
        let change = max_abs(&(&conditioned - &plain));
        assert!(
            change > 1e-3,
            "condition changed the output by only {change}"
        );
    }

    /// Weights come from the library's seeded initialisation, which does not use
    /// libtorch's global generator, so concurrent tests cannot disturb it.
    #[test]
    fn same_seed_gives_identical_weights_and_outputs() {
        let config = tiny();
        let x = Tensor::randn([2, 48, 8, 8], (Kind::Float, Device::Cpu));
        let condition = Tensor::randn([2, 16, 8, 8], (Kind::Float, Device::Cpu));
        let seeded = |seed: u64| {
            let (vs, unet) = build(&config);
            crate::model::init::reinitialise(&vs, seed, &[""]);
            let initial: BTreeMap<String, Tensor> = vs
                .variables()
                .into_iter()
                .map(|(k, t)| (k, t.copy()))
                .collect();
            let out = unet.forward(&x, &Tensor::from_slice(&[5i64, 50]), None, Some(&condition));
            (initial, out)
        };
        let (a, out_a) = seeded(7);
        let (b, out_b) = seeded(7);
        let (c, _) = seeded(8);
        assert!(a.iter().all(|(name, t)| t.equal(&b[name])));
        assert!(out_a.equal(&out_b));
        assert!(a.iter().any(|(name, t)| !t.equal(&c[name])));
    }
}
