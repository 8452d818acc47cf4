//! Every per-class metric at once (method.md section 7), serialisable for reports.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::metrics::image::image_ranking;
use crate::metrics::pixel::pixel_ranking;
use crate::metrics::pro::{au_pro, DEFAULT_FPR_LIMIT};

/// The six metrics of one class (or their mean over the classes of a task).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Image AUROC; the image score is the map maximum.
    pub image_auroc: f64,
    /// Image AUPR (average precision).
    pub image_aupr: f64,
    /// Best image F1 over all thresholds.
    pub image_f1_max: f64,
    /// Pixel AUROC over all pixels of the class.
    pub pixel_auroc: f64,
    /// Pixel AUPR (average precision) over all pixels of the class.
    pub pixel_aupr: f64,
    /// AU-PRO up to FPR 0.3, normalised by 0.3.
    pub au_pro: f64,
}

impl ClassMetrics {
    /// The mean of each metric over classes. Errors for no classes.
    pub fn mean(classes: &[ClassMetrics]) -> Result<ClassMetrics> {
        if classes.is_empty() {
            return Err(Error::invalid("class metrics: no classes to average"));
        }
        let mean = |metric: fn(&ClassMetrics) -> f64| {
            classes.iter().map(metric).sum::<f64>() / classes.len() as f64
        };
        Ok(ClassMetrics {
            image_auroc: mean(|c| c.image_auroc),
            image_aupr: mean(|c| c.image_aupr),
            image_f1_max: mean(|c| c.image_f1_max),
            pixel_auroc: mean(|c| c.pixel_auroc),
            pixel_aupr: mean(|c| c.pixel_aupr),
            au_pro: mean(|c| c.au_pro),
        })
    }
}

/// All metrics of one class from its image scores and labels (true = anomalous) and its
/// anomaly maps and masks (true = defect), one of each per test image. Errors for
/// inconsistent inputs or a class without anomalous (or normal) images or pixels.
pub fn evaluate_class(
    scores: &[f64],
    labels: &[bool],
    maps: &[ArrayView2<f32>],
    masks: &[ArrayView2<bool>],
) -> Result<ClassMetrics> {
    if scores.len() != maps.len() {
        return Err(Error::invalid(format!(
            "class metrics: {} image scores but {} anomaly maps; need one of each per image",
            scores.len(),
            maps.len()
        )));
    }
    let image = image_ranking(scores, labels)?;
    let pixel = pixel_ranking(maps, masks)?;
    Ok(ClassMetrics {
        image_auroc: image.auroc(),
        image_aupr: image.average_precision(),
        image_f1_max: image.f1_max(),
        pixel_auroc: pixel.auroc(),
        pixel_aupr: pixel.average_precision(),
        au_pro: au_pro(maps, masks, DEFAULT_FPR_LIMIT)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    #[test]
    fn perfect_class() {
        let masks = [
            array![[false, true], [true, true]],
            Array2::from_elem((2, 2), false),
        ];
        let maps: Vec<_> = masks.iter().map(|m| m.mapv(|d| d as u8 as f32)).collect();
        let maps: Vec<_> = maps.iter().map(|m| m.view()).collect();
        let masks: Vec<_> = masks.iter().map(|m| m.view()).collect();
        let metrics = evaluate_class(&[1.0, 0.0], &[true, false], &maps, &masks).unwrap();
        let perfect = ClassMetrics {
            image_auroc: 1.0,
            image_aupr: 1.0,
            image_f1_max: 1.0,
            pixel_auroc: 1.0,
            pixel_aupr: 1.0,
            au_pro: 1.0,
        };
        assert_eq!(metrics, perfect);
        let json = serde_json::to_value(metrics).unwrap();
        assert_eq!(json["au_pro"], 1.0);
        assert_eq!(json.as_object().map(|o| o.len()), Some(6));
    }

    #[test]
    fn class_without_defect_pixels_is_an_error() {
        let (mask, map) = (
            Array2::from_elem((2, 2), false),
            Array2::from_elem((2, 2), 0.5f32),
        );
        let (maps, masks) = ([map.view(), map.view()], [mask.view(), mask.view()]);
        let error = evaluate_class(&[0.9, 0.1], &[true, false], &maps, &masks).unwrap_err();
        assert!(error.to_string().contains("pixel metrics: no positive"));
        let error = evaluate_class(&[0.9], &[true], &maps, &masks).unwrap_err();
        assert!(error
            .to_string()
            .contains("1 image scores but 2 anomaly maps"));
    }

    #[test]
    fn mean_over_classes() {
        let a = ClassMetrics {
            image_auroc: 1.0,
            image_aupr: 0.5,
            image_f1_max: 0.2,
            pixel_auroc: 0.0,
            pixel_aupr: 0.25,
            au_pro: 0.75,
        };
        let b = ClassMetrics {
            image_auroc: 0.5,
            image_aupr: 1.0,
            image_f1_max: 0.4,
            pixel_auroc: 1.0,
            pixel_aupr: 0.75,
            au_pro: 0.25,
        };
        let mean = ClassMetrics::mean(&[a, b]).unwrap();
        assert_eq!(mean.image_auroc, 0.75);
        assert_eq!(mean.image_aupr, 0.75);
        assert!((mean.image_f1_max - 0.3).abs() < 1e-12);
        assert_eq!(mean.pixel_auroc, 0.5);
        assert_eq!(mean.pixel_aupr, 0.5);
        assert_eq!(mean.au_pro, 0.5);
        assert!(ClassMetrics::mean(&[]).is_err());
    }
}
