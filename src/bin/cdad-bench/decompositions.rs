//! One task's representation decomposed three ways (method.md 5.2): full SVD as the
//! reference, iSVD and the Gram matrix. For each: wall time of the whole collection
//! (trajectory, recording and decomposition), bytes held by the decomposers, directions
//! kept, and the principal angles between each layer's kept subspace and the full SVD's.

use cdad::config::{Config, Decomposition, Preset};
use cdad::continual::{collect_representation, principal_angles, Basis};
use cdad::data::dataset::{load_image, open_dataset};
use cdad::data::preprocess::resize_image;
use cdad::error::Result;
use cdad::image::RgbImage;
use cdad::model::builder::{build_model, BuiltModel, WeightSource};
use cdad::model::diffusion::image_batch;
use cdad::model::training::{projected_layers, Trainer, TrainingSample};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Trains a compact model for `steps` steps on `class`, then collects and decomposes its
/// representation with each method and prints the comparison table.
pub fn run(root: &Path, class: &str, steps: usize, every: usize, block: usize) -> Result<()> {
    let mut config = Preset::Compact.config();
    config.train_steps = steps;
    config.representation_every = every;
    config.isvd_block_images = block;
    let data = open_dataset(root, None)?.class(class)?;
    let images = data
        .train_good
        .iter()
        .map(|p| Ok(resize_image(&load_image(p)?, config.image_size)))
        .collect::<Result<Vec<RgbImage>>>()?;
    let built = train(&config, &images)?;
    let layers = projected_layers(&built.vs);
    let refs: Vec<&RgbImage> = images.iter().collect();

    let sample: Vec<&RgbImage> = refs.iter().step_by(every).copied().collect();
    let start = Instant::now();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for image in &sample {
        let batch = image_batch(&[image], built.model.device())?;
        let _ = built
            .model
            .reconstruct(&batch, config.start_step, config.ddim_steps, &mut rng);
    }
    let trajectory_seconds = start.elapsed().as_secs_f64();

    println!(
        "class {class}, {} training images, every {every}-th used ({} images), {} projected layers, \
         block of {block} image(s), energy {}; the trajectory alone (no recording) took {trajectory_seconds:.1} s",
        images.len(),
        sample.len(),
        layers.len(),
        config.energy_first
    );
    println!();
    println!("| method | seconds | largest layer held (MiB) | all layers held (MiB) | directions kept | largest angle to full (deg) | mean of per-layer largest angles (deg) |");
    println!("|---|---|---|---|---|---|---|");
    let mut reference: Option<BTreeMap<String, Basis>> = None;
    for method in [
        Decomposition::Full,
        Decomposition::Isvd,
        Decomposition::Gram,
    ] {
        config.decomposition = method;
        let start = Instant::now();
        let (bases, report) =
            collect_representation(&built.model, &refs, &layers, &config, |_| true)?;
        let seconds = start.elapsed().as_secs_f64();
        let kept: usize = bases.values().map(Basis::rank).sum();
        let angles = match &reference {
            None => None,
            Some(full) => Some(largest_angles(full, &bases)?),
        };
        let (largest, mean) = angles.map_or(("-".into(), "-".into()), |a| {
            let largest = a.iter().copied().fold(0.0, f64::max);
            let mean = a.iter().sum::<f64>() / a.len().max(1) as f64;
            (format!("{largest:.3}"), format!("{mean:.3}"))
        });
        println!(
            "| {} | {seconds:.1} | {:.1} | {:.1} | {kept} | {largest} | {mean} |",
            method.as_str(),
            mib(report.peak_bytes),
            mib(report.held_bytes),
        );
        if method == Decomposition::Full {
            reference = Some(bases);
        }
    }
    Ok(())
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Per layer, the largest principal angle between the reference subspace and the other.
fn largest_angles(
    reference: &BTreeMap<String, Basis>,
    other: &BTreeMap<String, Basis>,
) -> Result<Vec<f64>> {
    reference
        .iter()
        .filter_map(|(name, a)| other.get(name).map(|b| (a, b)))
        .map(|(a, b)| {
            let angles = principal_angles(a.u.view(), b.u.view())?;
            Ok(angles.into_iter().fold(0.0, f64::max))
        })
        .collect()
}

/// A compact model trained for `config.train_steps` steps on `images` (the model the
/// first task of a detector would have before its representation is collected).
fn train(config: &Config, images: &[RgbImage]) -> Result<BuiltModel> {
    let built = build_model(config, WeightSource::Files)?;
    let device = built.model.device();
    let refs: Vec<&RgbImage> = images.iter().collect();
    let batches = refs
        .chunks(16)
        .map(|c| image_batch(c, device))
        .collect::<Result<Vec<_>>>()?;
    built.model.codec().fit_statistics(batches)?;
    let mut trainer = Trainer::new(&built.vs, config, true);
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    for _ in 0..config.train_steps {
        let samples: Vec<TrainingSample<'_>> = (0..config.batch_size)
            .map(|_| TrainingSample {
                image: refs[rand::Rng::random_range(&mut rng, 0..refs.len())],
                sources: refs.clone(),
            })
            .collect();
        trainer.step(&built.model, &samples, &mut rng, |_, u| u)?;
    }
    Ok(built)
}
