//! The DDIM sampler (eta = 0, deterministic): from a latent noised to level t_s, S steps
//! on a uniform grid down to a clean-latent estimate.

use super::schedule::{split_prediction, Schedule};
use crate::config::Prediction;
use tch::Tensor;

/// The S timesteps of a uniform grid starting exactly at `start` (t_s) and ending above
/// 0, in descending order; e.g. start 999, 10 steps: 999, 899, ..., 99.
pub fn ddim_timesteps(start: usize, steps: usize) -> Vec<usize> {
    let steps = steps.clamp(1, start + 1);
    (0..steps)
        .map(|k| start - (k * (start + 1)) / steps)
        .collect()
}

/// Runs DDIM from `z_start` (noised to `timesteps[0]`). `denoise(z_t, t)` returns the
/// model output for the configured prediction target; the returned latent is the
/// clean-latent estimate after the last step.
pub fn ddim_sample(
    schedule: &Schedule,
    prediction: Prediction,
    z_start: &Tensor,
    timesteps: &[usize],
    mut denoise: impl FnMut(&Tensor, usize) -> Tensor,
) -> Tensor {
    let mut z = z_start.shallow_clone();
    for (k, &t) in timesteps.iter().enumerate() {
        let alpha_bar = Tensor::from(schedule.alpha_bar(Some(t)) as f32).to_device(z.device());
        let output = denoise(&z, t);
        let (x0, eps) = split_prediction(prediction, &output, &z, &alpha_bar);
        let previous = schedule.alpha_bar(timesteps.get(k + 1).copied());
        z = if k + 1 == timesteps.len() {
            x0
        } else {
            x0 * previous.sqrt() + eps * (1.0 - previous).sqrt()
        };
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schedule::{add_noise, target};
    use tch::{Device, Kind};

    #[test]
    fn the_grid_starts_at_t_s_and_is_uniform() {
        assert_eq!(
            ddim_timesteps(999, 10),
            [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
        );
        assert_eq!(ddim_timesteps(9, 20), (0..=9).rev().collect::<Vec<_>>());
        assert_eq!(ddim_timesteps(500, 1), [500]);
    }

    #[test]
    fn an_oracle_denoiser_recovers_the_clean_latent_for_every_target() {
        tch::manual_seed(4);
        let schedule = Schedule::scaled_linear(1000);
        let x0 = Tensor::randn([2, 4, 3, 3], (Kind::Double, Device::Cpu));
        let noise = Tensor::randn([2, 4, 3, 3], (Kind::Double, Device::Cpu));
        for prediction in [Prediction::Eps, Prediction::X0, Prediction::V] {
            let timesteps = ddim_timesteps(999, 10);
            let ab = Tensor::from(schedule.alpha_bar(Some(999))).to_kind(Kind::Double);
            let start = add_noise(&x0, &noise, &ab);
            // The oracle knows x0, so it can give the exact target at every step.
            let result = ddim_sample(&schedule, prediction, &start, &timesteps, |z, t| {
                let ab = Tensor::from(schedule.alpha_bar(Some(t))).to_kind(Kind::Double);
                let eps = (z - &x0 * ab.sqrt()) / (ab.neg() + 1.0).sqrt();
                target(prediction, &x0, &eps, &ab)
            });
            let error = (result - &x0).abs().max().double_value(&[]);
            assert!(error < 1e-6, "{prediction:?}: {error}");
        }
    }
}
