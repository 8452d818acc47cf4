//! The noise schedule: T = 1000 "scaled linear" betas as in Stable Diffusion,
//! beta_t = (linspace(sqrt(8.5e-4), sqrt(1.2e-2), T))^2, and alpha_bar_t = prod(1 - beta),
//! plus the conversions between the three prediction targets (eps, x0, v).

use crate::config::Prediction;
use tch::Tensor;

/// Cumulative signal levels of a scaled-linear schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    alpha_bar: Vec<f64>,
}

impl Schedule {
    /// The scaled-linear schedule with `timesteps` steps (at least 2).
    pub fn scaled_linear(timesteps: usize) -> Self {
        let timesteps = timesteps.max(2);
        let (start, end) = (8.5e-4f64.sqrt(), 1.2e-2f64.sqrt());
        let mut product = 1.0;
        let alpha_bar = (0..timesteps)
            .map(|t| {
                let beta = (start + (end - start) * t as f64 / (timesteps - 1) as f64).powi(2);
                product *= 1.0 - beta;
                product
            })
            .collect();
        Schedule { alpha_bar }
    }

    /// Number of timesteps T.
    pub fn len(&self) -> usize {
        self.alpha_bar.len()
    }

    /// Always false: a schedule has at least two steps.
    pub fn is_empty(&self) -> bool {
        self.alpha_bar.is_empty()
    }

    /// alpha_bar at timestep `t` (0-based); `None` stands for "before step 0" (= 1).
    pub fn alpha_bar(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.alpha_bar[t.min(self.alpha_bar.len() - 1)])
    }

    /// alpha_bar for a batch of timesteps, shaped N x 1 x 1 x 1 for broadcasting.
    pub fn alpha_bar_batch(&self, timesteps: &[usize], like: &Tensor) -> Tensor {
        let values: Vec<f32> = timesteps
            .iter()
            .map(|&t| self.alpha_bar(Some(t)) as f32)
            .collect();
        Tensor::from_slice(&values)
            .view([-1, 1, 1, 1])
            .to_device(like.device())
    }
}

/// Noises clean latents: sqrt(ab) x0 + sqrt(1 - ab) eps, for `alpha_bar` broadcastable.
pub fn add_noise(x0: &Tensor, noise: &Tensor, alpha_bar: &Tensor) -> Tensor {
    x0 * alpha_bar.sqrt() + noise * (alpha_bar.neg() + 1.0).sqrt()
}

/// What the denoiser is trained to output for a given clean latent and noise.
pub fn target(prediction: Prediction, x0: &Tensor, noise: &Tensor, alpha_bar: &Tensor) -> Tensor {
    match prediction {
        Prediction::Eps => noise.shallow_clone(),
        Prediction::X0 => x0.shallow_clone(),
        Prediction::V => noise * alpha_bar.sqrt() - x0 * (alpha_bar.neg() + 1.0).sqrt(),
    }
}

/// The clean latent and the noise that a model output implies for noisy `xt`.
pub fn split_prediction(
    prediction: Prediction,
    output: &Tensor,
    xt: &Tensor,
    alpha_bar: &Tensor,
) -> (Tensor, Tensor) {
    let (a, s) = (alpha_bar.sqrt(), (alpha_bar.neg() + 1.0).sqrt());
    match prediction {
        Prediction::Eps => ((xt - &s * output) / &a, output.shallow_clone()),
        Prediction::X0 => (output.shallow_clone(), (xt - &a * output) / &s),
        Prediction::V => (&a * xt - &s * output, &s * xt + &a * output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn alpha_bar_matches_stable_diffusion_figures() {
        let s = Schedule::scaled_linear(1000);
        assert_eq!(s.len(), 1000);
        assert!((s.alpha_bar(Some(0)) - 0.99915).abs() < 1e-12);
        // Stable Diffusion's alphas_cumprod[999] is 0.00466
        assert!(
            (s.alpha_bar(Some(999)) - 0.00466).abs() < 1e-5,
            "{}",
            s.alpha_bar(Some(999))
        );
        assert!(
            (s.alpha_bar(Some(499)) - 0.276).abs() < 0.01,
            "{}",
            s.alpha_bar(Some(499))
        );
        assert_eq!(s.alpha_bar(None), 1.0);
        let values: Vec<f64> = (0..1000).map(|t| s.alpha_bar(Some(t))).collect();
        assert!(
            values.windows(2).all(|w| w[1] < w[0]),
            "alpha_bar must decrease"
        );
    }

    #[test]
    fn every_prediction_target_inverts_exactly() {
        tch::manual_seed(1);
        let x0 = Tensor::randn([2, 3, 4, 4], (Kind::Double, Device::Cpu));
        let noise = Tensor::randn([2, 3, 4, 4], (Kind::Double, Device::Cpu));
        let schedule = Schedule::scaled_linear(1000);
        let ab = schedule
            .alpha_bar_batch(&[10, 900], &x0)
            .to_kind(Kind::Double);
        let xt = add_noise(&x0, &noise, &ab);
        for prediction in [Prediction::Eps, Prediction::X0, Prediction::V] {
            let output = target(prediction, &x0, &noise, &ab);
            let (x0_hat, eps_hat) = split_prediction(prediction, &output, &xt, &ab);
            assert!(
                (x0_hat - &x0).abs().max().double_value(&[]) < 1e-9,
                "{prediction:?}"
            );
            assert!(
                (eps_hat - &noise).abs().max().double_value(&[]) < 1e-9,
                "{prediction:?}"
            );
        }
    }
}
