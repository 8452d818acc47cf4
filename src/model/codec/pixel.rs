//! The `pixel` codec: a parameter-free, exactly invertible space-to-depth transform.
//! A 3 x H x W image becomes (3 f^2) x (H/f) x (W/f); nothing is learned or lost.

use super::LatentCodec;
use tch::Tensor;

/// Pixel unshuffle by a factor `f` (encode) and pixel shuffle (decode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelCodec {
    factor: i64,
}

impl PixelCodec {
    /// A codec with block side `factor` (at least 1).
    pub fn new(factor: i64) -> Self {
        PixelCodec {
            factor: factor.max(1),
        }
    }
}

impl LatentCodec for PixelCodec {
    fn latent_channels(&self) -> i64 {
        3 * self.factor * self.factor
    }

    fn stride(&self) -> i64 {
        self.factor
    }

    fn encode(&self, images: &Tensor) -> Tensor {
        images.pixel_unshuffle(self.factor)
    }

    fn decode(&self, latents: &Tensor) -> Option<Tensor> {
        Some(latents.pixel_shuffle(self.factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn encode_then_decode_is_exact_and_shapes_follow_the_factor() {
        tch::manual_seed(0);
        let codec = PixelCodec::new(4);
        let images = Tensor::randn([2, 3, 32, 48], (Kind::Float, Device::Cpu));
        let latents = codec.encode(&images);
        assert_eq!(latents.size(), [2, 48, 8, 12]);
        assert_eq!(codec.latent_channels(), 48);
        let back = codec.decode(&latents).unwrap();
        assert!(back.equal(&images), "pixel codec round trip is not exact");
        // One image pixel lands in exactly one latent element.
        let one = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        let _ = one.get(0).get(1).get(5).get(6).fill_(1.0);
        let latent = PixelCodec::new(4).encode(&one);
        assert_eq!(latent.sum(Kind::Float).double_value(&[]), 1.0);
        assert_eq!(
            latent
                .get(0)
                .get(16 + 4 + 2)
                .get(1)
                .get(1)
                .double_value(&[]),
            1.0
        );
    }
}
