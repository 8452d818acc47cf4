//! The Anomaly-Masked Network (AMN): the condition branch of the denoiser. A bias-free
//! convolutional stem brings the image to latent resolution; post-norm transformer
//! layers then rebuild every token from its context only: the neighbour mask forbids a
//! token to attend to its own k x k neighbourhood (itself included), so a local defect
//! cannot be copied through to the condition. The output, at the UNet's first-level
//! width, is added to the UNet's hidden state after its input convolution.

use crate::error::{Error, Result};
use crate::model::layers;
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

/// Sizes of the AMN.
#[derive(Debug, Clone, PartialEq)]
pub struct AmnConfig {
    /// Image pixels per latent pixel (a power of two); the stem halves the size this
    /// many times in log2.
    pub stride: i64,
    /// Output width (the UNet's first-level width) and transformer width.
    pub width: i64,
    /// Transformer layers.
    pub layers: usize,
    /// Attention heads.
    pub heads: i64,
    /// Feed-forward hidden width.
    pub ffn: i64,
    /// Dropout probability in the transformer layers (training only).
    pub dropout: f64,
    /// Side k of the forbidden neighbourhood.
    pub mask_size: i64,
}

impl AmnConfig {
    /// The AMN of a detector configuration for a codec of the given stride.
    pub fn from_config(config: &crate::config::Config, stride: i64) -> Result<Self> {
        if stride < 1 || stride & (stride - 1) != 0 {
            return Err(Error::invalid(format!(
                "AMN stride {stride} must be a power of two"
            )));
        }
        Ok(AmnConfig {
            stride,
            width: config.unet_channels as i64,
            layers: config.amn_layers,
            heads: config.amn_heads as i64,
            ffn: config.amn_ffn as i64,
            dropout: config.amn_dropout,
            mask_size: config.amn_mask_size as i64,
        })
    }
}

/// Stem widths before each stride-2 step: the paper's 16, 32, 96, 256, then 256.
fn stem_width(level: usize) -> i64 {
    [16, 32, 96, 256].get(level).copied().unwrap_or(256)
}

/// The convolutional stem: bias-free 3x3 convolutions with SiLU down to latent size.
#[derive(Debug)]
struct Stem {
    convs: Vec<(layers::Conv2d, bool)>,
}

impl Stem {
    fn new(vs: nn::Path, stride: i64, width: i64) -> Self {
        let levels = stride.trailing_zeros() as usize;
        let conv = |i: usize, cin: i64, cout: i64, step: i64| {
            let cfg = nn::ConvConfig {
                stride: step,
                padding: 1,
                bias: false,
                ..Default::default()
            };
            layers::conv2d(&vs / i, cin, cout, 3, cfg)
        };
        let mut plan = vec![(3, stem_width(0), 1), (stem_width(0), stem_width(0), 1)];
        for level in 0..levels {
            plan.push((stem_width(level), stem_width(level + 1), 2));
            if level + 1 < levels {
                plan.push((stem_width(level + 1), stem_width(level + 1), 1));
            }
        }
        plan.push((stem_width(levels), width, 1));
        let last = plan.len() - 1;
        let convs = plan
            .into_iter()
            .enumerate()
            .map(|(i, (cin, cout, step))| (conv(i, cin, cout, step), i < last))
            .collect();
        Stem { convs }
    }

    fn forward(&self, images: &Tensor) -> Tensor {
        self.convs
            .iter()
            .fold(images.shallow_clone(), |x, (conv, activate)| {
                let y = conv.forward(&x);
                if *activate {
                    y.silu()
                } else {
                    y
                }
            })
    }
}

/// Multi-head self-attention that takes an additive mask (0 allowed, -inf forbidden).
#[derive(Debug)]
struct MaskedSelfAttention {
    in_proj: layers::Linear,
    out_proj: layers::Linear,
    heads: i64,
}

impl MaskedSelfAttention {
    fn new(vs: nn::Path, width: i64, heads: i64) -> Self {
        MaskedSelfAttention {
            in_proj: layers::linear(&vs / "in_proj", width, 3 * width, Default::default()),
            out_proj: layers::linear(&vs / "out_proj", width, width, Default::default()),
            heads,
        }
    }

    /// Tokens N x L x C -> (output N x L x C, attention weights N x heads x L x L).
    fn forward(&self, x: &Tensor, mask: &Tensor) -> (Tensor, Tensor) {
        let (n, l, c) = x.size3().unwrap_or((0, 0, 0));
        let head_dim = c / self.heads;
        let qkv = self
            .in_proj
            .forward(x)
            .view([n, l, 3, self.heads, head_dim])
            .permute([2, 0, 3, 1, 4]);
        let (q, k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        let scores = q.matmul(&k.transpose(-2, -1)) / (head_dim as f64).sqrt() + mask;
        let weights = scores.softmax(-1, Kind::Float);
        let out = weights.matmul(&v).transpose(1, 2).reshape([n, l, c]);
        (self.out_proj.forward(&out), weights)
    }
}

/// One post-norm transformer encoder layer with ReLU feed-forward.
#[derive(Debug)]
struct EncoderLayer {
    attention: MaskedSelfAttention,
    linear1: layers::Linear,
    linear2: layers::Linear,
    norm1: nn::LayerNorm,
    norm2: nn::LayerNorm,
    dropout: f64,
}

impl EncoderLayer {
    fn new(vs: nn::Path, config: &AmnConfig) -> Self {
        let w = config.width;
        EncoderLayer {
            attention: MaskedSelfAttention::new(&vs / "self_attn", w, config.heads),
            linear1: layers::linear(&vs / "linear1", w, config.ffn, Default::default()),
            linear2: layers::linear(&vs / "linear2", config.ffn, w, Default::default()),
            norm1: nn::layer_norm(&vs / "norm1", vec![w], Default::default()),
            norm2: nn::layer_norm(&vs / "norm2", vec![w], Default::default()),
            dropout: config.dropout,
        }
    }

    fn forward(&self, x: &Tensor, mask: &Tensor, train: bool) -> (Tensor, Tensor) {
        let (attended, weights) = self.attention.forward(x, mask);
        let x = self
            .norm1
            .forward(&(x + attended.dropout(self.dropout, train)));
        let hidden = self.linear1.forward(&x).relu().dropout(self.dropout, train);
        let x = self
            .norm2
            .forward(&(&x + self.linear2.forward(&hidden).dropout(self.dropout, train)));
        (x, weights)
    }
}

/// The Anomaly-Masked Network.
#[derive(Debug)]
pub struct Amn {
    stem: Stem,
    layers: Vec<EncoderLayer>,
    config: AmnConfig,
}

impl Amn {
    /// Builds the AMN under `vs` (variables `stem.*`, `layers.{i}.*`).
    pub fn new(vs: nn::Path, config: &AmnConfig) -> Result<Self> {
        if config.width % config.heads != 0 || config.width % 4 != 0 {
            return Err(Error::invalid(format!(
                "AMN width {} must be divisible by 4 and by the head count {}",
                config.width, config.heads
            )));
        }
        if config.mask_size < 0 || (config.mask_size != 0 && config.mask_size % 2 == 0) {
            return Err(Error::invalid(format!(
                "AMN mask size {} must be odd, or 0 to switch the mask off",
                config.mask_size
            )));
        }
        Ok(Amn {
            stem: Stem::new(&vs / "stem", config.stride, config.width),
            layers: (0..config.layers)
                .map(|i| EncoderLayer::new(&vs / "layers" / i, config))
                .collect(),
            config: config.clone(),
        })
    }

    /// The stem's features of an image batch (N x width x h x w): the AMN's target on
    /// clean images.
    pub fn stem_features(&self, images: &Tensor) -> Tensor {
        self.stem.forward(images)
    }

    /// The condition for an image batch (N x 3 x H x W, ImageNet-normalised): N x width
    /// x H/stride x W/stride.
    pub fn forward(&self, images: &Tensor, train: bool) -> Tensor {
        self.forward_with_attention(images, train).0
    }

    /// The condition and every layer's attention weights (N x heads x L x L each).
    pub fn forward_with_attention(&self, images: &Tensor, train: bool) -> (Tensor, Vec<Tensor>) {
        let features = self.stem.forward(images);
        let (n, c, h, w) = features.size4().unwrap_or((0, 0, 0, 0));
        let mut tokens =
            features.flatten(2, 3).transpose(1, 2) + sine_positions(h, w, c, images.device());
        let mask = neighbour_mask(h, w, self.config.mask_size, images.device());
        let mut all_weights = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let (next, weights) = layer.forward(&tokens, &mask, train);
            tokens = next;
            all_weights.push(weights);
        }
        (tokens.transpose(1, 2).reshape([n, c, h, w]), all_weights)
    }
}

/// Additive attention mask over h x w tokens: -inf where a token would attend to its
/// own k x k neighbourhood (itself included), 0 elsewhere; all zeros for k = 0.
pub fn neighbour_mask(h: i64, w: i64, k: i64, device: Device) -> Tensor {
    if k == 0 {
        return Tensor::zeros([h * w, h * w], (Kind::Float, device));
    }
    let radius = k / 2;
    let rows = Tensor::arange(h * w, (Kind::Int64, device));
    let (y, x) = (rows.divide_scalar_mode(w, "floor"), rows.remainder(w));
    let dy = (y.unsqueeze(1) - y.unsqueeze(0)).abs();
    let dx = (x.unsqueeze(1) - x.unsqueeze(0)).abs();
    let forbidden = dy.le(radius).logical_and(&dx.le(radius));
    Tensor::zeros([h * w, h * w], (Kind::Float, device)).masked_fill(&forbidden, f64::NEG_INFINITY)
}

/// The 2-D sine positional embedding (L x C): half the channels encode the row, half
/// the column, each as sines and cosines of geometric frequencies.
pub fn sine_positions(h: i64, w: i64, channels: i64, device: Device) -> Tensor {
    let quarter = channels / 4;
    let frequencies = (Tensor::arange(quarter, (Kind::Float, device))
        * (-(10_000f64.ln()) / quarter as f64))
        .exp();
    let encode = |positions: Tensor| {
        let angles = positions.to_kind(Kind::Float).unsqueeze(1) * frequencies.unsqueeze(0);
        Tensor::cat(&[angles.sin(), angles.cos()], 1)
    };
    let rows = Tensor::arange(h * w, (Kind::Int64, device));
    let (y, x) = (rows.divide_scalar_mode(w, "floor"), rows.remainder(w));
    let embedding = Tensor::cat(&[encode(y), encode(x)], 1);
    let missing = channels - 4 * quarter;
    if missing > 0 {
        Tensor::cat(
            &[
                embedding,
                Tensor::zeros([h * w, missing], (Kind::Float, device)),
            ],
            1,
        )
    } else {
        embedding
    }
}

/// The AMN loss: mean squared distance between the condition of the (perturbed) input
/// and the stem features of the clean image. The target is detached and normalised per
/// token (zero mean, unit variance over channels), so the stem cannot shrink its output
/// to make the loss vanish while the condition carries nothing.
pub fn amn_loss(condition: &Tensor, clean_stem: &Tensor) -> Tensor {
    let c = clean_stem.size()[1];
    let target = clean_stem.detach().transpose(1, 3).layer_norm(
        [c],
        None::<Tensor>,
        None::<Tensor>,
        1e-10,
        false,
    );
    (condition - target.transpose(1, 3))
        .square()
        .mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::VarStore;

    fn config(stride: i64, mask: i64) -> AmnConfig {
        AmnConfig {
            stride,
            width: 16,
            layers: 2,
            heads: 2,
            ffn: 32,
            dropout: 0.0,
            mask_size: mask,
        }
    }

    #[test]
    fn output_has_the_unet_width_at_latent_resolution() {
        tch::manual_seed(0);
        for (stride, side) in [(1, 8), (4, 32), (8, 64)] {
            let vs = VarStore::new(Device::Cpu);
            let amn = Amn::new(vs.root(), &config(stride, 3)).unwrap();
            let out = amn.forward(
                &Tensor::randn([2, 3, side, side], (Kind::Float, Device::Cpu)),
                false,
            );
            assert_eq!(
                out.size(),
                [2, 16, side / stride, side / stride],
                "stride {stride}"
            );
        }
    }

    #[test]
    fn every_preset_gets_a_condition_of_the_unet_width_at_latent_size() {
        tch::manual_seed(5);
        for (preset, stride) in [
            (crate::config::Preset::Tiny, 4),
            (crate::config::Preset::Compact, 8),
            (crate::config::Preset::Paper, 8),
        ] {
            let config = preset.config();
            let vs = VarStore::new(Device::Cpu);
            let amn =
                Amn::new(vs.root(), &AmnConfig::from_config(&config, stride).unwrap()).unwrap();
            let side = config.image_size as i64;
            let out = tch::no_grad(|| {
                amn.forward(
                    &Tensor::randn([1, 3, side, side], (Kind::Float, Device::Cpu)),
                    false,
                )
            });
            assert_eq!(
                out.size(),
                [1, config.unet_channels as i64, side / stride, side / stride],
                "{preset:?}"
            );
        }
    }

    #[test]
    fn the_papers_stem_widths_for_stride_eight() {
        let vs = VarStore::new(Device::Cpu);
        let cfg = AmnConfig {
            width: 320,
            heads: 8,
            ..config(8, 7)
        };
        let _amn = Amn::new(vs.root(), &cfg).unwrap();
        let vars = vs.variables();
        let widths: Vec<(i64, i64, i64)> = (0..8)
            .map(|i| {
                let w = &vars[&format!("stem.{i}.weight")];
                (w.size()[1], w.size()[0], w.size()[2])
            })
            .collect();
        assert_eq!(
            widths,
            [
                (3, 16, 3),
                (16, 16, 3),
                (16, 32, 3),
                (32, 32, 3),
                (32, 96, 3),
                (96, 96, 3),
                (96, 256, 3),
                (256, 320, 3)
            ]
        );
        assert!(
            !vars
                .keys()
                .any(|k| k.starts_with("stem.") && k.ends_with("bias")),
            "stem must be bias-free"
        );
    }

    #[test]
    fn mask_size_zero_switches_the_mask_off_and_even_sizes_are_refused() {
        let vs = VarStore::new(Device::Cpu);
        let amn = Amn::new(vs.root(), &config(1, 0)).unwrap();
        let (_, weights) = amn.forward_with_attention(
            &Tensor::randn([1, 3, 4, 4], (Kind::Float, Device::Cpu)),
            false,
        );
        // Without the mask every token gives itself a positive attention weight.
        let own = weights[0].get(0).get(0).diagonal(0, 0, 1);
        assert!(own.min().double_value(&[]) > 0.0);
        let err = Amn::new(vs.root() / "even", &config(1, 2)).err().unwrap();
        assert!(err.to_string().contains("must be odd, or 0"), "{err}");
    }

    #[test]
    fn the_mask_forbids_exactly_the_neighbourhood() {
        let mask = neighbour_mask(5, 6, 3, Device::Cpu);
        let forbidden = |a: i64, b: i64| mask.double_value(&[a, b]).is_infinite();
        // Token (2, 3) is index 15; its 3x3 neighbourhood is rows 1..=3, columns 2..=4.
        for y in 0..5 {
            for x in 0..6 {
                let inside = (y as i64 - 2).abs() <= 1 && (x as i64 - 3).abs() <= 1;
                assert_eq!(forbidden(15, y * 6 + x), inside, "({y}, {x})");
            }
        }
    }

    #[test]
    fn attention_ignores_the_own_neighbourhood_and_sees_the_rest() {
        tch::manual_seed(2);
        let vs = VarStore::new(Device::Cpu);
        let cfg = AmnConfig {
            layers: 1,
            ..config(1, 3)
        };
        let amn = Amn::new(vs.root(), &cfg).unwrap();
        let image = Tensor::randn([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let (_, weights) = amn.forward_with_attention(&image, false);
        let mask = neighbour_mask(8, 8, 3, Device::Cpu).isinf();
        let leaked = weights[0]
            .get(0)
            .masked_select(&mask.unsqueeze(0).expand([2, 64, 64], false));
        assert_eq!(
            leaked.abs().max().double_value(&[]),
            0.0,
            "attention weight inside the neighbourhood"
        );
        // The attention output of a token does not depend on the tokens of its own
        // neighbourhood (other than through its own query): change the neighbours' features
        // and the centre's attention output stays the same; change a distant token and it moves.
        let features = Tensor::randn([1, 64, 16], (Kind::Float, Device::Cpu));
        let attention = &amn.layers[0].attention;
        let centre = 4 * 8 + 4;
        let neighbours: Vec<i64> = [3, 4, 5]
            .iter()
            .flat_map(|y| [3, 4, 5].map(|x| y * 8 + x))
            .filter(|&i| i != centre)
            .collect();
        let changed = features.copy();
        for &i in &neighbours {
            let _ = changed.get(0).get(i).fill_(7.0);
        }
        let mask = neighbour_mask(8, 8, 3, Device::Cpu);
        let (original, _) = attention.forward(&features, &mask);
        let (with_neighbours_changed, _) = attention.forward(&changed, &mask);
        let own = (original.get(0).get(centre) - with_neighbours_changed.get(0).get(centre))
            .abs()
            .max()
            .double_value(&[]);
        assert!(own < 1e-5, "neighbours leaked into the centre token: {own}");
        let distant = features.copy();
        let _ = distant.get(0).get(0).fill_(7.0);
        let (with_distant_changed, _) = attention.forward(&distant, &mask);
        let far = (original.get(0).get(centre) - with_distant_changed.get(0).get(centre))
            .abs()
            .max()
            .double_value(&[]);
        assert!(
            far > 1e-4,
            "a distant token should reach the centre through attention: {far}"
        );
    }

    #[test]
    fn the_amn_loss_target_is_detached_and_scale_free() {
        tch::manual_seed(3);
        let stem = Tensor::randn([2, 8, 4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let condition =
            Tensor::zeros([2, 8, 4, 4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let loss = amn_loss(&condition, &stem);
        loss.backward();
        assert!(
            !stem.grad().defined() || stem.grad().abs().sum(Kind::Float).double_value(&[]) == 0.0
        );
        // Shrinking the stem output does not shrink the loss: the target is normalised.
        let small = amn_loss(&condition, &(&stem * 1e-3));
        assert!((small.double_value(&[]) - loss.double_value(&[])).abs() < 1e-2);
        assert!(
            (loss.double_value(&[]) - 1.0).abs() < 0.05,
            "unit-variance target: {}",
            loss.double_value(&[])
        );
    }
}
