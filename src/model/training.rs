//! One training step: build the condition inputs (each image patch-perturbed with NSA
//! with probability p, else clean), compute the losses, back-propagate, clip, guard
//! against non-finite values and apply AdamW to the parameters that train in this
//! phase. Which parameters train: everything in the first task; afterwards only the
//! convolution and linear weights of the AMN and the UNet (biases, normalisation layers
//! and the timestep-embedding MLP cannot be protected by projection, so they are
//! frozen).

use super::diffusion::{image_batch, DiffusionModel};
use super::optimizer::{AdamW, AdamWConfig};
use crate::config::Config;
use crate::data::nsa::{perturb, NsaConfig};
use crate::error::{Error, Result};
use crate::image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeSet;
use tch::nn::VarStore;
use tch::Tensor;

/// Whether a variable trains in tasks after the first.
pub fn trains_after_first_task(name: &str, tensor: &Tensor) -> bool {
    let projectable = tensor.dim() >= 2;
    projectable
        && (name.starts_with("amn.")
            || (name.starts_with("unet.") && !name.starts_with("unet.time_embed")))
}

/// The variables under `unet.` and `amn.` that train in this phase, sorted by name.
pub fn trainable_parameters(vs: &VarStore, first_task: bool) -> Vec<(String, Tensor)> {
    let mut parameters: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(name, _)| name.starts_with("unet.") || name.starts_with("amn."))
        .filter(|(name, tensor)| first_task || trains_after_first_task(name, tensor))
        .collect();
    parameters.sort_by(|a, b| a.0.cmp(&b.0));
    parameters
}

/// The names of the layers whose inputs the projection memory protects: every weight
/// matrix that trains after the first task.
pub fn projected_layers(vs: &VarStore) -> BTreeSet<String> {
    trainable_parameters(vs, false)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// One good training image and the images its NSA patches may be cut from.
pub struct TrainingSample<'a> {
    /// The image, at the model's size.
    pub image: &'a RgbImage,
    /// Other good images of its class (may be empty: patches then come from the image).
    pub sources: Vec<&'a RgbImage>,
}

/// What one step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Denoising loss.
    pub diffusion: f64,
    /// AMN loss.
    pub amn: f64,
    /// Gradient norm before clipping (after the filter with `project_gradients`).
    pub gradient_norm: f64,
}

/// Runs training steps of one task with a fresh optimiser.
pub struct Trainer {
    optimiser: AdamW,
    grad_clip: f64,
    filter_gradients: bool,
    perturb_prob: f64,
    nsa: NsaConfig,
}

impl Trainer {
    /// A trainer for the parameters `trainable_parameters(vs, first_task)`, at the
    /// learning rate of that phase.
    pub fn new(vs: &VarStore, config: &Config, first_task: bool) -> Self {
        let learning_rate = if first_task {
            config.learning_rate
        } else {
            config.learning_rate * config.later_learning_rate_scale
        };
        Trainer {
            optimiser: AdamW::new(
                trainable_parameters(vs, first_task),
                AdamWConfig::new(learning_rate, config.weight_decay),
            ),
            grad_clip: config.grad_clip,
            // Only later tasks of a projected run have anything to filter; elsewhere
            // the gradient pass would copy every gradient onto itself.
            filter_gradients: config.projection && config.project_gradients && !first_task,
            perturb_prob: config.perturb_prob,
            nsa: NsaConfig::default(),
        }
    }

    /// One step on a batch; `filter(name, tensor)` may change each parameter's final
    /// update (before it is applied) and, with `project_gradients` in a later task of a
    /// projected run, its gradient too (before clipping and the moments); identity for
    /// plain training. A non-finite loss or gradient is an error and leaves the weights
    /// unchanged.
    pub fn step(
        &mut self,
        model: &DiffusionModel,
        batch: &[TrainingSample<'_>],
        rng: &mut ChaCha8Rng,
        mut filter: impl FnMut(&str, Tensor) -> Tensor,
    ) -> Result<StepReport> {
        // Perturbed copies where drawn; the clean image itself (no copy) elsewhere.
        let mut perturbed: Vec<Option<RgbImage>> = Vec::with_capacity(batch.len());
        for sample in batch {
            perturbed.push(if rng.random_bool(self.perturb_prob) {
                Some(perturb(sample.image, &sample.sources, &self.nsa, rng)?.image)
            } else {
                None
            });
        }
        let clean: Vec<&RgbImage> = batch.iter().map(|s| s.image).collect();
        let conditions: Vec<&RgbImage> = perturbed
            .iter()
            .zip(&clean)
            .map(|(p, c)| p.as_ref().unwrap_or(c))
            .collect();
        let condition = image_batch(&conditions, model.device())?;
        let clean = image_batch(&clean, model.device())?;
        let losses = model.losses(&clean, &condition, rng);
        if !(losses.diffusion.is_finite() && losses.amn.is_finite()) {
            return Err(Error::Numerical(format!(
                "loss is not finite (denoising {}, AMN {}); the step was skipped",
                losses.diffusion, losses.amn
            )));
        }
        self.optimiser.zero_grad();
        losses.total.backward();
        if self.filter_gradients {
            self.optimiser.filter_gradients(&mut filter);
        }
        let gradient_norm = self.optimiser.clip_gradients(self.grad_clip)?;
        self.optimiser.step(filter);
        Ok(StepReport {
            diffusion: losses.diffusion,
            amn: losses.amn,
            gradient_norm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Preset;
    use crate::data::synthetic::builtin_classes;
    use crate::model::codec::PixelCodec;
    use crate::model::init::reinitialise;
    use rand::SeedableRng;
    use tch::Device;

    fn tiny_model(seed: u64) -> (VarStore, DiffusionModel, Config) {
        let config = Preset::Tiny.config();
        let vs = VarStore::new(Device::Cpu);
        let codec = Box::new(PixelCodec::new(config.pixel_factor as i64));
        let model = DiffusionModel::new(&vs.root(), &config, codec, None).unwrap();
        reinitialise(&vs, seed, &[""]);
        (vs, model, config)
    }

    fn images(class: usize, count: u64) -> Vec<RgbImage> {
        let class = &builtin_classes()[class];
        (0..count)
            .map(|i| class.good(32, &mut ChaCha8Rng::seed_from_u64(i)).0)
            .collect()
    }

    fn train(
        vs: &VarStore,
        model: &DiffusionModel,
        config: &Config,
        data: &[RgbImage],
        steps: usize,
        seed: u64,
    ) -> Vec<StepReport> {
        let mut trainer = Trainer::new(vs, config, true);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..steps)
            .map(|_| {
                let batch: Vec<TrainingSample<'_>> = data
                    .iter()
                    .map(|image| TrainingSample {
                        image,
                        sources: data.iter().filter(|o| *o != image).collect(),
                    })
                    .collect();
                trainer.step(model, &batch, &mut rng, |_, u| u).unwrap()
            })
            .collect()
    }

    #[test]
    fn later_tasks_train_only_projectable_weights() {
        let (vs, _, _) = tiny_model(0);
        let all = trainable_parameters(&vs, true);
        let later = trainable_parameters(&vs, false);
        assert!(later.len() < all.len());
        for (name, tensor) in &later {
            assert!(tensor.dim() >= 2, "{name} is not a weight matrix");
            assert!(!name.starts_with("unet.time_embed"), "{name}");
        }
        assert!(all.iter().any(|(n, _)| n.starts_with("unet.time_embed")));
        for prefix in ["unet.", "amn."] {
            assert!(
                all.iter()
                    .any(|(n, t)| n.starts_with(prefix) && t.dim() == 1),
                "the first task trains the biases and norms under {prefix}"
            );
            assert!(
                later.iter().any(|(n, _)| n.starts_with(prefix)),
                "later tasks train weights under {prefix}"
            );
        }
    }

    #[test]
    fn a_tiny_model_overfits_a_handful_of_images_and_reconstructs_them() {
        let (vs, model, config) = tiny_model(1);
        let data = images(6, 4); // gear
        let reports = train(&vs, &model, &config, &data, 200, 7);
        let early: f64 = reports[..10].iter().map(|r| r.diffusion).sum::<f64>() / 10.0;
        let late: f64 = reports[190..].iter().map(|r| r.diffusion).sum::<f64>() / 10.0;
        assert!(
            late < early / 4.0,
            "denoising loss fell only from {early:.4} to {late:.4}"
        );

        // DDIM from t_s = 999 returns the training image far closer than another image.
        let trained = image_batch(&[&data[0]], Device::Cpu).unwrap();
        let (z0, estimate) = model.reconstruct(&trained, 999, 4, &mut ChaCha8Rng::seed_from_u64(3));
        let stranger = images(12, 1); // screw
        let other = model
            .codec()
            .encode(&image_batch(&[&stranger[0]], Device::Cpu).unwrap());
        let to_own = (&estimate - &z0)
            .square()
            .mean(tch::Kind::Float)
            .double_value(&[]);
        let to_other = (&estimate - &other)
            .square()
            .mean(tch::Kind::Float)
            .double_value(&[]);
        assert!(
            to_own < to_other / 3.0,
            "reconstruction error {to_own:.4} vs distance to another image {to_other:.4}"
        );
    }

    #[test]
    fn the_same_seeds_give_the_same_training() {
        let data = images(4, 2);
        let run = |seed: u64| {
            let (vs, model, config) = tiny_model(seed);
            let reports = train(&vs, &model, &config, &data, 3, 11);
            (
                reports,
                vs.variables()["unet.input_blocks.0.0.weight"].copy(),
            )
        };
        let (ra, wa) = run(5);
        let (rb, wb) = run(5);
        let (_, wc) = run(6);
        assert_eq!(ra, rb);
        assert!(wa.equal(&wb));
        assert!(!wa.equal(&wc));
    }

    #[test]
    fn the_filter_sees_each_update_and_with_project_gradients_each_gradient_first() {
        let calls = |project_gradients: bool| {
            let (vs, model, mut config) = tiny_model(3);
            config.project_gradients = project_gradients;
            let mut trainer = Trainer::new(&vs, &config, false);
            let data = images(4, 1);
            let batch = [TrainingSample {
                image: &data[0],
                sources: vec![],
            }];
            let mut calls: Vec<String> = Vec::new();
            trainer
                .step(
                    &model,
                    &batch,
                    &mut ChaCha8Rng::seed_from_u64(0),
                    |name, t| {
                        calls.push(name.to_string());
                        t
                    },
                )
                .unwrap();
            let names: Vec<String> = trainable_parameters(&vs, false)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            (calls, names)
        };
        let (once, names) = calls(false);
        assert_eq!(once, names);
        let (twice, names) = calls(true);
        assert_eq!(
            twice,
            names.iter().chain(&names).cloned().collect::<Vec<_>>()
        );
    }

    #[test]
    fn later_tasks_step_at_the_scaled_learning_rate() {
        // Adam's first step is proportional to the learning rate, so the weight change
        // of a later task's first step scales with `later_learning_rate_scale`, and the
        // first task ignores the factor.
        let change = |scale: f64, first_task: bool| {
            let (vs, model, mut config) = tiny_model(4);
            config.later_learning_rate_scale = scale;
            let name = "amn.stem.0.weight";
            let before = vs.variables()[name].copy();
            let mut trainer = Trainer::new(&vs, &config, first_task);
            let data = images(4, 2);
            let batch = [TrainingSample {
                image: &data[0],
                sources: vec![&data[1]],
            }];
            trainer
                .step(&model, &batch, &mut ChaCha8Rng::seed_from_u64(2), |_, t| t)
                .unwrap();
            &vs.variables()[name] - before
        };
        let full = change(1.0, false);
        let scaled = change(0.25, false);
        let error = (&scaled - &full * 0.25).abs().max().double_value(&[]);
        assert!(full.abs().max().double_value(&[]) > 0.0);
        assert!(error < 1e-7, "scaled step differs by {error}");
        assert!(change(0.25, true).equal(&change(1.0, true)));
    }

    #[test]
    fn a_non_finite_loss_stops_the_step_and_keeps_the_weights() {
        let (vs, model, config) = tiny_model(2);
        let mut trainer = Trainer::new(&vs, &config, true);
        let mut broken = images(4, 1).remove(0);
        broken.plane_mut(0)[0] = f32::NAN;
        let before = vs.variables()["amn.stem.0.weight"].copy();
        let batch = [TrainingSample {
            image: &broken,
            sources: vec![],
        }];
        let err = trainer
            .step(&model, &batch, &mut ChaCha8Rng::seed_from_u64(0), |_, u| u)
            .unwrap_err();
        assert!(matches!(err, Error::Numerical(_)), "{err}");
        assert!(vs.variables()["amn.stem.0.weight"].equal(&before));
    }
}
