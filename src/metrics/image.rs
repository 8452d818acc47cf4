//! Image-level metrics: one anomaly score per image (the map maximum) against the
//! image's label (true = anomalous).

use crate::error::{Error, Result};
use crate::metrics::ranking::Ranking;

/// Ranks image scores against image labels; the three image metrics read this one
/// ranking. Errors for no images, a length mismatch, a NaN score, or a set without
/// anomalous or without normal images.
pub fn image_ranking(scores: &[f64], labels: &[bool]) -> Result<Ranking> {
    if scores.is_empty() {
        return Err(Error::invalid("image metrics: no images"));
    }
    if scores.len() != labels.len() {
        return Err(Error::invalid(format!(
            "image metrics: {} scores but {} labels; need one label per score",
            scores.len(),
            labels.len()
        )));
    }
    if let Some(index) = scores.iter().position(|s| s.is_nan()) {
        return Err(Error::invalid(format!(
            "image metrics: the score of image {index} is NaN"
        )));
    }
    let (mut positives, mut negatives) = (Vec::new(), Vec::new());
    for (&score, &anomalous) in scores.iter().zip(labels) {
        if anomalous {
            positives.push(score);
        } else {
            negatives.push(score);
        }
    }
    Ranking::new(positives, negatives).map_err(|e| Error::invalid(format!("image metrics: {e}")))
}

/// Image AUROC (ties count one half; never flipped below 0.5).
pub fn image_auroc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    Ok(image_ranking(scores, labels)?.auroc())
}

/// Image AUPR as average precision, equal scores forming one threshold.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Result<f64> {
    Ok(image_ranking(scores, labels)?.average_precision())
}

/// Best image F1 over all thresholds.
pub fn f1_max(scores: &[f64], labels: &[bool]) -> Result<f64> {
    Ok(image_ranking(scores, labels)?.f1_max())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    #[test]
    fn known_small_example() {
        let scores = [0.9, 0.8, 0.7, 0.6];
        let labels = [true, false, true, false];
        // Positive 0.9 beats both negatives, 0.7 beats one: 3 of 4 pairs.
        assert!(close(image_auroc(&scores, &labels).unwrap(), 0.75));
        assert!(close(
            average_precision(&scores, &labels).unwrap(),
            (1.0 + 2.0 / 3.0) / 2.0
        ));
        // Steps (tp, fp): (1,0) 2/3, (1,1) 1/2, (2,1) 4/5, (2,2) 2/3.
        assert!(close(f1_max(&scores, &labels).unwrap(), 0.8));
    }

    #[test]
    fn ties_form_one_threshold() {
        let scores = [0.9, 0.5, 0.5, 0.1];
        let labels = [true, true, false, false];
        // 0.9 beats both negatives (2); 0.5 ties one (1/2) and beats one (1): 3.5 / 4.
        assert!(close(image_auroc(&scores, &labels).unwrap(), 0.875));
        // Steps: 0.9 -> (1,0) recall +1/2 at precision 1; 0.5 -> (2,1) +1/2 at 2/3.
        assert!(close(
            average_precision(&scores, &labels).unwrap(),
            5.0 / 6.0
        ));
        assert!(close(f1_max(&scores, &labels).unwrap(), 0.8));
    }

    #[test]
    fn constant_scores() {
        let scores = [0.3; 4];
        let labels = [true, false, true, false];
        assert!(close(image_auroc(&scores, &labels).unwrap(), 0.5));
        assert!(close(average_precision(&scores, &labels).unwrap(), 0.5));
        assert!(close(f1_max(&scores, &labels).unwrap(), 2.0 / 3.0));
    }

    #[test]
    fn perfect_and_inverted_are_not_flipped() {
        let labels = [true, true, false, false];
        assert!(close(
            image_auroc(&[0.9, 0.8, 0.2, 0.1], &labels).unwrap(),
            1.0
        ));
        assert!(close(
            average_precision(&[0.9, 0.8, 0.2, 0.1], &labels).unwrap(),
            1.0
        ));
        assert!(close(f1_max(&[0.9, 0.8, 0.2, 0.1], &labels).unwrap(), 1.0));
        assert!(close(
            image_auroc(&[0.1, 0.2, 0.8, 0.9], &labels).unwrap(),
            0.0
        ));
        // Both positives come last: precision 1/3 then 2/4, recall +1/2 each.
        assert!(close(
            average_precision(&[0.1, 0.2, 0.8, 0.9], &labels).unwrap(),
            (1.0 / 3.0 + 0.5) / 2.0
        ));
    }

    #[test]
    fn infinite_scores_rank_normally() {
        let scores = [f64::INFINITY, 0.0, f64::NEG_INFINITY];
        assert!(close(
            image_auroc(&scores, &[true, false, false]).unwrap(),
            1.0
        ));
    }

    #[test]
    fn degenerate_inputs_are_errors() {
        let message = |r: Result<f64>| r.unwrap_err().to_string();
        assert!(message(image_auroc(&[], &[])).contains("no images"));
        assert!(message(image_auroc(&[0.1, 0.2], &[true])).contains("2 scores but 1 labels"));
        assert!(message(image_auroc(&[0.1, f64::NAN], &[true, false])).contains("image 1 is NaN"));
        assert!(message(average_precision(&[0.1, 0.2], &[false, false])).contains("no positive"));
        assert!(message(f1_max(&[0.1, 0.2], &[true, true])).contains("no negative"));
    }
}
