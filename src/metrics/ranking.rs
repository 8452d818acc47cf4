//! Threshold sweeps shared by the ROC and precision-recall metrics. Scores are sorted
//! once; equal scores form one threshold step; every metric reads the cumulative counts
//! of that sweep.

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// Positives and negatives scoring at or above one threshold (cumulative counts).
#[derive(Debug, Clone, Copy)]
struct Step {
    tp: u64,
    fp: u64,
}

/// Positive (anomalous) and negative (normal) samples ranked by score: one step per
/// distinct score, from the highest to the lowest, a sample counting as predicted
/// positive at every threshold not above its score.
#[derive(Debug, Clone)]
pub struct Ranking {
    steps: Vec<Step>,
    positives: u64,
    negatives: u64,
}

impl Ranking {
    /// Ranks the scores of positive and negative samples. Errors when either set is
    /// empty or a score is NaN.
    pub fn new<T: PartialOrd + Copy>(mut positives: Vec<T>, mut negatives: Vec<T>) -> Result<Self> {
        if positives.is_empty() {
            return Err(Error::invalid(
                "no positive (anomalous) sample; ranking metrics need at least one positive and one negative",
            ));
        }
        if negatives.is_empty() {
            return Err(Error::invalid(
                "no negative (normal) sample; ranking metrics need at least one positive and one negative",
            ));
        }
        if positives
            .iter()
            .chain(&negatives)
            .any(|s| s.partial_cmp(s).is_none())
        {
            return Err(Error::invalid(
                "a score is NaN; every score must be a number",
            ));
        }
        sort_descending(&mut positives);
        sort_descending(&mut negatives);
        Ok(Ranking {
            steps: merge_steps(&positives, &negatives),
            positives: positives.len() as u64,
            negatives: negatives.len() as u64,
        })
    }

    /// Area under the ROC curve: trapezoids between consecutive threshold steps, so a
    /// tie between a positive and a negative counts one half. Never flipped: 0 means
    /// every negative outscores every positive.
    pub fn auroc(&self) -> f64 {
        // Twice the area in units of one positive-negative pair, exact in integers.
        let mut doubled: u128 = 0;
        let mut previous = Step { tp: 0, fp: 0 };
        for &step in &self.steps {
            doubled += u128::from(step.fp - previous.fp) * u128::from(step.tp + previous.tp);
            previous = step;
        }
        doubled as f64 / (2.0 * self.positives as f64 * self.negatives as f64)
    }

    /// Average precision: the sum over threshold steps of (recall gain) x (precision at
    /// that step), the usual step-wise area under the precision-recall curve.
    pub fn average_precision(&self) -> f64 {
        let mut sum = 0.0;
        let mut previous_tp = 0;
        for step in &self.steps {
            let precision = step.tp as f64 / (step.tp + step.fp) as f64;
            sum += (step.tp - previous_tp) as f64 * precision;
            previous_tp = step.tp;
        }
        sum / self.positives as f64
    }

    /// The best F1 score, 2 TP / (2 TP + FP + FN), over all threshold steps.
    pub fn f1_max(&self) -> f64 {
        self.steps
            .iter()
            .map(|s| 2.0 * s.tp as f64 / (s.tp + s.fp + self.positives) as f64)
            .fold(0.0, f64::max)
    }
}

/// Sorts NaN-free scores from the highest to the lowest.
fn sort_descending<T: PartialOrd>(scores: &mut [T]) {
    // Without NaN every pair compares; -0.0 and 0.0 are equal, as they should be.
    scores.sort_unstable_by(|a, b| b.partial_cmp(a).unwrap_or(Ordering::Equal));
}

/// Walks both descending lists together, one step per distinct score.
fn merge_steps<T: PartialOrd + Copy>(positives: &[T], negatives: &[T]) -> Vec<Step> {
    let mut steps = Vec::new();
    let (mut tp, mut fp) = (0, 0);
    loop {
        let threshold = match (positives.get(tp), negatives.get(fp)) {
            (Some(&p), Some(&n)) => {
                if p >= n {
                    p
                } else {
                    n
                }
            }
            (Some(&p), None) => p,
            (None, Some(&n)) => n,
            (None, None) => break,
        };
        // Everything left is at most `threshold`, so `>=` selects exactly the ties.
        while positives.get(tp).is_some_and(|&s| s >= threshold) {
            tp += 1;
        }
        while negatives.get(fp).is_some_and(|&s| s >= threshold) {
            fp += 1;
        }
        steps.push(Step {
            tp: tp as u64,
            fp: fp as u64,
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_zeros_tie() {
        let ranking = Ranking::new(vec![0.0f32], vec![-0.0f32]).unwrap();
        assert_eq!(ranking.auroc(), 0.5);
        assert_eq!(ranking.steps.len(), 1);
    }

    #[test]
    fn auroc_counts_pairs_and_ap_matches_a_direct_sum() {
        // Pseudo-random scores on a coarse grid, so that ties are common.
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u32
        };
        let samples: Vec<(f64, bool)> = (0..300)
            .map(|_| ((next() % 13) as f64, next() % 3 == 0))
            .collect();
        let positives: Vec<f64> = samples.iter().filter(|s| s.1).map(|s| s.0).collect();
        let negatives: Vec<f64> = samples.iter().filter(|s| !s.1).map(|s| s.0).collect();
        let ranking = Ranking::new(positives.clone(), negatives.clone()).unwrap();

        let mut wins = 0.0;
        for p in &positives {
            for n in &negatives {
                wins += if p > n {
                    1.0
                } else if p == n {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let pairs = (positives.len() * negatives.len()) as f64;
        assert!((ranking.auroc() - wins / pairs).abs() < 1e-12);

        // AP = mean over positives of the precision at the positive's own score.
        let precision_at = |t: f64| {
            let tp = positives.iter().filter(|&&p| p >= t).count() as f64;
            let fp = negatives.iter().filter(|&&n| n >= t).count() as f64;
            tp / (tp + fp)
        };
        let ap = positives.iter().map(|&p| precision_at(p)).sum::<f64>() / positives.len() as f64;
        assert!((ranking.average_precision() - ap).abs() < 1e-12);
    }
}
