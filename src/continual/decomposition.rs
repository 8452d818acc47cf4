//! Host-side decompositions of a layer's representation matrix R (d x Λ), fed block by
//! block (method.md 5.2): the full thin SVD (reference), the iterative SVD that keeps
//! `U * S` between blocks, and the exact Gram-matrix eigen-decomposition.
//!
//! Everything stays in host memory. The Gram matrix is accumulated and eigen-decomposed
//! with libtorch on CPU tensors (its multithreaded f64 matrix product and
//! divide-and-conquer symmetric eigensolver); the SVDs use ndarray-linalg.

use ndarray::{s, Array1, Array2, ArrayView2, ShapeBuilder};
use ndarray_linalg::{JobSvd, Lapack, SVDDCInto, SVDInto, Scalar};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Columns of a block converted to f64 at once by the Gram accumulator; bounds its
/// working copy to `d * GRAM_CHUNK * 8` bytes whatever the block width.
const GRAM_CHUNK: usize = 4096;

/// A decomposition's result: orthonormal left singular vectors and their squared
/// singular values, truncated by the energy rule.
#[derive(Debug, Clone)]
pub struct Basis {
    /// Left singular vectors, d x r, orthonormal columns, by decreasing singular value.
    pub u: Array2<f32>,
    /// Squared singular values of the kept columns (length r, decreasing).
    pub s2: Array1<f64>,
    /// Exact squared Frobenius norm of everything fed in (||R||_F^2), for reporting how
    /// much of it the kept columns capture.
    pub total_energy: f64,
}

impl Basis {
    /// Number of kept columns r.
    pub fn rank(&self) -> usize {
        self.u.ncols()
    }

    /// Row dimension d.
    pub fn dim(&self) -> usize {
        self.u.nrows()
    }
}

/// What a [`Decomposer`] holds between blocks.
#[derive(Debug)]
enum State {
    /// Every column so far, column-major d x columns.
    Full(Vec<f32>),
    /// Running truncated SVD: B = u * diag(s).
    Isvd {
        u: Array2<f32>,
        s: Array1<f32>,
        energy_block: f64,
    },
    /// Running Gram matrix sum X X^T (d x d, f64, host memory).
    Gram(Tensor),
}

/// Block-wise decomposition of a representation matrix R (d x Λ) into its leading left
/// singular vectors. Three strategies share this interface:
/// * [`Decomposer::full`]: stores every column, one thin SVD at the end (memory d·Λ);
/// * [`Decomposer::isvd`]: streaming truncated SVD keeping B = U·S (memory d·(k+m));
/// * [`Decomposer::gram`]: accumulates G = Σ X Xᵀ in f64, eigen-decomposes it at the
///   end (memory d², exact).
#[derive(Debug)]
pub struct Decomposer {
    d: usize,
    columns: usize,
    total_energy: f64,
    peak_bytes: usize,
    state: State,
}

impl Decomposer {
    /// Full thin SVD of all columns at the end (reference).
    pub fn full(d: usize) -> Result<Self> {
        Self::with_state(d, State::Full(Vec::new()))
    }

    /// Iterative SVD; after each block keeps the fewest directions holding
    /// `energy_block` (in (0, 1]) of the current spectrum, scaled by their singular
    /// values. Pass the final energy unless a different per-block threshold is wanted.
    pub fn isvd(d: usize, energy_block: f64) -> Result<Self> {
        check_energy(energy_block)?;
        Self::with_state(
            d,
            State::Isvd {
                u: Array2::zeros((d, 0).f()),
                s: Array1::zeros(0),
                energy_block,
            },
        )
    }

    /// Exact Gram-matrix accumulation in f64 (d x d), eigen-decomposed at the end.
    pub fn gram(d: usize) -> Result<Self> {
        if d == 0 {
            return Err(Error::invalid("decomposer dimension d must be at least 1"));
        }
        let g = Tensor::zeros([d as i64, d as i64], (Kind::Double, Device::Cpu));
        let mut decomposer = Self::with_state(d, State::Gram(g))?;
        decomposer.peak_bytes = d * d * 8;
        Ok(decomposer)
    }

    fn with_state(d: usize, state: State) -> Result<Self> {
        if d == 0 {
            return Err(Error::invalid("decomposer dimension d must be at least 1"));
        }
        Ok(Self {
            d,
            columns: 0,
            total_energy: 0.0,
            peak_bytes: 0,
            state,
        })
    }

    /// Row dimension d every block must have.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Number of columns fed so far.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Largest number of bytes of matrix data held at once: stored columns (full),
    /// the stacked [B | X_j] (iSVD), or the Gram matrix plus the f64 copy of the block
    /// chunk being added (Gram). LAPACK workspace and factor outputs are not counted.
    pub fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// Feeds a block of columns (d x m, any m). A block with no columns is ignored.
    pub fn add_block(&mut self, block: ArrayView2<f32>) -> Result<()> {
        let d = self.d;
        if block.nrows() != d {
            return Err(Error::invalid(format!(
                "block has {} rows, the decomposer expects d = {d}",
                block.nrows()
            )));
        }
        let m = block.ncols();
        if m == 0 {
            return Ok(());
        }
        if !block.iter().all(|v| v.is_finite()) {
            return Err(Error::invalid("block holds non-finite values"));
        }
        self.total_energy += block.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        self.columns += m;
        let held = match &mut self.state {
            State::Full(data) => {
                // block.t() in standard order walks the block column by column.
                data.extend(block.t().iter());
                data.len() * 4
            }
            State::Isvd { u, s, energy_block } => {
                let k = u.ncols();
                let mut stacked = Array2::<f32>::zeros((d, k + m).f());
                stacked.slice_mut(s![.., ..k]).assign(u);
                for (mut column, &sigma) in stacked.columns_mut().into_iter().zip(s.iter()) {
                    column *= sigma;
                }
                stacked.slice_mut(s![.., k..]).assign(&block);
                let held = stacked.len() * 4;
                let (left, sigma) = left_svd(stacked)?;
                let r = energy_rank(&squares(&sigma), *energy_block);
                *u = left.slice(s![.., ..r]).to_owned();
                *s = sigma.slice(s![..r]).to_owned();
                held
            }
            State::Gram(g) => {
                let mut held = 0;
                for start in (0..m).step_by(GRAM_CHUNK) {
                    let end = (start + GRAM_CHUNK).min(m);
                    let chunk = block.slice(s![.., start..end]);
                    let values: Vec<f32> = chunk.iter().copied().collect();
                    let x = Tensor::from_slice(&values)
                        .view([d as i64, (end - start) as i64])
                        .to_kind(Kind::Double);
                    held = held.max(d * d * 8 + x.numel() * 8);
                    let _ = g
                        .f_addmm_(&x, &x.tr())
                        .map_err(|e| Error::Numerical(format!("Gram accumulation: {e}")))?;
                }
                held
            }
        };
        self.peak_bytes = self.peak_bytes.max(held);
        Ok(())
    }

    /// Finishes the decomposition and keeps the fewest r >= 1 leading directions with
    /// Σ S[:r]² >= `energy` · Σ S² (`energy` in (0, 1]). Errors if no column was fed.
    pub fn finish(self, energy: f64) -> Result<Basis> {
        check_energy(energy)?;
        if self.columns == 0 {
            return Err(Error::invalid(
                "nothing to decompose: no block with columns was added",
            ));
        }
        let d = self.d;
        let (u, s2) = match self.state {
            State::Full(data) => {
                let a = Array2::from_shape_vec((d, self.columns).f(), data)
                    .map_err(|e| Error::invalid(format!("stored columns: {e}")))?;
                let (u, sigma) = left_svd(a)?;
                (u, squares(&sigma))
            }
            State::Isvd { u, s, .. } => (u, squares(&s)),
            State::Gram(g) => {
                let failed = |e: tch::TchError| {
                    Error::Numerical(format!("Gram eigen-decomposition ({d}x{d}): {e}"))
                };
                let (values, vectors) = g.f_linalg_eigh("L").map_err(failed)?;
                // eigh sorts ascending; flip to descending and clamp rounding below 0.
                let values = values.flip([0]).clamp_min(0.0);
                let vectors = vectors.flip([1]).to_kind(Kind::Float).contiguous();
                let s2 = Vec::<f64>::try_from(&values).map_err(failed)?;
                let u = Vec::<f32>::try_from(vectors.view([-1])).map_err(failed)?;
                let u = Array2::from_shape_vec((d, d), u)
                    .map_err(|e| Error::Numerical(format!("eigenvector shape: {e}")))?;
                (u, s2)
            }
        };
        let r = energy_rank(&s2, energy);
        Ok(Basis {
            u: u.slice(s![.., ..r]).to_owned(),
            s2: Array1::from(s2[..r].to_vec()),
            total_energy: self.total_energy,
        })
    }
}

/// Fewest r >= 1 leading entries of `s2` (squared singular values, decreasing) with
/// Σ s2[:r] >= `energy` · Σ s2; 0 only when `s2` is empty. Never more than `s2.len()`.
pub fn energy_rank(s2: &[f64], energy: f64) -> usize {
    let total: f64 = s2.iter().sum();
    let target = energy * total;
    let mut sum = 0.0;
    for (i, v) in s2.iter().enumerate() {
        sum += v;
        if sum >= target {
            return i + 1;
        }
    }
    s2.len()
}

/// Squares of f32 singular values, in f64.
fn squares(sigma: &Array1<f32>) -> Vec<f64> {
    sigma.iter().map(|&v| f64::from(v).powi(2)).collect()
}

/// Rejects an energy fraction outside (0, 1].
pub(crate) fn check_energy(energy: f64) -> Result<()> {
    if energy > 0.0 && energy <= 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "energy threshold must be in (0, 1], got {energy}"
        )))
    }
}

/// Thin left SVD of `a` (d x n): U (d x min(d, n)) and the singular values, decreasing.
/// Tall matrices use divide and conquer; wide ones skip the n-wide right factor.
pub(crate) fn left_svd<A: Scalar + Lapack>(a: Array2<A>) -> Result<(Array2<A>, Array1<A::Real>)> {
    let (d, n) = a.dim();
    let failed = |e| Error::Numerical(format!("SVD of a {d}x{n} matrix: {e}"));
    let (u, s) = if n <= d {
        let (u, s, _) = a.svddc_into(JobSvd::Some).map_err(failed)?;
        (u, s)
    } else {
        let (u, s, _) = a.svd_into(true, false).map_err(failed)?;
        (u, s)
    };
    let u = u.ok_or_else(|| Error::Numerical("SVD returned no left factor".into()))?;
    Ok((u, s))
}

/// Principal angles (degrees, ascending) between span(a) and span(b), both d x k with
/// orthonormal columns; min(k_a, k_b) of them. Cosines come from the SVD of AᵀB; angles
/// below 45° are taken from the sines (SVD of B - A AᵀB) instead, which stay accurate
/// near 0 where the arccosine does not.
pub fn principal_angles(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Result<Vec<f64>> {
    if a.nrows() != b.nrows() {
        return Err(Error::invalid(format!(
            "principal angles need equal row counts, got {} and {}",
            a.nrows(),
            b.nrows()
        )));
    }
    let (a, b) = (a.mapv(f64::from), b.mapv(f64::from));
    // Let b be the one with fewer columns: its residual then has exactly k values.
    let (a, b) = if a.ncols() >= b.ncols() {
        (a, b)
    } else {
        (b, a)
    };
    let k = b.ncols();
    if k == 0 {
        return Ok(Vec::new());
    }
    let cross = a.t().dot(&b);
    let residual = &b - &a.dot(&cross);
    let (_, cosines) = left_svd(cross)?;
    let (_, sines) = left_svd(residual)?;
    Ok((0..k)
        .map(|i| {
            let cos = cosines[i].clamp(0.0, 1.0);
            // Sines are decreasing, so the i-th smallest angle pairs with sines[k-1-i].
            let sin = sines[k - 1 - i].clamp(0.0, 1.0);
            let angle = if cos * cos >= 0.5 {
                sin.asin()
            } else {
                cos.acos()
            };
            angle.to_degrees()
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ndarray::{concatenate, Axis};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Uniform(-1, 1) matrix.
    pub(crate) fn random_matrix(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((rows, cols), || rng.random_range(-1.0f32..1.0))
    }

    /// Random d x k matrix with orthonormal columns.
    pub(crate) fn random_orthonormal(d: usize, k: usize, seed: u64) -> Array2<f32> {
        let (u, _) = left_svd(random_matrix(d, k, seed)).expect("svd");
        u
    }

    /// U0 diag(sv) Vᵀ + noise·uniform, d x n.
    fn low_rank_plus_noise(d: usize, n: usize, sv: &[f32], noise: f32, seed: u64) -> Array2<f32> {
        let u0 = random_orthonormal(d, sv.len(), seed);
        let v = random_orthonormal(n, sv.len(), seed + 1);
        let scaled = &u0 * &Array1::from(sv.to_vec()).insert_axis(Axis(0));
        scaled.dot(&v.t()) + random_matrix(d, n, seed + 2) * noise
    }

    fn run(mut dec: Decomposer, data: &Array2<f32>, block: usize, energy: f64) -> (Basis, usize) {
        for start in (0..data.ncols()).step_by(block) {
            let end = (start + block).min(data.ncols());
            dec.add_block(data.slice(s![.., start..end])).expect("add");
        }
        let peak = dec.peak_bytes();
        (dec.finish(energy).expect("finish"), peak)
    }

    fn max_angle(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
        principal_angles(a.view(), b.view())
            .expect("angles")
            .into_iter()
            .fold(0.0, f64::max)
    }

    fn assert_orthonormal(u: &Array2<f32>, tol: f32) {
        let gram = u.t().dot(u);
        let eye = Array2::<f32>::eye(u.ncols());
        let err = (&gram - &eye).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(err < tol, "orthonormality error {err}");
    }

    fn check_agreement(d: usize, n: usize, block: usize) {
        let sv = [60.0, 45.0, 30.0, 20.0, 12.0];
        let data = low_rank_plus_noise(d, n, &sv, 0.01, 7);
        let energy = 0.999;
        let (full, _) = run(Decomposer::full(d).expect("full"), &data, block, energy);
        let (gram, _) = run(Decomposer::gram(d).expect("gram"), &data, block, energy);
        let (isvd, _) = run(
            Decomposer::isvd(d, energy).expect("isvd"),
            &data,
            block,
            energy,
        );
        assert_eq!(full.rank(), sv.len());
        assert_eq!(gram.rank(), sv.len());
        assert_eq!(isvd.rank(), sv.len());
        for basis in [&full, &gram, &isvd] {
            assert_orthonormal(&basis.u, 1e-4);
            for (got, want) in basis.s2.iter().zip(full.s2.iter()) {
                assert!((got - want).abs() <= 1e-3 * want, "s2 {got} vs {want}");
            }
        }
        let full_gram = max_angle(&full.u, &gram.u);
        let full_isvd = max_angle(&full.u, &isvd.u);
        assert!(full_gram < 0.01, "full vs gram: {full_gram} degrees");
        assert!(full_isvd < 0.5, "full vs isvd: {full_isvd} degrees");
        assert!((full.total_energy - gram.total_energy).abs() < 1e-9 * full.total_energy);
    }

    #[test]
    fn decomposers_agree_with_narrow_blocks() {
        check_agreement(64, 640, 40);
    }

    #[test]
    fn decomposers_agree_with_wide_blocks() {
        check_agreement(48, 900, 150);
    }

    #[test]
    fn unscaled_isvd_drops_early_directions_that_u_times_s_keeps() {
        let d = 24;
        let e1 = Array2::from_shape_fn((d, 1), |(i, _)| if i == 0 { 1.0f32 } else { 0.0 });
        // Block 0: one strong direction e1. Later blocks: moderate energy in e2..e6 only.
        let first = &e1.dot(&random_matrix(1, 10, 3)) * 20.0 + random_matrix(d, 10, 4) * 1e-3;
        let mut blocks = vec![first];
        for j in 0..12 {
            let mut later = random_matrix(d, 10, 100 + j) * 1e-3;
            let signal = random_matrix(5, 10, 200 + j) * 5.0;
            later.slice_mut(s![1..6, ..]).assign(&signal);
            blocks.push(later);
        }
        let energy = 0.99;
        let mut scaled = Decomposer::isvd(d, energy).expect("isvd");
        let mut full = Decomposer::full(d).expect("full");
        for block in &blocks {
            scaled.add_block(block.view()).expect("add");
            full.add_block(block.view()).expect("add");
        }
        let scaled = scaled.finish(energy).expect("finish");
        let full = full.finish(energy).expect("finish");

        // The reference code's variant: B = U[:, :r] without the singular values.
        let mut unscaled = Array2::<f32>::zeros((d, 0));
        for block in &blocks {
            let stacked = concatenate![Axis(1), unscaled, *block];
            let (u, s) = left_svd(stacked).expect("svd");
            unscaled = u
                .slice(s![.., ..energy_rank(&squares(&s), energy)])
                .to_owned();
        }

        let captured = |u: &Array2<f32>| u.t().dot(&e1).iter().map(|v| v * v).sum::<f32>();
        assert!(captured(&full.u) > 0.999, "full SVD keeps e1");
        assert!(
            captured(&scaled.u) > 0.999,
            "U*S keeps e1: {}",
            captured(&scaled.u)
        );
        assert!(
            captured(&unscaled) < 0.01,
            "unscaled U drops e1: {}",
            captured(&unscaled)
        );
        assert!(max_angle(&full.u, &scaled.u) < 0.5);
    }

    #[test]
    fn energy_rule_is_exact() {
        // Squared singular values 36, 16, 4, 4, 4: total 64, exact binary fractions.
        let s2 = [36.0, 16.0, 4.0, 4.0, 4.0];
        assert_eq!(energy_rank(&s2, 0.5625), 1);
        assert_eq!(energy_rank(&s2, 0.5625 + 1e-12), 2);
        assert_eq!(energy_rank(&s2, 0.8125), 2);
        assert_eq!(energy_rank(&s2, 0.875), 3);
        assert_eq!(energy_rank(&s2, 0.9375), 4);
        assert_eq!(energy_rank(&s2, 1.0), 5);
        assert_eq!(energy_rank(&s2, 1e-9), 1);
        assert_eq!(energy_rank(&[0.0, 0.0], 0.9), 1);

        let diag = Array2::from_diag(&Array1::from(vec![6.0f32, 4.0, 2.0, 2.0, 2.0]));
        for (energy, want) in [(0.5, 1), (0.6, 2), (0.85, 3), (0.9, 4), (1.0, 5)] {
            for dec in [
                Decomposer::full(5),
                Decomposer::gram(5),
                Decomposer::isvd(5, 1.0),
            ] {
                let (basis, _) = run(dec.expect("new"), &diag, 2, energy);
                assert_eq!(basis.rank(), want, "energy {energy}");
                assert!((basis.s2[0] - 36.0).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn peak_memory_accounting() {
        let (d, m, blocks) = (32, 20, 25);
        let data = low_rank_plus_noise(d, m * blocks, &[10.0, 5.0, 2.0], 0.01, 11);
        let (_, gram) = run(Decomposer::gram(d).expect("gram"), &data, m, 0.99);
        assert_eq!(gram, d * d * 8 + d * m * 8);
        let (_, full) = run(Decomposer::full(d).expect("full"), &data, m, 0.99);
        assert_eq!(full, d * m * blocks * 4);
        let (basis, isvd) = run(Decomposer::isvd(d, 0.99).expect("isvd"), &data, m, 0.99);
        assert!(isvd <= d * (d + m) * 4);
        assert!(isvd < full, "isvd {isvd} vs full {full}");
        assert!(basis.rank() >= 3);
    }

    #[test]
    fn invalid_input_is_rejected() {
        assert!(Decomposer::full(0).is_err());
        assert!(Decomposer::isvd(4, 0.0).is_err());
        assert!(Decomposer::isvd(4, 1.5).is_err());
        for dec in [
            Decomposer::full(4),
            Decomposer::gram(4),
            Decomposer::isvd(4, 0.9),
        ] {
            let mut dec = dec.expect("new");
            assert!(dec.add_block(Array2::zeros((3, 2)).view()).is_err());
            let mut nan = Array2::<f32>::zeros((4, 2));
            nan[[1, 1]] = f32::NAN;
            assert!(dec.add_block(nan.view()).is_err());
            dec.add_block(Array2::zeros((4, 0)).view())
                .expect("empty block");
            assert!(dec.finish(0.9).is_err(), "no columns must be an error");
        }
        let mut dec = Decomposer::gram(4).expect("gram");
        dec.add_block(random_matrix(4, 3, 1).view()).expect("add");
        assert!(dec.finish(f64::NAN).is_err());
    }

    #[test]
    fn principal_angles_of_known_subspaces() {
        let d = 6;
        let e = Array2::<f32>::eye(d);
        let a = e.slice(s![.., ..2]).to_owned();
        // b spans e0 and (e1 + e2)/sqrt(2): angles 0 and 45 degrees.
        let mut b = Array2::<f32>::zeros((d, 2));
        b[[0, 0]] = 1.0;
        b[[1, 1]] = std::f32::consts::FRAC_1_SQRT_2;
        b[[2, 1]] = std::f32::consts::FRAC_1_SQRT_2;
        let angles = principal_angles(a.view(), b.view()).expect("angles");
        assert!(
            angles[0].abs() < 1e-4 && (angles[1] - 45.0).abs() < 1e-3,
            "{angles:?}"
        );
        let c = e.slice(s![.., 2..5]).to_owned();
        let angles = principal_angles(a.view(), c.view()).expect("angles");
        assert_eq!(angles.len(), 2);
        assert!(angles.iter().all(|x| (x - 90.0).abs() < 1e-4), "{angles:?}");
        assert!(principal_angles(a.view(), Array2::zeros((5, 1)).view()).is_err());
    }
}
