//! The detector: one model for every class it has learned. Tasks (sets of classes with
//! good images) are added and trained one after another; inference needs no class or
//! task id and returns an anomaly map at the input's resolution and an image score.
//! Everything learned is saved to, and restored from, one self-describing file.

mod evaluate;
mod file;
mod training_data;

use crate::config::{Codec, Config};
use crate::continual::projector::SAVED_PREFIX;
use crate::continual::{collect_representation, GradientProjector};
use crate::data::preprocess::resize_image;
use crate::data::task::TaskData;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::model::builder::{build_model, BuiltModel, WeightSource, SCORER_MODULE_KEY};
use crate::model::diffusion::image_batch;
use crate::model::scorer::{image_scores, Scorer};
use crate::model::training::{projected_layers, Trainer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};
use training_data::PreparedTask;

pub use evaluate::evaluate_with;
pub use file::FORMAT_VERSION;

/// An anomaly map at the resolution of the image it was computed for, and the image
/// score (the maximum of the map at model resolution).
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyMap {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major values, higher = more anomalous.
    pub values: Vec<f32>,
    /// The image score.
    pub score: f32,
}

/// A task the detector knows: its name, classes, and whether it has been trained.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskRecord {
    /// The task's name.
    pub name: String,
    /// Its classes.
    pub classes: Vec<String>,
    /// Whether training finished.
    pub trained: bool,
}

/// What a finished training reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainingSummary {
    /// Steps run.
    pub steps: usize,
    /// Mean denoising loss over the last tenth of the steps.
    pub final_diffusion_loss: f64,
    /// Mean AMN loss over the last tenth of the steps.
    pub final_amn_loss: f64,
}

/// The continual anomaly detector.
pub struct Detector {
    config: Config,
    built: BuiltModel,
    scorer: Scorer,
    tasks: Vec<TaskRecord>,
    pending: BTreeMap<usize, TaskData>,
    projector: GradientProjector,
}

// SAFETY: inference only reads tensors (libtorch allows concurrent reads); every call
// that writes (training, loading statistics) takes `&mut self`, so the borrow checker,
// or the C layer's lock, gives it exclusive access.
unsafe impl Sync for Detector {}

impl Detector {
    /// A detector with an untrained model for `config`.
    pub fn new(config: Config) -> Result<Self> {
        let built = build_model(&config, WeightSource::Files)?;
        log::info!(
            "detector created: codec {}, device {:?}",
            config.codec.as_str(),
            built.model.device()
        );
        Ok(Self::assemble(
            config,
            built,
            Vec::new(),
            GradientProjector::default(),
        ))
    }

    fn assemble(
        config: Config,
        built: BuiltModel,
        tasks: Vec<TaskRecord>,
        projector: GradientProjector,
    ) -> Self {
        let scorer = Scorer::new(built.scorer_backbone.clone(), &config);
        Detector {
            config,
            built,
            scorer,
            tasks,
            pending: BTreeMap::new(),
            projector,
        }
    }

    /// Every weight of the model by name (UNet, AMN, codec statistics, backbone).
    pub fn weights(&self) -> BTreeMap<String, Tensor> {
        self.built.vs.variables().into_iter().collect()
    }

    /// The projection bases (d x k per projected layer), named `gpm.<weight name>`.
    pub fn projection_bases(&self) -> Vec<(String, Tensor)> {
        self.projector.to_tensors()
    }

    /// How many basis columns the projection memories hold, and their total dimension.
    pub fn projection_occupancy(&self) -> (usize, usize) {
        self.projector.occupancy()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Changes a key that only affects inference ([`Config::INFERENCE_KEYS`]: the start
    /// level, the DDIM steps, the seeds averaged per map, the smoothing), on a trained
    /// or untrained detector; the value is saved with the model. Any other key is
    /// refused because the model was built and trained with it.
    pub fn set_inference_key(
        &mut self,
        key: &str,
        value: crate::config::value::Value,
    ) -> Result<()> {
        if !Config::INFERENCE_KEYS.contains(&key) {
            return Err(Error::invalid(format!(
                "'{key}' cannot change once the detector exists; keys that can: {}",
                Config::INFERENCE_KEYS.join(", ")
            )));
        }
        let mut config = self.config.clone();
        config.set(key, value)?;
        config.validate()?;
        self.scorer = Scorer::new(self.built.scorer_backbone.clone(), &config);
        self.config = config;
        Ok(())
    }

    /// Every task, in the order they were added.
    pub fn tasks(&self) -> &[TaskRecord] {
        &self.tasks
    }

    /// Registers a task's training data and returns its id (0, 1, ...). Its class
    /// names must be new to the detector.
    pub fn add_task(&mut self, data: TaskData) -> Result<usize> {
        if data.classes().is_empty() {
            return Err(Error::invalid(format!(
                "task '{}' has no classes; add at least one",
                data.name()
            )));
        }
        for class in data.classes() {
            if let Some(task) = self.tasks.iter().find(|t| t.classes.contains(&class.name)) {
                return Err(Error::invalid(format!(
                    "class '{}' already belongs to task '{}'; each class is learned once",
                    class.name, task.name
                )));
            }
        }
        let id = self.tasks.len();
        self.tasks.push(TaskRecord {
            name: data.name().to_string(),
            classes: data.classes().iter().map(|c| c.name.clone()).collect(),
            trained: false,
        });
        self.pending.insert(id, data);
        Ok(id)
    }

    /// Trains task `id` for `train_steps` steps. `progress(fraction, stage)` is called
    /// as work advances; returning false cancels. A cancelled or failed training
    /// restores every weight, so the detector is exactly as before the call.
    pub fn train_task(
        &mut self,
        id: usize,
        mut progress: impl FnMut(f64, &str) -> bool,
    ) -> Result<TrainingSummary> {
        let record = self.tasks.get(id).ok_or_else(|| {
            Error::invalid(format!(
                "task id {id} does not exist; the detector has {} task(s)",
                self.tasks.len()
            ))
        })?;
        if record.trained {
            return Err(Error::State(format!(
                "task {id} ('{}') is already trained",
                record.name
            )));
        }
        if let Some(earlier) = self.tasks[..id].iter().position(|t| !t.trained) {
            return Err(Error::State(format!(
                "task {earlier} must be trained before task {id}"
            )));
        }
        let data = self.pending.get(&id).ok_or_else(|| {
            Error::State(format!("the training data of task {id} is not available (tasks loaded from a file keep no images)"))
        })?;
        let size = self.config.image_size;
        let Some(prepared) = PreparedTask::load(data, size, |f| progress(0.05 * f, "loading"))?
        else {
            return Err(Error::Cancelled);
        };
        let snapshot = self.snapshot();
        let outcome = self
            .run_training(id, &prepared, &mut progress)
            .and_then(|summary| {
                if self.config.projection {
                    self.update_projection(id, &prepared, &mut progress)?;
                }
                Ok(summary)
            });
        match outcome {
            Ok(summary) => {
                self.tasks[id].trained = true;
                self.pending.remove(&id);
                log::info!("task {id} trained: {summary:?}");
                Ok(summary)
            }
            Err(e) => {
                self.restore(&snapshot);
                Err(e)
            }
        }
    }

    fn run_training(
        &mut self,
        id: usize,
        prepared: &PreparedTask,
        progress: &mut impl FnMut(f64, &str) -> bool,
    ) -> Result<TrainingSummary> {
        let first_task = id == 0;
        let device = self.built.model.device();
        if first_task && self.config.codec == Codec::Features {
            let images: Vec<&RgbImage> = prepared.images().collect();
            let batches = images
                .chunks(16)
                .map(|c| image_batch(c, device))
                .collect::<Result<Vec<_>>>()?;
            self.built.model.codec().fit_statistics(batches)?;
        }
        let mut trainer = Trainer::new(&self.built.vs, &self.config, first_task);
        let projector = &self.projector;
        let projecting = self.config.projection && !first_task;
        let mut rng =
            ChaCha8Rng::seed_from_u64(self.config.seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9));
        let steps = self.config.train_steps;
        let tail = (steps / 10).max(1);
        let (mut diffusion, mut amn) = (0.0, 0.0);
        for step in 0..steps {
            let batch = prepared.batch(self.config.batch_size, &mut rng);
            let report = trainer.step(&self.built.model, &batch, &mut rng, |name, update| {
                if projecting {
                    projector.filter(name, update)
                } else {
                    update
                }
            })?;
            if step + tail >= steps {
                diffusion += report.diffusion / tail as f64;
                amn += report.amn / tail as f64;
            }
            if !progress(0.05 + 0.85 * (step + 1) as f64 / steps as f64, "training") {
                return Err(Error::Cancelled);
            }
        }
        Ok(TrainingSummary {
            steps,
            final_diffusion_loss: diffusion,
            final_amn_loss: amn,
        })
    }

    /// Collects the task's representation and merges it into the projection memories
    /// (the memories change only when everything succeeded).
    fn update_projection(
        &mut self,
        id: usize,
        prepared: &PreparedTask,
        progress: &mut impl FnMut(f64, &str) -> bool,
    ) -> Result<()> {
        let layers = projected_layers(&self.built.vs);
        let images: Vec<&RgbImage> = prepared.images().collect();
        let (bases, report) =
            collect_representation(&self.built.model, &images, &layers, &self.config, |f| {
                progress(0.9 + 0.1 * f, "representation")
            })?;
        let c = &self.config;
        self.projector.merge(
            &bases,
            id,
            c.energy_first,
            c.energy_base,
            c.energy_increment,
            self.built.model.device(),
        )?;
        let (kept, total) = self.projector.occupancy();
        log::info!(
            "task {id}: representation of {} images, {} layers, {} columns, peak {} bytes per layer; \
             projection memory holds {kept} of {total} dimensions",
            report.images,
            bases.len(),
            report.columns,
            report.peak_bytes
        );
        Ok(())
    }

    fn snapshot(&self) -> Vec<(String, Tensor)> {
        self.built
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().copy()))
            .collect()
    }

    fn restore(&self, snapshot: &[(String, Tensor)]) {
        let variables = self.built.vs.variables();
        tch::no_grad(|| {
            for (name, saved) in snapshot {
                if let Some(variable) = variables.get(name) {
                    variable.shallow_clone().copy_(saved);
                }
            }
        });
    }

    /// Anomaly maps and scores for a batch of images of any sizes (each map has its
    /// image's size). Needs at least one trained task.
    pub fn infer_batch(&self, images: &[RgbImage]) -> Result<Vec<AnomalyMap>> {
        if !self.tasks.iter().any(|t| t.trained) {
            return Err(Error::State(
                "no task is trained yet; train a task before inference".into(),
            ));
        }
        let size = self.config.image_size;
        let resized: Vec<RgbImage> = images.iter().map(|i| resize_image(i, size)).collect();
        let mut results = Vec::with_capacity(images.len());
        for (chunk, originals) in resized.chunks(8).zip(images.chunks(8)) {
            let batch = image_batch(&chunk.iter().collect::<Vec<_>>(), self.built.model.device())?;
            let maps = self.scorer.maps(&self.built.model, &batch)?;
            let scores = image_scores(&maps);
            for (k, original) in originals.iter().enumerate() {
                let (w, h) = (original.width(), original.height());
                let map = maps.get(k as i64).view([1, 1, size as i64, size as i64]);
                let full = if (w, h) == (size, size) {
                    map
                } else {
                    map.upsample_bilinear2d([h as i64, w as i64], false, None, None)
                };
                let values = Vec::<f32>::try_from(
                    full.flatten(0, 3)
                        .to_kind(Kind::Float)
                        .to_device(tch::Device::Cpu),
                )
                .map_err(|e| Error::invalid(format!("anomaly map could not be read back: {e}")))?;
                results.push(AnomalyMap {
                    width: w,
                    height: h,
                    values,
                    score: scores[k],
                });
            }
        }
        Ok(results)
    }

    /// The anomaly map and score of one image.
    pub fn infer(&self, image: &RgbImage) -> Result<AnomalyMap> {
        let mut maps = self.infer_batch(std::slice::from_ref(image))?;
        maps.pop()
            .ok_or_else(|| Error::invalid("inference returned no map"))
    }

    /// Saves everything needed to infer and to continue learning (configuration, task
    /// registry, all weights) into one file, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let header = serde_json::json!({
            "library": env!("CARGO_PKG_VERSION"),
            "config": self.config.to_json(),
            "tasks": self.tasks,
        });
        let mut tensors: Vec<(String, Tensor)> = self.built.vs.variables().into_iter().collect();
        tensors.extend(self.projector.to_tensors());
        if let Some(bytes) = self.built.scorer_backbone.serialized() {
            tensors.push((SCORER_MODULE_KEY.to_string(), Tensor::from_slice(bytes)));
        }
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        file::write_model_file(path, &header, &tensors)
    }

    /// Restores a detector saved with [`Detector::save`]. The device may be overridden
    /// (e.g. load a model trained on a GPU onto the CPU). Tasks that were added but not
    /// trained are dropped (their images are not stored).
    pub fn load(path: &Path, device: Option<crate::device::DeviceChoice>) -> Result<Self> {
        let (header, tensors) = file::read_model_file(path)?;
        let bad = |what: &str| Error::FileFormat(format!("{}: {what}", path.display()));
        let mut config = Config::from_json(
            header
                .get("config")
                .ok_or_else(|| bad("header has no configuration"))?,
        )?;
        if let Some(device) = device {
            config.device = device;
        }
        let tasks: Vec<TaskRecord> =
            serde_json::from_value(header.get("tasks").cloned().unwrap_or_default())
                .map_err(|e| bad(&format!("task registry does not parse ({e})")))?;
        let (bases, weights): (BTreeMap<String, Tensor>, BTreeMap<String, Tensor>) = tensors
            .into_iter()
            .partition(|(name, _)| name.starts_with(SAVED_PREFIX));
        let built = build_model(&config, WeightSource::Saved(&weights, path))?;
        let projector = GradientProjector::from_tensors(&bases, built.model.device())?;
        let tasks = tasks.into_iter().filter(|t| t.trained).collect();
        Ok(Self::assemble(config, built, tasks, projector))
    }
}
