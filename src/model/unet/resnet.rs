//! The UNet's residual block (LDM `ResBlock`, after "Denoising Diffusion Probabilistic
//! Models", Ho et al. 2020): GroupNorm, SiLU and a 3x3 convolution twice, with the
//! timestep embedding added in between and a skip connection around it. Variable names
//! follow the LDM checkpoint: `in_layers.{0,2}`, `emb_layers.1`, `out_layers.{0,3}`,
//! `skip_connection`.

use crate::model::layers;
use tch::{nn, Tensor};

/// Widths and normalisation of a residual block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResBlockConfig {
    /// Output channels; `None` keeps the input width.
    pub out_channels: Option<i64>,
    /// Width of the timestep embedding (SD1.5: 1280).
    pub emb_channels: i64,
    /// GroupNorm groups; must divide the input and the output width.
    pub groups: i64,
    /// GroupNorm epsilon.
    pub eps: f64,
}

impl Default for ResBlockConfig {
    fn default() -> Self {
        ResBlockConfig {
            out_channels: None,
            emb_channels: 1280,
            groups: 32,
            eps: 1e-5,
        }
    }
}

/// A residual block conditioned on the timestep embedding.
#[derive(Debug)]
pub struct ResBlock {
    in_norm: nn::GroupNorm,
    in_conv: layers::Conv2d,
    emb_linear: layers::Linear,
    out_norm: nn::GroupNorm,
    out_conv: layers::Conv2d,
    skip: Option<layers::Conv2d>,
}

impl ResBlock {
    /// A block from `in_channels` to `config.out_channels`. The last convolution starts
    /// at zero (as in SD), so a fresh block is the identity on its skip path; a 1x1
    /// `skip_connection` convolution exists only when the widths differ.
    pub fn new(vs: nn::Path, in_channels: i64, config: ResBlockConfig) -> Self {
        let out_channels = config.out_channels.unwrap_or(in_channels);
        let norm = nn::GroupNormConfig {
            eps: config.eps,
            ..Default::default()
        };
        let conv3 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let zero = nn::ConvConfig {
            ws_init: nn::Init::Const(0.0),
            bs_init: nn::Init::Const(0.0),
            ..conv3
        };
        let in_layers = &vs / "in_layers";
        let out_layers = &vs / "out_layers";
        ResBlock {
            in_norm: nn::group_norm(&in_layers / 0, config.groups, in_channels, norm),
            in_conv: layers::conv2d(&in_layers / 2, in_channels, out_channels, 3, conv3),
            emb_linear: layers::linear(
                &vs / "emb_layers" / 1,
                config.emb_channels,
                out_channels,
                Default::default(),
            ),
            out_norm: nn::group_norm(&out_layers / 0, config.groups, out_channels, norm),
            out_conv: layers::conv2d(&out_layers / 3, out_channels, out_channels, 3, zero),
            skip: (in_channels != out_channels).then(|| {
                layers::conv2d(
                    &vs / "skip_connection",
                    in_channels,
                    out_channels,
                    1,
                    Default::default(),
                )
            }),
        }
    }

    /// Applies the block to `xs` (`N x C_in x H x W`) with the timestep embedding `emb`
    /// (`N x emb_channels`); the result is `N x C_out x H x W`.
    pub fn forward(&self, xs: &Tensor, emb: &Tensor) -> Tensor {
        let h = xs.apply(&self.in_norm).silu().apply(&self.in_conv);
        let e = emb
            .silu()
            .apply(&self.emb_linear)
            .unsqueeze(-1)
            .unsqueeze(-1);
        let h = (h + e).apply(&self.out_norm).silu().apply(&self.out_conv);
        match &self.skip {
            Some(skip) => xs.apply(skip) + h,
            None => xs + h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn block(in_channels: i64, out_channels: i64) -> (nn::VarStore, ResBlock) {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ResBlockConfig {
            out_channels: Some(out_channels),
            emb_channels: 16,
            groups: 4,
            eps: 1e-5,
        };
        let block = ResBlock::new(vs.root(), in_channels, config);
        (vs, block)
    }

    #[test]
    fn fresh_block_passes_its_input_through_the_skip_path() {
        let (vs, same) = block(8, 8);
        let xs = Tensor::randn([2, 8, 4, 4], (Kind::Float, Device::Cpu));
        let emb = Tensor::randn([2, 16], (Kind::Float, Device::Cpu));
        assert!(same.forward(&xs, &emb).allclose(&xs, 0.0, 0.0, false));
        assert!(!vs.variables().contains_key("skip_connection.weight"));

        let (vs, wider) = block(8, 12);
        assert_eq!(wider.forward(&xs, &emb).size(), [2, 12, 4, 4]);
        let names = vs.variables();
        assert_eq!(names["skip_connection.weight"].size(), [12, 8, 1, 1]);
        assert_eq!(names["in_layers.2.weight"].size(), [12, 8, 3, 3]);
        assert_eq!(names["emb_layers.1.weight"].size(), [12, 16]);
        assert_eq!(names["out_layers.0.weight"].size(), [12]);
        assert_eq!(
            names["out_layers.3.weight"]
                .abs()
                .sum(Kind::Float)
                .double_value(&[]),
            0.0
        );
    }
}
