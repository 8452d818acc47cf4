//! Binary pixel masks: ground truth of defects, and the changed region of a perturbation.

/// A binary mask, row-major, one byte per pixel holding 0 or 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Mask {
    /// An all-zero mask.
    pub fn zeros(width: usize, height: usize) -> Self {
        Mask {
            width,
            height,
            data: vec![0; width * height],
        }
    }

    /// A mask from any bytes: non-zero becomes 1. `None` when the length is not
    /// `width * height`.
    pub fn from_bytes(width: usize, height: usize, bytes: &[u8]) -> Option<Self> {
        (bytes.len() == width * height).then(|| Mask {
            width,
            height,
            data: bytes.iter().map(|&b| u8::from(b != 0)).collect(),
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Whether (x, y) is set.
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x] != 0
    }

    /// Sets or clears (x, y).
    pub fn set(&mut self, x: usize, y: usize, on: bool) {
        self.data[y * self.width + x] = u8::from(on);
    }

    /// The 0/1 bytes, row-major.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Number of set pixels.
    pub fn count(&self) -> usize {
        self.data.iter().map(|&b| b as usize).sum()
    }
}
