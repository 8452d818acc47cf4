//! The library's internal image: RGB, 32-bit float in [0, 1], planar (channel-major).

/// An RGB image with float samples in [0, 1], stored plane by plane (R, then G, then B),
/// each plane row-major without padding.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl RgbImage {
    /// Wraps planar RGB samples; `data.len()` must be `3 * width * height`.
    pub fn from_planar(width: usize, height: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == 3 * width * height && width > 0 && height > 0).then_some(RgbImage {
            width,
            height,
            data,
        })
    }

    /// A black image.
    pub fn zeros(width: usize, height: usize) -> Self {
        RgbImage {
            width,
            height,
            data: vec![0.0; 3 * width * height],
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// All samples, planar: R plane, G plane, B plane.
    pub fn as_planar(&self) -> &[f32] {
        &self.data
    }

    /// One channel's plane (0 = R, 1 = G, 2 = B).
    pub fn plane(&self, channel: usize) -> &[f32] {
        let n = self.width * self.height;
        &self.data[channel * n..(channel + 1) * n]
    }

    /// One channel's plane, writable.
    pub fn plane_mut(&mut self, channel: usize) -> &mut [f32] {
        let n = self.width * self.height;
        &mut self.data[channel * n..(channel + 1) * n]
    }

    /// Sets the RGB triple at (x, y).
    pub fn set_pixel(&mut self, x: usize, y: usize, rgb: [f32; 3]) {
        let i = y * self.width + x;
        let n = self.width * self.height;
        for (c, v) in rgb.into_iter().enumerate() {
            self.data[c * n + i] = v;
        }
    }

    /// The RGB triple at (x, y).
    pub fn pixel(&self, x: usize, y: usize) -> [f32; 3] {
        let i = y * self.width + x;
        let n = self.width * self.height;
        [self.data[i], self.data[n + i], self.data[2 * n + i]]
    }
}
