//! The gradient-projection memory (GPM, method.md 5.3 and 5.4): per layer, an
//! orthonormal basis P (d x k) of the input space earlier tasks used, grown after every
//! task by the directions of the new task's representation that P does not cover yet.

use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use crate::continual::decomposition::{check_energy, left_svd, Basis};
use crate::error::{Error, Result};

/// Largest value [`merge_threshold`] returns: the schedule is capped below 1.
pub const MAX_MERGE_THRESHOLD: f64 = 0.9999;

/// Residual directions whose squared singular value is at most this fraction of
/// ||R'||_F² are rounding noise of directions already in span(P); they are never added.
const NOISE_ENERGY: f64 = 1e-10;

/// A new column whose norm falls below this after re-orthogonalisation against P lay
/// mostly inside span(P) and is dropped instead of normalised.
const MIN_FRESH_NORM: f64 = 0.5;

/// Largest deviation of PᵀP from the identity accepted when loading a basis.
const LOAD_ORTHONORMAL_TOL: f32 = 1e-3;

/// GPM's threshold schedule, tasks counted from 1: task 2 (the first merge after the
/// first task) uses `base`, each later task adds `increment`, capped at
/// [`MAX_MERGE_THRESHOLD`].
/// Task 1 normally uses its own threshold; indices 0 and 1 return `base` as well.
pub fn merge_threshold(task_index: usize, base: f64, increment: f64) -> f64 {
    let steps = task_index.saturating_sub(2) as f64;
    (base + steps * increment).min(MAX_MERGE_THRESHOLD)
}

/// What one [`ProjectionMemory::merge`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergeReport {
    /// Columns appended to P.
    pub added: usize,
    /// Fraction of the representation's energy inside span(P) before the merge.
    pub before: f64,
    /// Fraction of the representation's energy inside span(P) after the merge.
    pub after: f64,
}

/// One layer's projection memory: P (d x k, orthonormal columns, k <= d).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectionMemory {
    basis: Array2<f32>,
}

impl ProjectionMemory {
    /// An empty memory (k = 0) for inputs of dimension d >= 1.
    pub fn new(d: usize) -> Result<Self> {
        if d == 0 {
            return Err(Error::invalid(
                "projection memory dimension d must be at least 1",
            ));
        }
        Ok(Self {
            basis: Array2::zeros((d, 0)),
        })
    }

    /// The basis P, d x k.
    pub fn basis(&self) -> ArrayView2<'_, f32> {
        self.basis.view()
    }

    /// Input dimension d.
    pub fn dim(&self) -> usize {
        self.basis.nrows()
    }

    /// Number of basis columns k.
    pub fn rank(&self) -> usize {
        self.basis.ncols()
    }

    /// Merges a task's representation, summarised by its decomposition (U', S'²), so
    /// that span(P) covers at least `energy` (in (0, 1]) of Σ S'² where d allows. With
    /// W = U' S': the fraction already covered is ||PᵀW||²/Σ S'²; if short, the fewest
    /// leading left singular vectors of (I - P Pᵀ) W that reach `energy` are appended
    /// after a re-orthogonalisation pass against P. For an empty P this keeps U'[:, :r]
    /// of the energy rule (up to signs). Never grows P beyond d columns.
    pub fn merge(&mut self, representation: &Basis, energy: f64) -> Result<MergeReport> {
        check_energy(energy)?;
        let d = self.dim();
        let (u, s2) = (&representation.u, &representation.s2);
        if u.nrows() != d || s2.len() != u.ncols() {
            return Err(Error::invalid(format!(
                "representation basis is {}x{} with {} singular values; the memory expects \
                 {d} rows and one singular value per column",
                u.nrows(),
                u.ncols(),
                s2.len()
            )));
        }
        if !s2.iter().all(|v| v.is_finite() && *v >= 0.0) || !u.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid(
                "representation holds non-finite or negative values",
            ));
        }
        let total: f64 = s2.sum();
        let p = self.basis.mapv(f64::from);
        let mut w = u.mapv(f64::from);
        for (mut column, &energy_i) in w.columns_mut().into_iter().zip(s2.iter()) {
            column *= energy_i.sqrt();
        }
        let covered = |p: &Array2<f64>| p.t().dot(&w).iter().map(|v| v * v).sum::<f64>();
        if total <= 0.0 {
            return Ok(MergeReport {
                added: 0,
                before: 1.0,
                after: 1.0,
            });
        }
        let projected = covered(&p);
        let before = (projected / total).min(1.0);
        let room = d - p.ncols();
        if before >= energy || room == 0 {
            return Ok(MergeReport {
                added: 0,
                before,
                after: before,
            });
        }
        let residual = &w - &p.dot(&p.t().dot(&w));
        let (u_hat, s_hat) = left_svd(residual)?;
        let (target, floor) = (energy * total, NOISE_ENERGY * total);
        let mut reached = projected;
        let mut r = 0;
        for &sigma in s_hat.iter().take(room) {
            let energy_i = sigma * sigma;
            if reached >= target || energy_i <= floor {
                break;
            }
            reached += energy_i;
            r += 1;
        }
        let fresh = orthonormalise_against(&p, u_hat.slice(s![.., ..r]).to_owned());
        let added = fresh.ncols();
        let grown = ndarray::concatenate(Axis(1), &[p.view(), fresh.view()])
            .map_err(|e| Error::invalid(format!("appending to the projection basis: {e}")))?;
        let after = (covered(&grown) / total).min(1.0);
        self.basis = grown.mapv(|v| v as f32);
        Ok(MergeReport {
            added,
            before,
            after,
        })
    }

    /// Removes from an update G (out x d) its component along span(P):
    /// G - (G P) Pᵀ, without forming the d x d projector. Inputs x in span(P) then see
    /// (W - lr G') x = W x.
    pub fn project_update(&self, update: ArrayView2<f32>) -> Result<Array2<f32>> {
        if update.ncols() != self.dim() {
            return Err(Error::invalid(format!(
                "update has {} columns, the projection memory has d = {}",
                update.ncols(),
                self.dim()
            )));
        }
        let mut projected = update.to_owned();
        if self.rank() > 0 {
            let coefficients = update.dot(&self.basis);
            general_mat_mul(-1.0, &coefficients, &self.basis.t(), 1.0, &mut projected);
        }
        Ok(projected)
    }

    /// P as a row-major flat vector and its shape [d, k], for saving as a tensor.
    pub fn to_flat(&self) -> (Vec<f32>, [usize; 2]) {
        (
            self.basis.iter().copied().collect(),
            [self.dim(), self.rank()],
        )
    }

    /// Rebuilds a memory from [`ProjectionMemory::to_flat`]'s output; checks the shape,
    /// k <= d, finiteness and orthonormality (|PᵀP - I| <= 1e-3 elementwise).
    pub fn from_flat(data: Vec<f32>, shape: [usize; 2]) -> Result<Self> {
        let [d, k] = shape;
        if d == 0 || k > d {
            return Err(Error::invalid(format!(
                "projection basis shape {d}x{k}: need d >= 1 and k <= d"
            )));
        }
        let basis = Array2::from_shape_vec((d, k), data)
            .map_err(|e| Error::invalid(format!("projection basis of shape {d}x{k}: {e}")))?;
        if !basis.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("projection basis holds non-finite values"));
        }
        let deviation = (&basis.t().dot(&basis) - &Array2::<f32>::eye(k))
            .iter()
            .fold(0.0f32, |m, v| m.max(v.abs()));
        if deviation > LOAD_ORTHONORMAL_TOL {
            return Err(Error::invalid(format!(
                "projection basis is not orthonormal (|PᵀP - I| reaches {deviation})"
            )));
        }
        Ok(Self { basis })
    }
}

/// Makes the columns of `candidates` orthonormal to P and to each other (two classical
/// Gram-Schmidt passes each); drops those left shorter than [`MIN_FRESH_NORM`].
fn orthonormalise_against(p: &Array2<f64>, mut candidates: Array2<f64>) -> Array2<f64> {
    for _ in 0..2 {
        let coefficients = p.t().dot(&candidates);
        general_mat_mul(-1.0, p, &coefficients, 1.0, &mut candidates);
    }
    let mut accepted: Vec<Array1<f64>> = Vec::new();
    for column in candidates.columns() {
        let mut c = column.to_owned();
        for _ in 0..2 {
            for q in &accepted {
                let along = q.dot(&c);
                c.scaled_add(-along, q);
            }
        }
        let norm = c.dot(&c).sqrt();
        if norm >= MIN_FRESH_NORM {
            accepted.push(c / norm);
        }
    }
    let mut fresh = Array2::zeros((p.nrows(), accepted.len()));
    for (mut column, q) in fresh.columns_mut().into_iter().zip(&accepted) {
        column.assign(q);
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::continual::decomposition::tests::{random_matrix, random_orthonormal};
    use crate::continual::decomposition::{energy_rank, principal_angles, Decomposer};

    /// Decomposition (Gram, all energy) of U0 diag(sv) C + noise, C random.
    fn representation(u0: &Array2<f32>, sv: &[f32], n: usize, noise: f32, seed: u64) -> Basis {
        let (d, k) = u0.dim();
        let scaled = u0 * &Array1::from(sv.to_vec()).insert_axis(Axis(0));
        let data = scaled.dot(&random_matrix(k, n, seed)) + random_matrix(d, n, seed + 1) * noise;
        let mut dec = Decomposer::gram(d).expect("gram");
        dec.add_block(data.view()).expect("add");
        dec.finish(1.0).expect("finish")
    }

    fn orthonormality_error(p: ArrayView2<f32>) -> f32 {
        (&p.t().dot(&p) - &Array2::<f32>::eye(p.ncols()))
            .iter()
            .fold(0.0, |m, v| m.max(v.abs()))
    }

    fn max_abs(a: &Array2<f32>) -> f32 {
        a.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    #[test]
    fn first_merge_keeps_the_energy_rule_columns() {
        let d = 40;
        let rep = representation(
            &random_orthonormal(d, 6, 1),
            &[9.0, 7.0, 5.0, 3.0, 2.0, 1.0],
            200,
            0.01,
            2,
        );
        let mut memory = ProjectionMemory::new(d).expect("new");
        let report = memory.merge(&rep, 0.97).expect("merge");
        let r = energy_rank(rep.s2.as_slice().expect("contiguous"), 0.97);
        assert_eq!(memory.rank(), r);
        assert_eq!(report.added, r);
        assert_eq!(report.before, 0.0);
        assert!(report.after >= 0.97);
        let kept = rep.u.slice(s![.., ..r]);
        let angles = principal_angles(memory.basis(), kept).expect("angles");
        assert!(angles.iter().all(|a| *a < 0.01), "{angles:?}");
    }

    #[test]
    fn basis_stays_orthonormal_over_three_merges() {
        let d = 30;
        let mut memory = ProjectionMemory::new(d).expect("new");
        for task in 0..4u64 {
            let u0 = random_orthonormal(d, 8, 10 + task);
            let rep = representation(
                &u0,
                &[8.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.5, 1.0],
                100,
                0.02,
                20 + 2 * task,
            );
            let energy = merge_threshold(task as usize + 1, 0.97, 0.003);
            let report = memory.merge(&rep, energy).expect("merge");
            assert!(report.after >= energy, "task {task}: {report:?}");
            assert!(memory.rank() <= d);
            let err = orthonormality_error(memory.basis());
            assert!(err < 1e-4, "task {task}: |PᵀP - I| = {err}");
        }
    }

    #[test]
    fn never_more_than_d_columns() {
        let d = 10;
        let mut memory = ProjectionMemory::new(d).expect("new");
        let low = representation(
            &random_orthonormal(d, 6, 3),
            &[5.0, 4.0, 3.0, 2.0, 1.0, 1.0],
            60,
            0.0,
            4,
        );
        memory.merge(&low, 0.999).expect("merge");
        assert!(memory.rank() <= 6);
        let full_rank = representation(&Array2::eye(d), &[1.0; 10], 60, 0.5, 5);
        let report = memory.merge(&full_rank, 1.0).expect("merge");
        assert_eq!(memory.rank(), d, "{report:?}");
        let again = memory.merge(&full_rank, 1.0).expect("merge");
        assert_eq!(again.added, 0);
        assert_eq!(memory.rank(), d);
        assert!(orthonormality_error(memory.basis()) < 1e-4);
    }

    #[test]
    fn merging_a_representation_inside_the_span_adds_nothing() {
        let d = 36;
        let mut memory = ProjectionMemory::new(d).expect("new");
        let rep = representation(
            &random_orthonormal(d, 7, 6),
            &[6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0],
            120,
            0.0,
            7,
        );
        memory.merge(&rep, 0.999).expect("merge");
        let k = memory.rank();
        let inside = memory.basis().dot(&random_matrix(k, 90, 8));
        for dec in [
            Decomposer::full(d),
            Decomposer::gram(d),
            Decomposer::isvd(d, 1.0),
        ] {
            let mut dec = dec.expect("new");
            dec.add_block(inside.view()).expect("add");
            let inside_rep = dec.finish(1.0).expect("finish");
            for energy in [0.97, 0.999, 1.0] {
                let report = memory.merge(&inside_rep, energy).expect("merge");
                assert_eq!(report.added, 0, "energy {energy}: {report:?}");
                assert_eq!(memory.rank(), k);
            }
        }
    }

    #[test]
    fn projected_update_leaves_old_inputs_unchanged() {
        let d = 25;
        let mut memory = ProjectionMemory::new(d).expect("new");
        let rep = representation(
            &random_orthonormal(d, 5, 9),
            &[5.0, 4.0, 3.0, 2.0, 1.0],
            80,
            0.0,
            10,
        );
        memory.merge(&rep, 0.999).expect("merge");
        let p = memory.basis().to_owned();
        let g = random_matrix(7, d, 11);
        let projected = memory.project_update(g.view()).expect("project");
        assert!(max_abs(&projected.dot(&p)) < 1e-5);
        let w = random_matrix(7, d, 12);
        let x = p.dot(&random_matrix(p.ncols(), 4, 13));
        let lr = 0.5f32;
        let moved = (&w - &(&projected * lr)).dot(&x);
        assert!(max_abs(&(&moved - &w.dot(&x))) < 1e-5);
        // Directions orthogonal to P are untouched.
        let unchanged = ProjectionMemory::new(d)
            .expect("new")
            .project_update(g.view())
            .expect("project");
        assert_eq!(unchanged, g);
        assert!(memory
            .project_update(random_matrix(7, d + 1, 14).view())
            .is_err());
    }

    #[test]
    fn flat_round_trip_and_validation() {
        let d = 12;
        let mut memory = ProjectionMemory::new(d).expect("new");
        let rep = representation(
            &random_orthonormal(d, 4, 15),
            &[4.0, 3.0, 2.0, 1.0],
            40,
            0.0,
            16,
        );
        memory.merge(&rep, 0.999).expect("merge");
        let (flat, shape) = memory.to_flat();
        assert_eq!(shape, [d, memory.rank()]);
        let loaded = ProjectionMemory::from_flat(flat.clone(), shape).expect("load");
        assert_eq!(loaded, memory);
        assert!(ProjectionMemory::from_flat(flat.clone(), [d, shape[1] + 1]).is_err());
        assert!(ProjectionMemory::from_flat(vec![1.0; 6], [2, 3]).is_err());
        assert!(ProjectionMemory::from_flat(vec![1.0; 4], [2, 2]).is_err());
        assert!(ProjectionMemory::from_flat(Vec::new(), [0, 0]).is_err());
        let empty = ProjectionMemory::from_flat(Vec::new(), [d, 0]).expect("empty");
        assert_eq!(empty.rank(), 0);
    }

    #[test]
    fn invalid_merges_are_rejected() {
        let mut memory = ProjectionMemory::new(8).expect("new");
        assert!(ProjectionMemory::new(0).is_err());
        let rep = representation(&random_orthonormal(9, 2, 17), &[2.0, 1.0], 20, 0.0, 18);
        assert!(memory.merge(&rep, 0.9).is_err(), "dimension mismatch");
        let rep = representation(&random_orthonormal(8, 2, 19), &[2.0, 1.0], 20, 0.0, 20);
        assert!(memory.merge(&rep, 0.0).is_err());
        assert!(memory.merge(&rep, 1.01).is_err());
        assert_eq!(memory.rank(), 0);
    }

    #[test]
    fn threshold_schedule() {
        assert_eq!(merge_threshold(2, 0.97, 0.003), 0.97);
        assert!((merge_threshold(3, 0.97, 0.003) - 0.973).abs() < 1e-12);
        assert!((merge_threshold(5, 0.97, 0.003) - 0.979).abs() < 1e-12);
        assert_eq!(merge_threshold(1, 0.97, 0.003), 0.97);
        assert_eq!(merge_threshold(100, 0.97, 0.003), MAX_MERGE_THRESHOLD);
        assert!(merge_threshold(1000, 0.97, 0.003) < 1.0);
    }
}
