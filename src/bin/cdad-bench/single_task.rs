//! Single-task quality: one detector per class of a dataset (compact preset), trained on
//! the class's good images, evaluated on its test set; beside it, ablations (no
//! neighbour mask, pixel codec) and reference scorers on the same backbone features.

use crate::baselines::{Baseline, FittedBaseline};
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

fn measure(
    root: &Path,
    class: &str,
    variant: Variant,
    steps: Option<usize>,
) -> cdad::Result<ClassMetrics> {
    let data = open_dataset(root, None)?.class(class)?;
    let quiet = |_: usize, _: usize| {};
    match variant {
        Variant::Cdad | Variant::NoMask | Variant::Pixel => {
            let mut detector = Detector::new(detector_config(variant, steps))?;
            let mut task = TaskData::new(class)?;
            task.add_class_from_dataset(root, class, None)?;
            let id = detector.add_task(task)?;
            detector.train_task(id, |_, _| true)?;
            evaluate_with(&data, |images| detector.infer_batch(images), quiet)
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
            evaluate_with(&data, |images| fitted.score(&backbone, images), quiet)
        }
    }
}

/// Runs every variant on every class and prints the table and the means.
pub fn run(
    root: &Path,
    classes: &[String],
    variants: &[Variant],
    steps: Option<usize>,
) -> cdad::Result<()> {
    println!("| class | variant | image AUROC | pixel AUROC | AU-PRO | seconds |");
    println!("|---|---|---|---|---|---|");
    let mut results: Vec<(Variant, ClassMetrics)> = Vec::new();
    for class in classes {
        for &variant in variants {
            let start = Instant::now();
            let metrics = measure(root, class, variant, steps)?;
            println!(
                "| {class} | {variant:?} | {:.3} | {:.3} | {:.3} | {:.0} |",
                metrics.image_auroc,
                metrics.pixel_auroc,
                metrics.au_pro,
                start.elapsed().as_secs_f64()
            );
            results.push((variant, metrics));
        }
    }
    println!();
    println!("| variant | mean image AUROC | mean pixel AUROC | mean AU-PRO | classes |");
    println!("|---|---|---|---|---|");
    for &variant in variants {
        let of_variant: Vec<ClassMetrics> = results
            .iter()
            .filter(|(v, _)| *v == variant)
            .map(|(_, m)| *m)
            .collect();
        let mean = ClassMetrics::mean(&of_variant)?;
        println!(
            "| {variant:?} | {:.3} | {:.3} | {:.3} | {} |",
            mean.image_auroc,
            mean.pixel_auroc,
            mean.au_pro,
            of_variant.len()
        );
    }
    Ok(())
}
