//! The `features` codec: the frozen EfficientNet-Lite0's stride-8 feature map,
//! optionally concatenated with its stride-16 map upsampled (bilinear) to stride 8,
//! standardised per channel with statistics fitted on a task's training images. It has
//! no decoder: the anomaly map is computed between input and reconstructed features.
//! The statistics live as non-trainable variables (`mean`, `std`) in the variable-store
//! path given to [`FeatureCodec::new`], so they are saved and loaded with the model.

use super::LatentCodec;
use crate::error::{Error, Result};
use crate::model::backbone::{EfficientNetLite0, FEATURE_CHANNELS, FEATURE_STRIDES};
use std::sync::Arc;
use tch::{nn, Kind, Tensor};

/// Positions of the stride-8 and stride-16 maps among the backbone's feature maps.
const STRIDE8: usize = 2;
const STRIDE16: usize = 3;

/// The dimensions a per-channel statistic reduces: batch, height and width.
const PER_CHANNEL: &[i64] = &[0, 2, 3];

/// Smallest standard deviation a channel is divided by (guards constant channels).
const MIN_STD: f64 = 1e-6;

/// Standardised backbone features as latents.
#[derive(Debug)]
pub struct FeatureCodec {
    backbone: Arc<EfficientNetLite0>,
    with_stride16: bool,
    /// Per-channel mean, shared with the variable store.
    mean: Tensor,
    /// Per-channel standard deviation, shared with the variable store.
    std: Tensor,
}

// SAFETY: the backbone's weights are frozen and only read; the statistics change only
// in `fit`, which the detector calls while it holds exclusive access (training).
// libtorch allows concurrent reads of a tensor.
unsafe impl Sync for FeatureCodec {}

impl FeatureCodec {
    /// A codec over `backbone` (loaded and frozen by the caller) whose statistics are
    /// created under `stats` as identity (mean 0, std 1) until [`fit`](Self::fit).
    /// `with_stride16` adds the upsampled stride-16 map (40 + 112 channels instead of 40).
    pub fn new(stats: nn::Path, backbone: Arc<EfficientNetLite0>, with_stride16: bool) -> Self {
        let channels = FEATURE_CHANNELS[STRIDE8]
            + if with_stride16 {
                FEATURE_CHANNELS[STRIDE16]
            } else {
                0
            };
        FeatureCodec {
            backbone,
            with_stride16,
            mean: stats.zeros_no_train("mean", &[channels]),
            std: stats.ones_no_train("std", &[channels]),
        }
    }

    /// Fits the per-channel statistics on one batch of ImageNet-normalised images.
    pub fn fit(&self, images: &Tensor) -> Result<()> {
        self.fit_batches(std::iter::once(images.shallow_clone()))
    }

    /// Fits the per-channel statistics (population mean and standard deviation over all
    /// images and positions) on batches of ImageNet-normalised images. Fails, leaving
    /// the statistics unchanged, when the batches hold no image.
    pub fn fit_batches(&self, batches: impl IntoIterator<Item = Tensor>) -> Result<()> {
        let mut totals: Option<(Tensor, Tensor)> = None;
        let mut count = 0;
        tch::no_grad(|| {
            for batch in batches {
                let size = batch.size();
                if size.len() != 4 || size[1] != 3 {
                    return Err(Error::invalid(format!(
                        "feature codec: images to fit must be N x 3 x H x W, got {size:?}"
                    )));
                }
                if batch.numel() == 0 {
                    continue;
                }
                let features = self.raw_features(&batch).to_kind(Kind::Double);
                let sum = features.sum_dim_intlist(PER_CHANNEL, false, Kind::Double);
                let squares = features
                    .square()
                    .sum_dim_intlist(PER_CHANNEL, false, Kind::Double);
                count += features.numel() / sum.numel();
                totals = Some(match totals.take() {
                    Some((s, q)) => (s + sum, q + squares),
                    None => (sum, squares),
                });
            }
            let Some((sum, squares)) = totals else {
                return Err(Error::invalid(
                    "feature codec: no images to fit the channel statistics on",
                ));
            };
            let mean = sum / count as f64;
            let variance = (squares / count as f64 - mean.square()).clamp_min(0.0);
            let std = variance.sqrt().clamp_min(MIN_STD);
            // The statistics are shared with the variable store: write through new handles.
            self.mean
                .shallow_clone()
                .copy_(&mean.to_kind(self.mean.kind()));
            self.std
                .shallow_clone()
                .copy_(&std.to_kind(self.std.kind()));
            Ok(())
        })
    }

    /// The backbone's stride-8 map, with the upsampled stride-16 map appended if asked.
    fn raw_features(&self, images: &Tensor) -> Tensor {
        let deepest = if self.with_stride16 {
            FEATURE_STRIDES[STRIDE16]
        } else {
            FEATURE_STRIDES[STRIDE8]
        };
        let maps = self.backbone.forward_features_to(images, deepest);
        let fine = &maps[STRIDE8];
        if !self.with_stride16 {
            return fine.shallow_clone();
        }
        let (_, _, height, width) = fine.size4().expect("feature maps are N x C x H x W");
        let coarse = maps[STRIDE16].upsample_bilinear2d([height, width], false, None, None);
        Tensor::cat(&[fine, &coarse], 1)
    }
}

impl LatentCodec for FeatureCodec {
    fn fit_statistics(&self, batches: Vec<Tensor>) -> Result<()> {
        self.fit_batches(batches)
    }

    fn latent_channels(&self) -> i64 {
        self.mean.size()[0]
    }

    fn stride(&self) -> i64 {
        FEATURE_STRIDES[STRIDE8]
    }

    fn encode(&self, images: &Tensor) -> Tensor {
        let features = self.raw_features(images);
        (features - self.mean.view([1, -1, 1, 1])) / self.std.view([1, -1, 1, 1])
    }

    fn decode(&self, _latents: &Tensor) -> Option<Tensor> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn random_backbone() -> Arc<EfficientNetLite0> {
        let vs = nn::VarStore::new(Device::Cpu);
        Arc::new(EfficientNetLite0::new(vs.root()))
    }

    fn images() -> Tensor {
        Tensor::randn([2, 3, 128, 128], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn latent_shapes_follow_the_backbone_widths() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        for (with_stride16, channels) in [(false, 40), (true, 152)] {
            let codec = FeatureCodec::new(vs.root() / channels, random_backbone(), with_stride16);
            let latents = tch::no_grad(|| codec.encode(&images()));
            assert_eq!(latents.size(), [2, channels, 16, 16]);
            assert_eq!((codec.latent_channels(), codec.stride()), (channels, 8));
            assert!(codec.decode(&latents).is_none());
        }
    }

    #[test]
    fn fitted_features_are_standardised_and_statistics_are_saved() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let codec = FeatureCodec::new(vs.root() / "codec", random_backbone(), true);
        let batch = images();
        let raw = tch::no_grad(|| codec.encode(&batch));
        codec.fit(&batch).expect("fit");
        let latents = tch::no_grad(|| codec.encode(&batch));
        assert!(
            !latents.allclose(&raw, 1e-3, 1e-3, false),
            "fit changed nothing"
        );
        let mean = latents.mean_dim(PER_CHANNEL, false, Kind::Float);
        let std = latents.std_dim(PER_CHANNEL, false, false);
        assert!(mean.abs().max().double_value(&[]) < 1e-3, "{mean}");
        assert!((std - 1.0).abs().max().double_value(&[]) < 1e-3);
        assert!(vs.trainable_variables().is_empty());

        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("codec.safetensors");
        vs.save(&path).expect("save");
        let mut restored_vs = nn::VarStore::new(Device::Cpu);
        let restored = FeatureCodec::new(restored_vs.root() / "codec", codec.backbone, true);
        restored_vs.load(&path).expect("load");
        let again = tch::no_grad(|| restored.encode(&batch));
        assert!(again.allclose(&latents, 1e-6, 1e-6, false));

        let empty = FeatureCodec::new(vs.root() / "empty", random_backbone(), false);
        assert!(empty.fit_batches(Vec::new()).is_err());
    }
}
