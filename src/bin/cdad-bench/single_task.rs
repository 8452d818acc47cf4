//! Single-task quality: one detector per class of a dataset (compact preset), trained on
//! the class's good images, evaluated on its test set; beside it, ablations (no
//! neighbour mask, pixel codec) and reference scorers on the same backbone features.

use crate::baselines::{Baseline, FittedBaseline};
use cdad::config::value::Value;
use cdad::config::{Codec, Config, Preset};
use cdad::data::dataset::{load_image, open_dataset};
use cdad::data::task::TaskData;
use cdad::detector::{evaluate_with, Detector};
use cdad::metrics::ClassMetrics;
use cdad::model::backbone::EfficientNetLite0;
use cdad::model::builder::backbone_path;
use std::path::Path;
use std::time::Instant;

/// What is measured for a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The compact preset as shipped.
    Cdad,
    /// The compact preset with the AMN's neighbour mask switched off.
    NoMask,
    /// The compact preset in pixel space (pixel codec, factor 8).
    Pixel,
    /// No model: distance to the mean training feature at each position.
    MeanFeature,
    /// PatchCore-style nearest training patch feature.
    NearestPatch,
}

fn detector_config(variant: Variant, steps: Option<usize>) -> Config {
    let mut config = Preset::Compact.config();
    // One task per detector: no later task needs the projection memory.
    config.projection = false;
    if let Some(steps) = steps {
        config.train_steps = steps;
    }
    match variant {
        Variant::NoMask => config.amn_mask_size = 0,
        Variant::Pixel => {
            config.codec = Codec::Pixel;
            config.pixel_factor = 8;
        }
        _ => {}
    }
    config
}

/// An inference setting evaluated on each trained detector: start level t_s and the
/// number of reconstructions averaged per map, written `999x1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inference {
    start_step: usize,
    seeds: usize,
}

impl std::str::FromStr for Inference {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let parse = |part: Option<&str>| part.and_then(|p| p.trim().parse::<usize>().ok());
        let mut parts = text.split('x');
        match (parse(parts.next()), parse(parts.next()), parts.next()) {
            (Some(start_step), Some(seeds), None) => Ok(Inference { start_step, seeds }),
            _ => Err(format!("'{text}' is not START_STEPxSEEDS, e.g. 999x1")),
        }
    }
}

impl std::fmt::Display for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.start_step, self.seeds)
    }
}

/// One row of the table: what was measured and its metrics.
struct Row {
    label: String,
    metrics: ClassMetrics,
    seconds: f64,
}

fn measure(
    root: &Path,
    class: &str,
    variant: Variant,
    steps: Option<usize>,
    inference: &[Inference],
) -> cdad::Result<Vec<Row>> {
    let data = open_dataset(root, None)?.class(class)?;
    let quiet = |_: usize, _: usize| {};
    let start = Instant::now();
    match variant {
        Variant::Cdad | Variant::NoMask | Variant::Pixel => {
            let mut detector = Detector::new(detector_config(variant, steps))?;
            let mut task = TaskData::new(class)?;
            task.add_class_from_dataset(root, class, None)?;
            let id = detector.add_task(task)?;
            detector.train_task(id, |_, _| true)?;
            let trained = start.elapsed().as_secs_f64();
            let mut rows = Vec::new();
            for setting in inference {
                let evaluation = Instant::now();
                detector.set_inference_key("start_step", Value::Int(setting.start_step as i64))?;
                detector.set_inference_key("map_seeds", Value::Int(setting.seeds as i64))?;
                let metrics = evaluate_with(&data, |images| detector.infer_batch(images), quiet)?;
                let label = if inference.len() == 1 {
                    format!("{variant:?}")
                } else {
                    format!(
                        "{variant:?} t_s={} seeds={}",
                        setting.start_step, setting.seeds
                    )
                };
                rows.push(Row {
                    label,
                    metrics,
                    seconds: trained + evaluation.elapsed().as_secs_f64(),
                });
            }
            Ok(rows)
        }
        Variant::MeanFeature | Variant::NearestPatch => {
            let config = Preset::Compact.config();
            let backbone = EfficientNetLite0::load(&backbone_path(&config), tch::Device::Cpu)?;
            let train = data
                .train_good
                .iter()
                .map(|p| load_image(p))
                .collect::<cdad::Result<Vec<_>>>()?;
            let kind = if variant == Variant::MeanFeature {
                Baseline::MeanFeature
            } else {
                Baseline::NearestPatch
            };
            let fitted =
                FittedBaseline::fit(kind, &backbone, &train, config.image_size, config.map_sigma)?;
            let metrics = evaluate_with(&data, |images| fitted.score(&backbone, images), quiet)?;
            Ok(vec![Row {
                label: format!("{variant:?}"),
                metrics,
                seconds: start.elapsed().as_secs_f64(),
            }])
        }
    }
}

/// Runs every variant on every class (diffusion variants once per inference setting,
/// from one training) and prints the table and the means.
pub fn run(
    root: &Path,
    classes: &[String],
    variants: &[Variant],
    steps: Option<usize>,
    inference: &[Inference],
) -> cdad::Result<()> {
    println!("| class | variant | image AUROC | pixel AUROC | AU-PRO | seconds |");
    println!("|---|---|---|---|---|---|");
    let mut results: Vec<(String, ClassMetrics)> = Vec::new();
    for class in classes {
        for &variant in variants {
            for row in measure(root, class, variant, steps, inference)? {
                let m = &row.metrics;
                println!(
                    "| {class} | {} | {:.3} | {:.3} | {:.3} | {:.0} |",
                    row.label, m.image_auroc, m.pixel_auroc, m.au_pro, row.seconds
                );
                results.push((row.label, row.metrics));
            }
        }
    }
    println!();
    println!("| variant | mean image AUROC | mean pixel AUROC | mean AU-PRO | classes |");
    println!("|---|---|---|---|---|");
    let mut labels: Vec<&String> = Vec::new();
    for (label, _) in &results {
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    for label in labels {
        let of_label: Vec<ClassMetrics> = results
            .iter()
            .filter(|(l, _)| l == label)
            .map(|(_, m)| *m)
            .collect();
        let mean = ClassMetrics::mean(&of_label)?;
        println!(
            "| {label} | {:.3} | {:.3} | {:.3} | {} |",
            mean.image_auroc,
            mean.pixel_auroc,
            mean.au_pro,
            of_label.len()
        );
    }
    Ok(())
}
