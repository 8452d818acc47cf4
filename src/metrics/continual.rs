//! Continual measures over the task-after-task matrix (method.md section 7).
//!
//! Indexing: `matrix[b][i]` is the metric of task `i` measured right after training
//! task `b`, both 0-based, so N = `matrix.len()` tasks and row `b` needs entries
//! `0..=b`; entries with `i > b` are never read (they may be `None` or absent). The
//! paper's 1-based A_{b,i} is `matrix[b - 1][i - 1]`, so
//! * A-metric = (1/N) sum_{i=1..N} A_{N,i} is the mean of the last row, and
//! * FM = 1/(N-1) sum_{i=1..N-1} max_{b=i..N-1} (A_{b,i} - A_{N,i}) averages, over
//!   every task but the last, the largest drop from any evaluation before the final
//!   one (rows `i..N-1`, the last row excluded) to the final one. A task that only
//!   improved contributes a negative term; FM is 0 for N = 1.
//!
//! A needed entry that is `None`, NaN or infinite is an error.

use crate::error::{Error, Result};

/// A-metric: the mean over all tasks of their metric after the last task.
pub fn a_metric(matrix: &[Vec<Option<f64>>]) -> Result<f64> {
    let last = last_row(matrix)?;
    let mut sum = 0.0;
    for i in 0..=last {
        sum += entry(matrix, last, i)?;
    }
    Ok(sum / matrix.len() as f64)
}

/// Forgetting measure FM (lower is better; see the module for the indexing).
pub fn forgetting_measure(matrix: &[Vec<Option<f64>>]) -> Result<f64> {
    let last = last_row(matrix)?;
    if last == 0 {
        return Ok(0.0);
    }
    let mut sum = 0.0;
    for i in 0..last {
        let final_value = entry(matrix, last, i)?;
        let mut drop = f64::NEG_INFINITY;
        for b in i..last {
            drop = drop.max(entry(matrix, b, i)? - final_value);
        }
        sum += drop;
    }
    Ok(sum / last as f64)
}

/// Index of the last row; errors for an empty matrix.
fn last_row(matrix: &[Vec<Option<f64>>]) -> Result<usize> {
    matrix
        .len()
        .checked_sub(1)
        .ok_or_else(|| Error::invalid("continual metrics: the task matrix has no rows"))
}

/// The finite entry `matrix[b][i]`, or an error saying which one is missing.
fn entry(matrix: &[Vec<Option<f64>>], b: usize, i: usize) -> Result<f64> {
    match matrix[b].get(i).copied().flatten() {
        Some(value) if value.is_finite() => Ok(value),
        _ => Err(Error::invalid(format!(
            "continual metrics: the metric of task {i} after training task {b} (matrix[{b}][{i}]) is missing or not finite"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < EPS
    }

    fn three_tasks() -> Vec<Vec<Option<f64>>> {
        vec![
            vec![Some(0.9), None, None],
            vec![Some(0.8), Some(0.95)],
            vec![Some(0.7), Some(0.85), Some(0.99)],
        ]
    }

    #[test]
    fn three_by_three_by_hand() {
        let matrix = three_tasks();
        assert!(close(a_metric(&matrix).unwrap(), (0.7 + 0.85 + 0.99) / 3.0));
        // Task 0: max(0.9 - 0.7, 0.8 - 0.7) = 0.2; task 1: 0.95 - 0.85 = 0.1.
        assert!(close(forgetting_measure(&matrix).unwrap(), 0.15));
    }

    #[test]
    fn improvement_gives_negative_terms() {
        let matrix = vec![vec![Some(0.6)], vec![Some(0.8), Some(0.9)]];
        assert!(close(forgetting_measure(&matrix).unwrap(), -0.2));
        assert!(close(a_metric(&matrix).unwrap(), 0.85));
    }

    #[test]
    fn single_task() {
        let matrix = vec![vec![Some(0.7)]];
        assert!(close(a_metric(&matrix).unwrap(), 0.7));
        assert_eq!(forgetting_measure(&matrix).unwrap(), 0.0);
    }

    #[test]
    fn missing_entries_are_errors() {
        let message = |r: Result<f64>| r.unwrap_err().to_string();
        assert!(message(a_metric(&[])).contains("no rows"));
        assert!(message(forgetting_measure(&[])).contains("no rows"));
        let mut matrix = three_tasks();
        matrix[1][0] = Some(f64::NAN);
        assert!(message(forgetting_measure(&matrix)).contains("matrix[1][0]"));
        assert!(a_metric(&matrix).is_ok());
        let mut matrix = three_tasks();
        matrix[2].pop();
        assert!(message(a_metric(&matrix)).contains("matrix[2][2]"));
        let mut matrix = three_tasks();
        matrix[1][1] = None;
        assert!(message(forgetting_measure(&matrix)).contains("task 1 after training task 1"));
    }
}
