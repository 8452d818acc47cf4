//! Seeded procedural noise: lattice value noise, fractal sums of it, and cellular
//! (Worley) distances. Pure functions of (position, seed), so renders are reproducible.

/// A 64-bit mix of a lattice point and a seed (splitmix-style finaliser).
fn hash(x: i64, y: i64, seed: u64) -> u64 {
    let mut h = seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^ (h >> 31)
}

/// A uniform value in [0, 1) for a lattice point.
fn lattice(x: i64, y: i64, seed: u64) -> f32 {
    (hash(x, y, seed) >> 40) as f32 / (1u64 << 24) as f32
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

/// Smoothly interpolated value noise in [0, 1) at (x, y), lattice spacing 1.
pub fn value(x: f32, y: f32, seed: u64) -> f32 {
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (smooth(x - x0), smooth(y - y0));
    let (ix, iy) = (x0 as i64, y0 as i64);
    let a = lattice(ix, iy, seed);
    let b = lattice(ix + 1, iy, seed);
    let c = lattice(ix, iy + 1, seed);
    let d = lattice(ix + 1, iy + 1, seed);
    let top = a + (b - a) * tx;
    let bottom = c + (d - c) * tx;
    top + (bottom - top) * ty
}

/// Fractal sum of `octaves` value-noise layers (each twice the frequency, half the
/// amplitude), normalised to [0, 1).
pub fn fbm(x: f32, y: f32, octaves: u32, seed: u64) -> f32 {
    let (mut sum, mut amplitude, mut frequency, mut total) = (0.0, 1.0, 1.0, 0.0);
    for octave in 0..octaves {
        sum += amplitude
            * value(
                x * frequency,
                y * frequency,
                seed.wrapping_add(octave as u64 * 7919),
            );
        total += amplitude;
        amplitude *= 0.5;
        frequency *= 2.0;
    }
    sum / total
}

/// Distances to the nearest and second-nearest feature point of a jittered grid
/// (one point per unit cell): the basis of cell-like textures such as leather.
pub fn cellular(x: f32, y: f32, seed: u64) -> (f32, f32) {
    let (cx, cy) = (x.floor() as i64, y.floor() as i64);
    let (mut first, mut second) = (f32::MAX, f32::MAX);
    for dy in -1..=1 {
        for dx in -1..=1 {
            let (gx, gy) = (cx + dx, cy + dy);
            let px = gx as f32 + lattice(gx, gy, seed);
            let py = gy as f32 + lattice(gx, gy, seed ^ 0x5555);
            let d = ((px - x).powi(2) + (py - y).powi(2)).sqrt();
            if d < first {
                second = first;
                first = d;
            } else if d < second {
                second = d;
            }
        }
    }
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_deterministic_bounded_and_seed_dependent() {
        let mut differs = false;
        for i in 0..500 {
            let (x, y) = (i as f32 * 0.37, i as f32 * 0.11);
            let v = fbm(x, y, 4, 9);
            assert!((0.0..1.0).contains(&v));
            assert_eq!(v, fbm(x, y, 4, 9));
            differs |= (v - fbm(x, y, 4, 10)).abs() > 1e-3;
        }
        assert!(differs);
    }

    #[test]
    fn value_noise_is_continuous() {
        for i in 0..200 {
            let x = i as f32 * 0.05;
            assert!((value(x, 0.3, 1) - value(x + 1e-3, 0.3, 1)).abs() < 0.01);
        }
    }

    #[test]
    fn cellular_distances_are_ordered() {
        for i in 0..200 {
            let (a, b) = cellular(i as f32 * 0.13, i as f32 * 0.29, 3);
            assert!(a <= b && a < 1.5);
        }
    }
}
