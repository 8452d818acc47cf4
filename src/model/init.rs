//! Seeded initialisation that does not depend on libtorch's global generator: every
//! randomly initialised variable is redrawn from its own stream (seed + variable name),
//! uniform in +-1/sqrt(fan_in) like PyTorch's default for linear and convolution layers.
//! Constant variables (zero-initialised layers, normalisation scales and shifts) keep
//! their values. The same seed therefore gives the same model on any thread, in any
//! order of construction.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::nn::VarStore;
use tch::{Kind, Tensor};

fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in name.bytes() {
        h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(h)
}

fn is_constant(tensor: &Tensor) -> bool {
    tensor.numel() <= 1 || (tensor.max() - tensor.min()).double_value(&[]) == 0.0
}

/// Redraws every non-constant variable of `vs` whose name starts with one of
/// `prefixes` from `seed`.
pub fn reinitialise(vs: &VarStore, seed: u64, prefixes: &[&str]) {
    let variables = vs.variables();
    tch::no_grad(|| {
        for (name, variable) in &variables {
            if is_constant(variable) || !prefixes.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let fan_in = if variable.dim() >= 2 {
                variable.numel() as i64 / variable.size()[0]
            } else {
                // A bias takes the fan-in of the weight beside it.
                name.strip_suffix("bias")
                    .and_then(|stem| variables.get(&format!("{stem}weight")))
                    .filter(|w| w.dim() >= 2)
                    .map_or(variable.numel() as i64, |w| w.numel() as i64 / w.size()[0])
            };
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let mut rng = stream(seed, name);
            let values: Vec<f32> = (0..variable.numel())
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let fresh = Tensor::from_slice(&values)
                .view(variable.size().as_slice())
                .to_kind(Kind::Float);
            let mut target = variable.shallow_clone();
            target.copy_(&fresh.to_device(variable.device()));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn build(seed: u64) -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "a", 16, 8, Default::default());
        let _ = nn::layer_norm(vs.root() / "norm", vec![8], Default::default());
        let zero = nn::LinearConfig {
            ws_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let _ = nn::linear(vs.root() / "zero", 8, 8, zero);
        reinitialise(&vs, seed, &[""]);
        vs
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_constants_are_kept() {
        let (a, b, c) = (build(1), build(1), build(2));
        let (va, vb, vc) = (a.variables(), b.variables(), c.variables());
        for name in ["a.weight", "a.bias"] {
            assert!(va[name].equal(&vb[name]), "{name}");
            assert!(!va[name].equal(&vc[name]), "{name}");
        }
        assert!(va["a.weight"].abs().max().double_value(&[]) <= 0.25 + 1e-6);
        assert_eq!(va["norm.weight"].min().double_value(&[]), 1.0);
        assert_eq!(va["zero.weight"].abs().max().double_value(&[]), 0.0);
    }
}
