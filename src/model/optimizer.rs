//! AdamW written out step by step (rather than libtorch's), so that every parameter's
//! gradient and final update are visible and can be filtered: gradient projection for
//! continual learning filters the gradient (so clipping and the moments describe only
//! the directions a step may take) and the final update (which keeps its guarantee for
//! any optimiser). Also global-norm gradient clipping and a guard that refuses a step
//! whose gradients are not finite.

use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// Learning rate.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator guard.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl AdamWConfig {
    /// PyTorch's defaults with the given learning rate and weight decay.
    pub fn new(learning_rate: f64, weight_decay: f64) -> Self {
        AdamWConfig {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }
}

struct Slot {
    name: String,
    parameter: Tensor,
    first_moment: Tensor,
    second_moment: Tensor,
}

/// AdamW over a named set of parameters (the ones that train in this phase).
pub struct AdamW {
    config: AdamWConfig,
    slots: Vec<Slot>,
    steps: i32,
}

impl AdamW {
    /// An optimiser with fresh moments for `parameters` (name, tensor).
    pub fn new(parameters: Vec<(String, Tensor)>, config: AdamWConfig) -> Self {
        let slots = parameters
            .into_iter()
            .map(|(name, parameter)| Slot {
                first_moment: parameter.zeros_like(),
                second_moment: parameter.zeros_like(),
                name,
                parameter,
            })
            .collect();
        AdamW {
            config,
            slots,
            steps: 0,
        }
    }

    /// Names of the parameters this optimiser updates.
    pub fn parameter_names(&self) -> impl Iterator<Item = &str> {
        self.slots.iter().map(|s| s.name.as_str())
    }

    /// Clears the gradients of the optimised parameters.
    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            slot.parameter.zero_grad();
        }
    }

    /// Replaces every gradient by `filter(name, gradient)`; call it before clipping so
    /// that the norm and the moments see only what the filter lets through.
    pub fn filter_gradients(&mut self, filter: &mut impl FnMut(&str, Tensor) -> Tensor) {
        tch::no_grad(|| {
            for slot in &self.slots {
                let mut grad = slot.parameter.grad();
                if grad.defined() {
                    let filtered = filter(&slot.name, grad.shallow_clone());
                    let _ = grad.copy_(&filtered);
                }
            }
        });
    }

    /// Global L2 norm of the gradients; an error when it is not finite.
    pub fn gradient_norm(&self) -> Result<f64> {
        let squares: f64 = self
            .slots
            .iter()
            .map(|s| s.parameter.grad())
            .filter(|g| g.defined())
            .map(|g| {
                g.to_kind(Kind::Double)
                    .square()
                    .sum(Kind::Double)
                    .double_value(&[])
            })
            .sum();
        let norm = squares.sqrt();
        if norm.is_finite() {
            Ok(norm)
        } else {
            Err(Error::Numerical(format!(
                "gradient norm is {norm}; the step was skipped"
            )))
        }
    }

    /// Scales the gradients so their global norm is at most `max_norm` (0 = no limit)
    /// and returns the norm before scaling. Non-finite gradients are an error and leave
    /// everything untouched.
    pub fn clip_gradients(&mut self, max_norm: f64) -> Result<f64> {
        let norm = self.gradient_norm()?;
        if max_norm > 0.0 && norm > max_norm {
            let scale = max_norm / (norm + 1e-12);
            tch::no_grad(|| {
                for slot in &self.slots {
                    let mut grad = slot.parameter.grad();
                    if grad.defined() {
                        let _ = grad.f_mul_(&Tensor::from(scale));
                    }
                }
            });
        }
        Ok(norm)
    }

    /// Applies one AdamW step. `filter(name, update)` receives each parameter's full
    /// update (Adam direction plus weight decay, times the learning rate) and returns
    /// the update to subtract; pass `|_, u| u` for plain AdamW.
    pub fn step(&mut self, mut filter: impl FnMut(&str, Tensor) -> Tensor) {
        self.steps += 1;
        let c = self.config;
        let correction1 = 1.0 - c.beta1.powi(self.steps);
        let correction2 = 1.0 - c.beta2.powi(self.steps);
        tch::no_grad(|| {
            for slot in &mut self.slots {
                let grad = slot.parameter.grad();
                if !grad.defined() {
                    continue;
                }
                slot.first_moment
                    .copy_(&(&slot.first_moment * c.beta1 + &grad * (1.0 - c.beta1)));
                slot.second_moment
                    .copy_(&(&slot.second_moment * c.beta2 + grad.square() * (1.0 - c.beta2)));
                let denominator = (&slot.second_moment / correction2).sqrt() + c.eps;
                let direction = &slot.first_moment / correction1 / denominator;
                let update = (direction + &slot.parameter * c.weight_decay) * c.learning_rate;
                let update = filter(&slot.name, update);
                let _ = slot.parameter.f_sub_(&update);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn quadratic(parameter: &Tensor) -> Tensor {
        (parameter - 3.0).square().sum(Kind::Float)
    }

    #[test]
    fn adamw_minimises_a_quadratic_and_matches_the_first_step_by_hand() {
        let parameter = Tensor::zeros([4], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut optimiser = AdamW::new(
            vec![("p".into(), parameter.shallow_clone())],
            AdamWConfig::new(0.1, 0.0),
        );
        optimiser.zero_grad();
        quadratic(&parameter).backward();
        optimiser.step(|_, u| u);
        // First Adam step moves each coordinate by exactly lr in the descent direction.
        assert!((parameter.double_value(&[0]) - 0.1).abs() < 1e-6);
        for _ in 0..300 {
            optimiser.zero_grad();
            quadratic(&parameter).backward();
            optimiser.step(|_, u| u);
        }
        assert!(
            (parameter.double_value(&[2]) - 3.0).abs() < 0.05,
            "{}",
            parameter.double_value(&[2])
        );
    }

    #[test]
    fn weight_decay_shrinks_and_the_filter_sees_the_full_update() {
        let parameter = Tensor::ones([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut optimiser = AdamW::new(
            vec![("w".into(), parameter.shallow_clone())],
            AdamWConfig::new(0.1, 0.5),
        );
        optimiser.zero_grad();
        (&parameter * 0.0).sum(Kind::Float).backward();
        let mut seen = Vec::new();
        optimiser.step(|name, update| {
            seen.push((name.to_string(), update.double_value(&[0])));
            update
        });
        // Zero gradient: the update is lr * wd * p = 0.05.
        assert_eq!(seen.len(), 1);
        assert!((seen[0].1 - 0.05).abs() < 1e-6);
        assert!((parameter.double_value(&[0]) - 0.95).abs() < 1e-6);
        // A filter that removes the update freezes the parameter.
        optimiser.zero_grad();
        quadratic(&parameter).backward();
        optimiser.step(|_, update| update.zeros_like());
        assert!((parameter.double_value(&[0]) - 0.95).abs() < 1e-6);
    }

    /// Removes the component along (1, 1) / sqrt(2) from a 1 x 2 tensor.
    fn remove_diagonal(_: &str, t: Tensor) -> Tensor {
        let along = t.sum(Kind::Float) / 2.0;
        t - along
    }

    #[test]
    fn filtered_gradients_give_adam_steps_of_full_size_in_the_free_direction() {
        let first_update = |filter_gradients: bool| {
            let parameter =
                Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
            let mut optimiser = AdamW::new(
                vec![("w".into(), parameter.shallow_clone())],
                AdamWConfig::new(0.1, 0.0),
            );
            optimiser.zero_grad();
            (&parameter * Tensor::from_slice(&[10f32, 0.0]))
                .sum(Kind::Float)
                .backward();
            if filter_gradients {
                optimiser.filter_gradients(&mut remove_diagonal);
            }
            optimiser.step(remove_diagonal);
            Vec::<f32>::try_from(parameter.detach().view([-1])).unwrap()
        };
        // The gradient (10, 0) filtered is (5, -5); Adam's first step is lr per
        // coordinate, already free of the (1, 1) direction.
        let filtered = first_update(true);
        assert!(
            (filtered[0] + 0.1).abs() < 1e-6 && (filtered[1] - 0.1).abs() < 1e-6,
            "{filtered:?}"
        );
        // Unfiltered, Adam moves only the first coordinate, and filtering that update
        // halves it: the same constraint, a step half as long.
        let update_only = first_update(false);
        assert!(
            (update_only[0] + 0.05).abs() < 1e-6 && (update_only[1] - 0.05).abs() < 1e-6,
            "{update_only:?}"
        );
    }

    #[test]
    fn clipping_bounds_the_norm_and_non_finite_gradients_are_refused() {
        let parameter = Tensor::zeros([3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut optimiser = AdamW::new(
            vec![("p".into(), parameter.shallow_clone())],
            AdamWConfig::new(0.1, 0.0),
        );
        optimiser.zero_grad();
        (&parameter * 100.0).sum(Kind::Float).backward();
        let before = optimiser.clip_gradients(1.0).unwrap();
        assert!((before - 100.0 * 3f64.sqrt()).abs() < 1e-3);
        assert!((optimiser.gradient_norm().unwrap() - 1.0).abs() < 1e-4);
        optimiser.zero_grad();
        (&parameter * f64::NAN).sum(Kind::Float).backward();
        let err = optimiser.clip_gradients(1.0).unwrap_err();
        assert!(matches!(err, Error::Numerical(_)), "{err}");
    }
}
