//! Evaluation of anomaly maps on a labelled test set: every test image of a class is
//! scored in batches, and the image- and pixel-level metrics are computed against the
//! ground-truth masks at the images' own resolution.

use super::AnomalyMap;
use crate::data::dataset::{load_test_sample, ClassData};
use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};
use crate::metrics::{evaluate_class, ClassMetrics};
use ndarray::{Array2, ArrayView2};

/// Test images scored per call of the scoring function.
const BATCH: usize = 8;

/// Scores every test image of `class` with `score` (a batch of images -> their maps)
/// and returns the class's metrics. `progress(done, total)` follows the images.
pub fn evaluate_with(
    class: &ClassData,
    mut score: impl FnMut(&[RgbImage]) -> Result<Vec<AnomalyMap>>,
    mut progress: impl FnMut(usize, usize),
) -> Result<ClassMetrics> {
    let total = class.test.len();
    let (mut scores, mut labels, mut maps, mut masks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for chunk in class.test.chunks(BATCH) {
        let mut images = Vec::with_capacity(chunk.len());
        for sample in chunk {
            let (image, mask) = load_test_sample(sample)?;
            labels.push(sample.defect.is_some());
            masks.push(mask_array(&mask));
            images.push(image);
        }
        for map in score(&images)? {
            scores.push(map.score as f64);
            maps.push(
                Array2::from_shape_vec((map.height, map.width), map.values)
                    .map_err(|e| Error::invalid(format!("anomaly map has the wrong size: {e}")))?,
            );
        }
        progress(maps.len(), total);
    }
    let map_views: Vec<ArrayView2<f32>> = maps.iter().map(|m| m.view()).collect();
    let mask_views: Vec<ArrayView2<bool>> = masks.iter().map(|m| m.view()).collect();
    evaluate_class(&scores, &labels, &map_views, &mask_views)
        .map_err(|e| Error::invalid(format!("class '{}': {e}", class.name)))
}

fn mask_array(mask: &Mask) -> Array2<bool> {
    Array2::from_shape_fn((mask.height(), mask.width()), |(y, x)| mask.get(x, y))
}
