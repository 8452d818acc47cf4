//! Convolution and linear layers that can report their inputs. Gradient projection
//! needs, for every projected layer, the space its inputs span while the model runs;
//! these wrappers hand each input, laid out as the columns the weight multiplies
//! (im2col for convolutions, ordered like `weight.view(out, -1)`), to a recorder that is
//! active on the current thread only while representations are being collected.

use std::cell::RefCell;
use tch::nn::{self, Module};
use tch::Tensor;

type Recorder = Box<dyn FnMut(&str, Tensor)>;

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `body` with `recorder(layer weight name, columns d x m)` receiving the inputs of
/// every recording layer the body evaluates on this thread.
pub fn with_recorder<R>(
    recorder: impl FnMut(&str, Tensor) + 'static,
    body: impl FnOnce() -> R,
) -> R {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            RECORDER.with(|slot| *slot.borrow_mut() = None);
        }
    }
    RECORDER.with(|slot| *slot.borrow_mut() = Some(Box::new(recorder)));
    let _reset = Reset;
    body()
}

fn record(name: &str, columns: impl FnOnce() -> Tensor) {
    RECORDER.with(|slot| {
        if let Some(recorder) = slot.borrow_mut().as_mut() {
            recorder(name, columns());
        }
    });
}

/// A 2-D convolution that reports its unfolded input.
#[derive(Debug)]
pub struct Conv2d {
    conv: nn::Conv2D,
    name: String,
    kernel: i64,
    config: nn::ConvConfig,
}

/// Creates a [`Conv2d`] under `vs` (variables `weight`, `bias`).
pub fn conv2d(
    vs: nn::Path,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    config: nn::ConvConfig,
) -> Conv2d {
    let name = vs.path("weight");
    Conv2d {
        conv: nn::conv2d(vs, in_channels, out_channels, kernel, config),
        name,
        kernel,
        config,
    }
}

impl Module for Conv2d {
    fn forward(&self, xs: &Tensor) -> Tensor {
        record(&self.name, || {
            let c = &self.config;
            let k = [self.kernel, self.kernel];
            let columns = xs.im2col(
                k,
                [c.dilation, c.dilation],
                [c.padding, c.padding],
                [c.stride, c.stride],
            );
            let d = columns.size()[1];
            columns.transpose(0, 1).reshape([d, -1])
        });
        self.conv.forward(xs)
    }
}

/// A linear layer that reports its input rows as columns.
#[derive(Debug)]
pub struct Linear {
    linear: nn::Linear,
    name: String,
}

/// Creates a [`Linear`] under `vs` (variables `weight`, `bias`).
pub fn linear(vs: nn::Path, in_dim: i64, out_dim: i64, config: nn::LinearConfig) -> Linear {
    let name = vs.path("weight");
    Linear {
        linear: nn::linear(vs, in_dim, out_dim, config),
        name,
    }
}

impl Linear {
    /// The weight matrix (out x in).
    pub fn weight(&self) -> &Tensor {
        &self.linear.ws
    }
}

impl Module for Linear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        record(&self.name, || {
            let d = xs.size().last().copied().unwrap_or(1);
            xs.reshape([-1, d]).transpose(0, 1)
        });
        self.linear.forward(xs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use tch::{Device, Kind};

    #[test]
    fn recorded_columns_reproduce_the_layer_output() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = nn::ConvConfig {
            stride: 2,
            padding: 1,
            bias: false,
            ..Default::default()
        };
        let conv = conv2d(vs.root() / "c", 3, 5, 3, cfg);
        let lin = linear(
            vs.root() / "l",
            5,
            4,
            nn::LinearConfig {
                bias: false,
                ..Default::default()
            },
        );
        let x = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let seen = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&seen);
        let (y, z) = with_recorder(
            move |name, columns| sink.borrow_mut().push((name.to_string(), columns)),
            || {
                let y = conv.forward(&x);
                let z = lin.forward(&y.permute([0, 2, 3, 1]));
                (y, z)
            },
        );
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "c.weight");
        let weights = vs.variables();
        // W (out x d) times the recorded columns (d x m) equals the layer's output.
        let w = weights["c.weight"].view([5, -1]);
        let product = w.matmul(&seen[0].1);
        let expected = y.permute([1, 0, 2, 3]).reshape([5, -1]);
        assert!((product - expected).abs().max().double_value(&[]) < 1e-4);
        let product = weights["l.weight"].matmul(&seen[1].1);
        let expected = z.reshape([-1, 4]).transpose(0, 1);
        assert!((product - expected).abs().max().double_value(&[]) < 1e-4);
        // Outside `with_recorder` nothing is recorded.
        let _ = conv.forward(&x);
        assert_eq!(seen.len(), 2);
    }
}
