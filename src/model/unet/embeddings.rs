//! Timestep embedding of the UNet: the sinusoidal position code of the diffusion step
//! ("Attention Is All You Need", as used by DDPM and latent diffusion) followed by a
//! two-layer MLP. Variable names follow the LDM checkpoint (`time_embed.0`,
//! `time_embed.2`; index 1 is the parameter-free SiLU).

use crate::model::layers;
use tch::{nn, Kind, Tensor};

/// Settings of the timestep embedding beyond its widths.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimestepEmbeddingConfig {
    /// Longest period of the sinusoids (LDM: 10000).
    pub max_period: f64,
}

impl Default for TimestepEmbeddingConfig {
    fn default() -> Self {
        TimestepEmbeddingConfig {
            max_period: 10_000.0,
        }
    }
}

/// Sinusoidal code of `timesteps` (shape `[N]`, any numeric kind) with `dim` columns,
/// as LDM's `timestep_embedding`: the first half holds `cos(t * f_i)`, the second half
/// `sin(t * f_i)`, with `f_i = max_period^(-i / half)`; an odd `dim` gets a zero last
/// column. The result is `[N, dim]` in single precision on the device of `timesteps`.
pub fn timestep_embedding(timesteps: &Tensor, dim: i64, max_period: f64) -> Tensor {
    let half = dim / 2;
    let device = timesteps.device();
    let exponents = Tensor::arange(half, (Kind::Float, device)) / (half.max(1) as f64);
    let frequencies = (exponents * -max_period.ln()).exp();
    let arguments = timesteps.to_kind(Kind::Float).unsqueeze(1) * frequencies.unsqueeze(0);
    let embedding = Tensor::cat(&[arguments.cos(), arguments.sin()], 1);
    if dim % 2 == 1 {
        embedding.constant_pad_nd([0, 1])
    } else {
        embedding
    }
}

/// The sinusoidal code followed by `linear -> SiLU -> linear`.
#[derive(Debug)]
pub struct TimestepEmbedding {
    linear_1: layers::Linear,
    linear_2: layers::Linear,
    channels: i64,
    config: TimestepEmbeddingConfig,
}

impl TimestepEmbedding {
    /// An embedding whose sinusoidal code has `channels` columns (SD: the UNet's
    /// model_channels) and whose output has `embed_dim` columns (SD: 4 x model_channels).
    pub fn new(
        vs: nn::Path,
        channels: i64,
        embed_dim: i64,
        config: TimestepEmbeddingConfig,
    ) -> Self {
        let linear_1 = layers::linear(&vs / 0, channels, embed_dim, Default::default());
        let linear_2 = layers::linear(&vs / 2, embed_dim, embed_dim, Default::default());
        TimestepEmbedding {
            linear_1,
            linear_2,
            channels,
            config,
        }
    }

    /// Embeds `timesteps` (`[N]`) into `[N, embed_dim]`, in the kind of the weights.
    pub fn forward(&self, timesteps: &Tensor) -> Tensor {
        let code = timestep_embedding(timesteps, self.channels, self.config.max_period);
        let code = code.to_kind(self.linear_1.weight().kind());
        code.apply(&self.linear_1).silu().apply(&self.linear_2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn sinusoid_puts_cosine_first_and_pads_odd_widths() {
        let t = Tensor::from_slice(&[0i64, 3]);
        let code = timestep_embedding(&t, 6, 10_000.0);
        assert_eq!(code.size(), [2, 6]);
        // t = 0: cos = 1 in the first half, sin = 0 in the second.
        let first: Vec<f32> = Vec::try_from(code.get(0)).unwrap();
        assert_eq!(first, [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        // t = 3, column i < half: cos(3 * 10000^(-i/3)); column half + i: the sine.
        let f1 = 10_000f64.powf(-1.0 / 3.0);
        let expect = [(3.0 * f1).cos(), (3.0 * f1).sin()];
        let got = [code.double_value(&[1, 1]), code.double_value(&[1, 4])];
        for (g, e) in got.iter().zip(expect) {
            assert!((g - e).abs() < 1e-5, "{got:?} vs {expect:?}");
        }
        let odd = timestep_embedding(&t, 5, 10_000.0);
        assert_eq!(odd.size(), [2, 5]);
        assert_eq!(odd.get(1).double_value(&[4]), 0.0);
    }

    #[test]
    fn embedding_maps_timesteps_to_the_mlp_width() {
        let vs = nn::VarStore::new(Device::Cpu);
        let embed = TimestepEmbedding::new(vs.root(), 8, 32, Default::default());
        let out = embed.forward(&Tensor::from_slice(&[1i64, 500, 999]));
        assert_eq!(out.size(), [3, 32]);
        let names = vs.variables();
        assert_eq!(names["0.weight"].size(), [32, 8]);
        assert_eq!(names["2.weight"].size(), [32, 32]);
    }
}
