//! A task's training images prepared for training: loaded, resized to the model size,
//! grouped by class, and drawn into batches with NSA sources from the same class.

use crate::data::preprocess::resize_image;
use crate::data::task::TaskData;
use crate::error::Result;
use crate::image::RgbImage;
use crate::model::training::TrainingSample;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The images of one task at the model size, by class.
pub struct PreparedTask {
    classes: Vec<Vec<RgbImage>>,
}

impl PreparedTask {
    /// Loads and resizes every image; `progress(fraction)` is told how far it got and
    /// returns false to cancel (`Ok(None)`).
    pub fn load(
        task: &TaskData,
        size: usize,
        mut progress: impl FnMut(f64) -> bool,
    ) -> Result<Option<Self>> {
        let total: usize = task.classes().iter().map(|c| c.images.len()).sum();
        let mut done = 0;
        let mut classes = Vec::with_capacity(task.classes().len());
        for class in task.classes() {
            let mut images = Vec::with_capacity(class.images.len());
            for image in &class.images {
                images.push(resize_image(&image.load()?, size));
                done += 1;
                if !progress(done as f64 / total.max(1) as f64) {
                    return Ok(None);
                }
            }
            classes.push(images);
        }
        Ok(Some(PreparedTask { classes }))
    }

    /// Every image, class after class.
    pub fn images(&self) -> impl Iterator<Item = &RgbImage> {
        self.classes.iter().flatten()
    }

    /// A batch of `size` images drawn uniformly over all images of the task, each with
    /// the other images of its class as NSA sources.
    pub fn batch(&self, size: usize, rng: &mut ChaCha8Rng) -> Vec<TrainingSample<'_>> {
        let total: usize = self.classes.iter().map(Vec::len).sum();
        (0..size)
            .map(|_| {
                let mut pick = rng.random_range(0..total);
                let class = self
                    .classes
                    .iter()
                    .find(|c| {
                        if pick < c.len() {
                            true
                        } else {
                            pick -= c.len();
                            false
                        }
                    })
                    .expect("pick is below the total image count");
                let image = &class[pick];
                let sources = class
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != pick)
                    .map(|(_, o)| o)
                    .collect();
                TrainingSample { image, sources }
            })
            .collect()
    }
}
