//! Collects a task's layer representations (method.md 5.1): the inputs every projected
//! layer sees while the model runs its inference trajectory (noising to t_s, then the
//! DDIM steps, conditioned by the AMN) on a sample of the task's training images. Each
//! block of images is decomposed as it arrives, so at most one block of columns is held.

use super::decomposition::{Basis, Decomposer};
use crate::config::{Config, Decomposition};
use crate::error::{Error, Result};
use crate::image::RgbImage;
use crate::model::diffusion::{image_batch, DiffusionModel};
use crate::model::layers::with_recorder;
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use tch::{Kind, Tensor};

/// What collecting measured, per layer and in total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CollectionReport {
    /// Images the trajectory ran on.
    pub images: usize,
    /// Columns fed to the decomposers, summed over layers.
    pub columns: usize,
    /// Largest number of bytes a single layer's decomposer held at once.
    pub peak_bytes: usize,
    /// Sum over layers of each decomposer's peak bytes: an upper bound of what all
    /// decomposers held together (the layers' states live side by side).
    pub held_bytes: usize,
}

fn decomposer(config: &Config, d: usize) -> Result<Decomposer> {
    match config.decomposition {
        Decomposition::Full => Decomposer::full(d),
        Decomposition::Isvd => Decomposer::isvd(d, config.energy_first),
        Decomposition::Gram => Decomposer::gram(d),
    }
}

fn to_array(columns: &Tensor) -> Result<Array2<f32>> {
    let (d, m) = (columns.size()[0] as usize, columns.size()[1] as usize);
    let values = Vec::<f32>::try_from(
        columns
            .to_kind(Kind::Float)
            .to_device(tch::Device::Cpu)
            .contiguous()
            .view([-1]),
    )
    .map_err(|e| Error::invalid(format!("representation readback: {e}")))?;
    Array2::from_shape_vec((d, m), values)
        .map_err(|e| Error::invalid(format!("representation shape: {e}")))
}

/// Indexes of the images that go into the representation: every `every`-th one, or
/// `min_images` evenly spread when that gives fewer (all of them when there are fewer).
fn representation_sample(count: usize, every: usize, min_images: usize) -> Vec<usize> {
    let every = every.max(1);
    let wanted = min_images.min(count);
    if count.div_ceil(every) >= wanted {
        (0..count).step_by(every).collect()
    } else {
        (0..wanted).map(|i| i * count / wanted).collect()
    }
}

/// Runs the inference trajectory over the images [`representation_sample`] picks,
/// `config.isvd_block_images` images per block, recording the layers named in `layers`,
/// and returns each layer's basis (energy `config.energy_first`). `progress(fraction)`
/// returns false to cancel (`Err(Error::Cancelled)`).
pub fn collect_representation(
    model: &DiffusionModel,
    images: &[&RgbImage],
    layers: &BTreeSet<String>,
    config: &Config,
    mut progress: impl FnMut(f64) -> bool,
) -> Result<(BTreeMap<String, Basis>, CollectionReport)> {
    let sample: Vec<&RgbImage> = representation_sample(
        images.len(),
        config.representation_every,
        config.representation_min_images,
    )
    .into_iter()
    .map(|i| images[i])
    .collect();
    if sample.is_empty() {
        return Err(Error::invalid(
            "no images to collect the representation from",
        ));
    }
    let mut decomposers: BTreeMap<String, Decomposer> = BTreeMap::new();
    let mut report = CollectionReport {
        images: sample.len(),
        ..Default::default()
    };
    let blocks: Vec<&[&RgbImage]> = sample.chunks(config.isvd_block_images.max(1)).collect();
    for (index, block) in blocks.iter().enumerate() {
        let recorded: Rc<RefCell<BTreeMap<String, Vec<Tensor>>>> = Rc::default();
        let sink = Rc::clone(&recorded);
        let wanted = layers.clone();
        let batch = image_batch(block, model.device())?;
        let mut rng =
            ChaCha8Rng::seed_from_u64(config.seed ^ 0x5EED_0F_u64.wrapping_mul(index as u64 + 1));
        let _ = with_recorder(
            move |name, columns| {
                if wanted.contains(name) {
                    sink.borrow_mut()
                        .entry(name.to_string())
                        .or_default()
                        .push(columns.detach());
                }
            },
            || model.reconstruct(&batch, config.start_step, config.ddim_steps, &mut rng),
        );
        for (name, parts) in recorded.take() {
            let columns = to_array(&Tensor::cat(&parts, 1))?;
            report.columns += columns.ncols();
            let entry = match decomposers.entry(name) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(decomposer(config, columns.nrows())?)
                }
            };
            entry.add_block(columns.view())?;
            report.peak_bytes = report.peak_bytes.max(entry.peak_bytes());
        }
        if !progress((index + 1) as f64 / blocks.len() as f64) {
            return Err(Error::Cancelled);
        }
    }
    report.held_bytes = decomposers.values().map(Decomposer::peak_bytes).sum();
    let bases = decomposers
        .into_iter()
        .map(|(name, d)| Ok((name, d.finish(config.energy_first)?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    Ok((bases, report))
}

#[cfg(test)]
mod tests {
    use super::representation_sample;

    #[test]
    fn sample_takes_every_nth_image_when_that_is_enough() {
        assert_eq!(representation_sample(10, 4, 1), vec![0, 4, 8]);
        assert_eq!(representation_sample(120, 4, 30).len(), 30);
        assert_eq!(representation_sample(120, 4, 30)[..3], [0, 4, 8]);
    }

    #[test]
    fn sample_spreads_the_minimum_evenly_over_a_small_task() {
        assert_eq!(
            representation_sample(40, 4, 20),
            (0..20).map(|i| 2 * i).collect::<Vec<_>>()
        );
        let sample = representation_sample(40, 4, 30);
        assert_eq!(sample.len(), 30);
        assert!(sample.windows(2).all(|w| w[0] < w[1]));
        assert_eq!((sample[0], *sample.last().unwrap()), (0, 38));
    }

    #[test]
    fn sample_never_exceeds_the_images_there_are() {
        assert_eq!(representation_sample(5, 4, 30), vec![0, 1, 2, 3, 4]);
        assert_eq!(representation_sample(1, 1, 1), vec![0]);
        assert!(representation_sample(0, 4, 30).is_empty());
    }
}
