//! The UNet's attention block: LDM's `SpatialTransformer` ("High-Resolution Image
//! Synthesis with Latent Diffusion Models", Rombach et al. 2022). The feature map is
//! normalised, projected by a 1x1 convolution, read as `H * W` tokens and passed through
//! one transformer block (self-attention, cross-attention to a context, GEGLU
//! feed-forward, each pre-normalised and residual), then projected back and added to the
//! input. Variable names follow the LDM checkpoint: `norm`, `proj_in`,
//! `transformer_blocks.0.{attn1,attn2,ff,norm1,norm2,norm3}`, `proj_out`.

use crate::model::layers;
use tch::{nn, Tensor};

/// Heads, widths and normalisation of a spatial transformer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpatialTransformerConfig {
    /// Attention heads.
    pub heads: i64,
    /// Width of one head; the tokens are `heads * head_dim` wide.
    pub head_dim: i64,
    /// Width of the cross-attention context. `None` builds a block without
    /// cross-attention: no `attn2` and no `norm2`, only self-attention and feed-forward.
    pub context_dim: Option<i64>,
    /// Groups of the input GroupNorm; must divide the input width.
    pub groups: i64,
}

impl Default for SpatialTransformerConfig {
    fn default() -> Self {
        SpatialTransformerConfig {
            heads: 8,
            head_dim: 40,
            context_dim: Some(768),
            groups: 32,
        }
    }
}

/// Multi-head attention of LDM (`CrossAttention`): bias-free `to_q`, `to_k`, `to_v`
/// and an output projection `to_out.0` with bias.
#[derive(Debug)]
struct Attention {
    to_q: layers::Linear,
    to_k: layers::Linear,
    to_v: layers::Linear,
    to_out: layers::Linear,
    heads: i64,
}

impl Attention {
    fn new(vs: nn::Path, query_dim: i64, context_dim: i64, heads: i64, head_dim: i64) -> Self {
        let inner = heads * head_dim;
        let no_bias = nn::LinearConfig {
            bias: false,
            ..Default::default()
        };
        Attention {
            to_q: layers::linear(&vs / "to_q", query_dim, inner, no_bias),
            to_k: layers::linear(&vs / "to_k", context_dim, inner, no_bias),
            to_v: layers::linear(&vs / "to_v", context_dim, inner, no_bias),
            to_out: layers::linear(&vs / "to_out" / 0, inner, query_dim, Default::default()),
            heads,
        }
    }

    /// Tokens `xs` (`N x L x query_dim`) attend to `context` (`N x M x context_dim`).
    fn forward(&self, xs: &Tensor, context: &Tensor) -> Tensor {
        let split = |t: Tensor| t.unflatten(-1, [self.heads, -1]).transpose(1, 2);
        let q = split(xs.apply(&self.to_q));
        let k = split(context.apply(&self.to_k));
        let v = split(context.apply(&self.to_v));
        let attended = Tensor::scaled_dot_product_attention(
            &q,
            &k,
            &v,
            None::<Tensor>,
            0.0,
            false,
            None,
            false,
        );
        attended.transpose(1, 2).flatten(2, -1).apply(&self.to_out)
    }
}

/// LDM's `FeedForward` with a GEGLU input layer: `ff.net.0.proj` maps to twice the
/// inner width (4 x dim), one half gates the other through GELU, `ff.net.2` maps back.
#[derive(Debug)]
struct FeedForward {
    proj: layers::Linear,
    out: layers::Linear,
}

impl FeedForward {
    fn new(vs: nn::Path, dim: i64) -> Self {
        let inner = 4 * dim;
        let net = &vs / "net";
        FeedForward {
            proj: layers::linear(&net / 0 / "proj", dim, 2 * inner, Default::default()),
            out: layers::linear(&net / 2, inner, dim, Default::default()),
        }
    }

    fn forward(&self, xs: &Tensor) -> Tensor {
        let halves = xs.apply(&self.proj).chunk(2, -1);
        (&halves[0] * halves[1].gelu("none")).apply(&self.out)
    }
}

/// The optional cross-attention sub-layer (`norm2`, `attn2`).
#[derive(Debug)]
struct CrossAttention {
    norm: nn::LayerNorm,
    attention: Attention,
}

/// LDM's `BasicTransformerBlock`, pre-norm and residual around each sub-layer.
#[derive(Debug)]
struct TransformerBlock {
    norm1: nn::LayerNorm,
    attn1: Attention,
    cross: Option<CrossAttention>,
    norm3: nn::LayerNorm,
    ff: FeedForward,
}

impl TransformerBlock {
    fn new(vs: nn::Path, dim: i64, config: &SpatialTransformerConfig) -> Self {
        let layer_norm = |name: &str| nn::layer_norm(&vs / name, vec![dim], Default::default());
        TransformerBlock {
            norm1: layer_norm("norm1"),
            attn1: Attention::new(&vs / "attn1", dim, dim, config.heads, config.head_dim),
            cross: config.context_dim.map(|context_dim| CrossAttention {
                norm: layer_norm("norm2"),
                attention: Attention::new(
                    &vs / "attn2",
                    dim,
                    context_dim,
                    config.heads,
                    config.head_dim,
                ),
            }),
            norm3: layer_norm("norm3"),
            ff: FeedForward::new(&vs / "ff", dim),
        }
    }

    fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let normed = xs.apply(&self.norm1);
        let xs = self.attn1.forward(&normed, &normed) + xs;
        let xs = match (&self.cross, context) {
            (Some(cross), Some(context)) => {
                cross.attention.forward(&xs.apply(&cross.norm), context) + xs
            }
            _ => xs,
        };
        self.ff.forward(&xs.apply(&self.norm3)) + xs
    }
}

/// A spatial transformer: attention over the positions of a feature map.
#[derive(Debug)]
pub struct SpatialTransformer {
    norm: nn::GroupNorm,
    proj_in: layers::Conv2d,
    block: TransformerBlock,
    proj_out: layers::Conv2d,
}

impl SpatialTransformer {
    /// A transformer over `in_channels`-wide feature maps. `proj_out` starts at zero (as
    /// in SD), so a fresh block is the identity.
    pub fn new(vs: nn::Path, in_channels: i64, config: SpatialTransformerConfig) -> Self {
        let inner = config.heads * config.head_dim;
        let norm = nn::GroupNormConfig {
            eps: 1e-6,
            ..Default::default()
        };
        let zero = nn::ConvConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        SpatialTransformer {
            norm: nn::group_norm(&vs / "norm", config.groups, in_channels, norm),
            proj_in: layers::conv2d(&vs / "proj_in", in_channels, inner, 1, Default::default()),
            block: TransformerBlock::new(&vs / "transformer_blocks" / 0, inner, &config),
            proj_out: layers::conv2d(&vs / "proj_out", inner, in_channels, 1, zero),
        }
    }

    /// Applies the block to `xs` (`N x C x H x W`). `context` (`N x M x context_dim`)
    /// feeds the cross-attention; when it is `None`, or the block has no
    /// cross-attention, that sub-layer is skipped (LDM would fall back to
    /// self-attention, which only type-checks when the context is as wide as the tokens).
    pub fn forward(&self, xs: &Tensor, context: Option<&Tensor>) -> Tensor {
        let projected = xs.apply(&self.norm).apply(&self.proj_in);
        let tokens = projected.flatten(2, -1).transpose(1, 2);
        let tokens = self.block.forward(&tokens, context);
        tokens
            .transpose(1, 2)
            .reshape_as(&projected)
            .apply(&self.proj_out)
            + xs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn config(context_dim: Option<i64>) -> SpatialTransformerConfig {
        SpatialTransformerConfig {
            heads: 2,
            head_dim: 4,
            context_dim,
            groups: 4,
        }
    }

    #[test]
    fn attention_matches_the_textbook_formula() {
        let vs = nn::VarStore::new(Device::Cpu);
        let attention = Attention::new(vs.root(), 6, 5, 2, 3);
        let xs = Tensor::randn([2, 7, 6], (Kind::Float, Device::Cpu));
        let context = Tensor::randn([2, 4, 5], (Kind::Float, Device::Cpu));
        let got = attention.forward(&xs, &context);
        let mut heads = Vec::new();
        for h in 0..2 {
            let pick = |w: &Tensor| w.narrow(0, 3 * h, 3);
            let q = xs.matmul(&pick(attention.to_q.weight()).tr());
            let k = context.matmul(&pick(attention.to_k.weight()).tr());
            let v = context.matmul(&pick(attention.to_v.weight()).tr());
            let weights = (q.matmul(&k.transpose(1, 2)) / 3f64.sqrt()).softmax(-1, Kind::Float);
            heads.push(weights.matmul(&v));
        }
        let expected = Tensor::cat(&heads, -1).apply(&attention.to_out);
        assert_eq!(got.size(), [2, 7, 6]);
        assert!(got.allclose(&expected, 1e-5, 1e-5, false));
    }

    #[test]
    fn transformer_names_its_variables_like_ldm_and_starts_as_identity() {
        let vs = nn::VarStore::new(Device::Cpu);
        let block = SpatialTransformer::new(vs.root(), 8, config(Some(12)));
        let names = vs.variables();
        let prefix = "transformer_blocks.0.";
        for (name, size) in [
            ("proj_in.weight", vec![8, 8, 1, 1]),
            ("attn1.to_q.weight", vec![8, 8]),
            ("attn2.to_k.weight", vec![8, 12]),
            ("attn2.to_out.0.bias", vec![8]),
            ("ff.net.0.proj.weight", vec![64, 8]),
            ("ff.net.2.weight", vec![8, 32]),
            ("norm2.weight", vec![8]),
        ] {
            let key = if name.starts_with("proj") {
                name.to_string()
            } else {
                format!("{prefix}{name}")
            };
            assert_eq!(names.get(&key).map(Tensor::size), Some(size), "{key}");
        }
        assert!(!names.contains_key("transformer_blocks.0.attn1.to_q.bias"));
        let xs = Tensor::randn([2, 8, 3, 5], (Kind::Float, Device::Cpu));
        let context = Tensor::randn([2, 4, 12], (Kind::Float, Device::Cpu));
        assert!(block.forward(&xs, Some(&context)).equal(&xs));
    }

    #[test]
    fn without_context_width_there_is_no_cross_attention() {
        let vs = nn::VarStore::new(Device::Cpu);
        let block = SpatialTransformer::new(vs.root(), 8, config(None));
        let names = vs.variables();
        assert!(
            names
                .keys()
                .all(|k| !k.contains("attn2") && !k.contains("norm2")),
            "{:?}",
            names.keys()
        );
        assert!(names.contains_key("transformer_blocks.0.attn1.to_v.weight"));
        let xs = Tensor::randn([1, 8, 4, 4], (Kind::Float, Device::Cpu));
        assert_eq!(block.forward(&xs, None).size(), [1, 8, 4, 4]);
    }
}
