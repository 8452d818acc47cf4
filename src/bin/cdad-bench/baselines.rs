//! Reference scorers on the same frozen backbone features, for comparison with the
//! diffusion model: the floor of no model at all (distance of each feature vector to
//! the mean training feature at that position) and a PatchCore-style nearest-neighbour
//! scorer (distance to the nearest training patch feature in a memory bank).

use cdad::data::preprocess::resize_image;
use cdad::detector::AnomalyMap;
use cdad::image::RgbImage;
use cdad::model::backbone::EfficientNetLite0;
use cdad::model::diffusion::image_batch;
use cdad::model::scorer::{gaussian_blur, image_scores};
use tch::{Device, Kind, Tensor};

/// Which reference scorer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// Distance to the mean training feature at each position.
    MeanFeature,
    /// Distance to the nearest training patch feature (PatchCore without coreset).
    NearestPatch,
}

/// A fitted reference scorer.
pub struct FittedBaseline {
    kind: Baseline,
    reference: Tensor,
    size: usize,
    sigma: f64,
}

/// Stride-8 and upsampled stride-16 features, locally averaged (3x3) like PatchCore.
fn patch_features(backbone: &EfficientNetLite0, images: &Tensor) -> Tensor {
    let maps = backbone.forward_features_to(images, 16);
    let (h, w) = (maps[2].size()[2], maps[2].size()[3]);
    let deep = maps[3].upsample_bilinear2d([h, w], false, None, None);
    Tensor::cat(&[&maps[2], &deep], 1).avg_pool2d([3, 3], [1, 1], [1, 1], false, true, None::<i64>)
}

impl FittedBaseline {
    /// Fits on good training images at model size `size`.
    pub fn fit(
        kind: Baseline,
        backbone: &EfficientNetLite0,
        train: &[RgbImage],
        size: usize,
        sigma: f64,
    ) -> cdad::Result<Self> {
        let resized: Vec<RgbImage> = train.iter().map(|i| resize_image(i, size)).collect();
        let features = tch::no_grad(|| -> cdad::Result<Tensor> {
            let mut all = Vec::new();
            for chunk in resized.chunks(8) {
                all.push(patch_features(
                    backbone,
                    &image_batch(&chunk.iter().collect::<Vec<_>>(), Device::Cpu)?,
                ));
            }
            Ok(Tensor::cat(&all, 0))
        })?;
        let reference = match kind {
            Baseline::MeanFeature => features.mean_dim([0i64].as_slice(), true, Kind::Float),
            Baseline::NearestPatch => {
                let c = features.size()[1];
                features.permute([0, 2, 3, 1]).reshape([-1, c])
            }
        };
        Ok(FittedBaseline {
            kind,
            reference,
            size,
            sigma,
        })
    }

    /// Anomaly maps at the images' resolution.
    pub fn score(
        &self,
        backbone: &EfficientNetLite0,
        images: &[RgbImage],
    ) -> cdad::Result<Vec<AnomalyMap>> {
        let resized: Vec<RgbImage> = images.iter().map(|i| resize_image(i, self.size)).collect();
        let batch = image_batch(&resized.iter().collect::<Vec<_>>(), Device::Cpu)?;
        let maps = tch::no_grad(|| {
            let features = patch_features(backbone, &batch);
            let (n, c, h, w) = features.size4().unwrap_or((0, 0, 0, 0));
            let distance = match self.kind {
                Baseline::MeanFeature => (&features - &self.reference)
                    .square()
                    .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
                    .sqrt(),
                Baseline::NearestPatch => {
                    let queries = features.permute([0, 2, 3, 1]).reshape([-1, c]);
                    // |q - r|^2 = |q|^2 + |r|^2 - 2 q.r, minimised over the bank.
                    let q2 = queries
                        .square()
                        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
                    let r2 = self
                        .reference
                        .square()
                        .sum_dim_intlist([1i64].as_slice(), true, Kind::Float)
                        .transpose(0, 1);
                    let d2 = q2 + r2 - queries.matmul(&self.reference.transpose(0, 1)) * 2.0;
                    let nearest = d2.amin([1i64].as_slice(), false).clamp_min(0.0).sqrt();
                    nearest.view([n, 1, h, w])
                }
            };
            let s = self.size as i64;
            gaussian_blur(
                &distance.upsample_bilinear2d([s, s], false, None, None),
                self.sigma * s as f64 / 256.0,
            )
            .squeeze_dim(1)
        });
        let scores = image_scores(&maps);
        images
            .iter()
            .enumerate()
            .map(|(k, image)| {
                let (w, h) = (image.width() as i64, image.height() as i64);
                let map = maps
                    .get(k as i64)
                    .view([1, 1, self.size as i64, self.size as i64])
                    .upsample_bilinear2d([h, w], false, None, None);
                let values = Vec::<f32>::try_from(map.flatten(0, 3))
                    .map_err(|e| cdad::Error::invalid(format!("map readback: {e}")))?;
                Ok(AnomalyMap {
                    width: w as usize,
                    height: h as usize,
                    values,
                    score: scores[k],
                })
            })
            .collect()
    }
}
