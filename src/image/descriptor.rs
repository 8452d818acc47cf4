//! Caller-owned images described by pointer, size, strides, pixel format and layout, and
//! their conversion into [`RgbImage`]. Every geometry is checked before a byte is read.

use super::RgbImage;
use crate::error::{Error, Result};

/// Largest accepted width or height.
pub const MAX_SIDE: usize = 1 << 16;
/// Largest accepted pixel count (width x height), about 268 megapixels.
pub const MAX_PIXELS: usize = 1 << 28;

/// How the samples of one pixel are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// One 8-bit grey sample.
    Gray8,
    /// One 16-bit grey sample (native byte order), full range 0..=65535.
    Gray16,
    /// 8-bit red, green, blue.
    Rgb8,
    /// 8-bit blue, green, red (OpenCV's default order).
    Bgr8,
    /// 8-bit red, green, blue, alpha (alpha is ignored).
    Rgba8,
    /// 8-bit blue, green, red, alpha (alpha is ignored).
    Bgra8,
    /// One 32-bit float grey sample in [0, 1] (native byte order); values outside are
    /// clamped, NaN and infinities are rejected.
    Gray32F,
}

impl PixelFormat {
    /// Samples per pixel.
    pub fn channels(self) -> usize {
        match self {
            PixelFormat::Gray8 | PixelFormat::Gray16 | PixelFormat::Gray32F => 1,
            PixelFormat::Rgb8 | PixelFormat::Bgr8 => 3,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => 4,
        }
    }

    /// Bytes per sample.
    pub fn sample_bytes(self) -> usize {
        match self {
            PixelFormat::Gray16 => 2,
            PixelFormat::Gray32F => 4,
            _ => 1,
        }
    }

    /// For each output channel R, G, B: which input channel holds it.
    fn rgb_sources(self) -> [usize; 3] {
        match self {
            PixelFormat::Gray8 | PixelFormat::Gray16 | PixelFormat::Gray32F => [0, 0, 0],
            PixelFormat::Rgb8 | PixelFormat::Rgba8 => [0, 1, 2],
            PixelFormat::Bgr8 | PixelFormat::Bgra8 => [2, 1, 0],
        }
    }
}

/// How the channels of an image are arranged in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// All samples of a pixel next to each other (OpenCV, most cameras).
    Interleaved,
    /// One plane per channel, planes `plane_stride` bytes apart (Halcon).
    Planar,
}

/// The shape of a caller's image buffer: everything but the bytes themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageGeometry {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from the start of one row to the start of the next (within a plane).
    pub row_stride: usize,
    /// Bytes from the start of one plane to the start of the next (planar layout only).
    pub plane_stride: usize,
    /// Sample encoding.
    pub format: PixelFormat,
    /// Channel arrangement.
    pub layout: Layout,
}

impl ImageGeometry {
    /// A tightly packed interleaved image (row stride = width x pixel bytes).
    pub fn packed(width: usize, height: usize, format: PixelFormat) -> Self {
        ImageGeometry {
            width,
            height,
            row_stride: width * format.channels() * format.sample_bytes(),
            plane_stride: 0,
            format,
            layout: Layout::Interleaved,
        }
    }

    fn planes(&self) -> usize {
        match self.layout {
            Layout::Interleaved => 1,
            Layout::Planar => self.format.channels(),
        }
    }

    fn row_bytes(&self) -> usize {
        let per_pixel = match self.layout {
            Layout::Interleaved => self.format.channels(),
            Layout::Planar => 1,
        };
        self.width * per_pixel * self.format.sample_bytes()
    }

    /// Checks the geometry and returns the number of bytes the buffer must hold, counted
    /// from the data pointer to the last byte of the last row of the last plane.
    pub fn required_bytes(&self) -> Result<usize> {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return Err(Error::InvalidImage(format!(
                "size {w}x{h} is empty; width and height must be at least 1"
            )));
        }
        if w > MAX_SIDE || h > MAX_SIDE || w * h > MAX_PIXELS {
            return Err(Error::InvalidImage(format!(
                "size {w}x{h} is too large; each side must be at most {MAX_SIDE} and the \
                 pixel count at most {MAX_PIXELS}"
            )));
        }
        let row_bytes = self.row_bytes();
        if self.row_stride < row_bytes {
            return Err(Error::InvalidImage(format!(
                "row stride {} bytes is shorter than one row ({w} pixels of {:?} {} = {row_bytes} \
                 bytes)",
                self.row_stride,
                self.format,
                match self.layout {
                    Layout::Interleaved => "interleaved",
                    Layout::Planar => "planar",
                }
            )));
        }
        let sample_bytes = self.format.sample_bytes();
        if self.row_stride % sample_bytes != 0 {
            return Err(Error::InvalidImage(format!(
                "row stride {} bytes is not a multiple of the {sample_bytes}-byte sample of {:?}",
                self.row_stride, self.format
            )));
        }
        let plane_bytes = self
            .row_stride
            .checked_mul(h - 1)
            .and_then(|b| b.checked_add(row_bytes))
            .ok_or_else(|| Error::InvalidImage("row stride x height overflows".into()))?;
        if self.layout == Layout::Planar && self.planes() > 1 && self.plane_stride < plane_bytes {
            return Err(Error::InvalidImage(format!(
                "plane stride {} bytes is shorter than one plane ({plane_bytes} bytes: row stride \
                 {} x {} rows)",
                self.plane_stride, self.row_stride, h
            )));
        }
        let total = (self.planes() - 1)
            .checked_mul(self.plane_stride)
            .and_then(|b| b.checked_add(plane_bytes))
            .ok_or_else(|| Error::InvalidImage("plane stride x planes overflows".into()))?;
        if total > isize::MAX as usize {
            return Err(Error::InvalidImage(format!(
                "buffer extent of {total} bytes is too large"
            )));
        }
        Ok(total)
    }
}

/// A caller's image: its geometry and its bytes (at least `required_bytes` of them).
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    geometry: ImageGeometry,
    bytes: &'a [u8],
}

impl<'a> ImageView<'a> {
    /// Checks `geometry` and that `bytes` covers it.
    pub fn new(geometry: ImageGeometry, bytes: &'a [u8]) -> Result<Self> {
        let needed = geometry.required_bytes()?;
        if bytes.len() < needed {
            return Err(Error::InvalidImage(format!(
                "buffer of {} bytes is shorter than the {needed} bytes the geometry describes",
                bytes.len()
            )));
        }
        Ok(ImageView { geometry, bytes })
    }

    /// The geometry.
    pub fn geometry(&self) -> &ImageGeometry {
        &self.geometry
    }

    /// Converts to the internal RGB float image: 8-bit samples / 255, 16-bit / 65535,
    /// floats clamped to [0, 1]; grey is replicated into R, G and B; alpha is dropped.
    pub fn to_rgb(&self) -> Result<RgbImage> {
        let g = &self.geometry;
        let (w, h) = (g.width, g.height);
        let sample_bytes = g.format.sample_bytes();
        let (pixel_step, channel_step) = match g.layout {
            Layout::Interleaved => (g.format.channels() * sample_bytes, sample_bytes),
            Layout::Planar => (sample_bytes, g.plane_stride),
        };
        let sources = g.format.rgb_sources();
        let mut data = vec![0f32; 3 * w * h];
        for (out_channel, &source) in sources.iter().enumerate() {
            let plane = &mut data[out_channel * w * h..(out_channel + 1) * w * h];
            for y in 0..h {
                let row_start = y * g.row_stride + source * channel_step;
                for x in 0..w {
                    let at = row_start + x * pixel_step;
                    plane[y * w + x] = read_sample(g.format, &self.bytes[at..at + sample_bytes])
                        .ok_or_else(|| {
                            Error::InvalidImage(format!(
                                "sample at ({x}, {y}) is NaN or infinite; GRAY32F expects \
                                 finite values in [0, 1]"
                            ))
                        })?;
                }
            }
        }
        RgbImage::from_planar(w, h, data)
            .ok_or_else(|| Error::InvalidImage("conversion produced a wrong sample count".into()))
    }
}

fn read_sample(format: PixelFormat, bytes: &[u8]) -> Option<f32> {
    match format {
        PixelFormat::Gray16 => Some(u16::from_ne_bytes([bytes[0], bytes[1]]) as f32 / 65535.0),
        PixelFormat::Gray32F => {
            let v = f32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            v.is_finite().then(|| v.clamp(0.0, 1.0))
        }
        _ => Some(bytes[0] as f32 / 255.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(
        width: usize,
        height: usize,
        row_stride: usize,
        format: PixelFormat,
    ) -> ImageGeometry {
        ImageGeometry {
            width,
            height,
            row_stride,
            plane_stride: 0,
            format,
            layout: Layout::Interleaved,
        }
    }

    fn message(result: Result<impl std::fmt::Debug>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn eight_bit_formats_map_to_rgb_in_unit_range() {
        let cases: [(PixelFormat, &[u8]); 5] = [
            (PixelFormat::Rgb8, &[255, 51, 0]),
            (PixelFormat::Bgr8, &[0, 51, 255]),
            (PixelFormat::Rgba8, &[255, 51, 0, 7]),
            (PixelFormat::Bgra8, &[0, 51, 255, 7]),
            (PixelFormat::Gray8, &[51]),
        ];
        for (format, bytes) in cases {
            let view = ImageView::new(ImageGeometry::packed(1, 1, format), bytes).unwrap();
            let expected = if format == PixelFormat::Gray8 {
                [0.2; 3]
            } else {
                [1.0, 0.2, 0.0]
            };
            assert_eq!(view.to_rgb().unwrap().pixel(0, 0), expected, "{format:?}");
        }
    }

    #[test]
    fn wide_formats_use_their_full_range() {
        let bytes: Vec<u8> = [0u16, 65535, 13107]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let rgb = ImageView::new(ImageGeometry::packed(3, 1, PixelFormat::Gray16), &bytes)
            .unwrap()
            .to_rgb()
            .unwrap();
        assert_eq!(rgb.plane(1), &[0.0, 1.0, 0.2]);

        let bytes: Vec<u8> = [-0.5f32, 0.25, 2.0]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let rgb = ImageView::new(ImageGeometry::packed(3, 1, PixelFormat::Gray32F), &bytes)
            .unwrap()
            .to_rgb()
            .unwrap();
        assert_eq!(rgb.plane(2), &[0.0, 0.25, 1.0]);

        let bytes: Vec<u8> = [0.5f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_ne_bytes())
            .collect();
        let view =
            ImageView::new(ImageGeometry::packed(2, 1, PixelFormat::Gray32F), &bytes).unwrap();
        assert!(message(view.to_rgb()).contains("(1, 0) is NaN or infinite"));
    }

    #[test]
    fn a_padded_roi_reads_only_its_own_pixels() {
        // A 2x2 BGR region inside a 4-pixel-wide, 3-row buffer, starting at pixel (1, 1).
        let full_stride = 4 * 3;
        let mut buffer = vec![200u8; full_stride * 3];
        for (y, x, bgr) in [
            (1, 1, [1, 2, 3]),
            (1, 2, [4, 5, 6]),
            (2, 1, [7, 8, 9]),
            (2, 2, [10, 11, 12]),
        ] {
            buffer[y * full_stride + x * 3..][..3].copy_from_slice(&bgr);
        }
        let roi = &buffer[full_stride + 3..];
        let view = ImageView::new(geometry(2, 2, full_stride, PixelFormat::Bgr8), roi).unwrap();
        let rgb = view.to_rgb().unwrap();
        let scaled = |c: usize| {
            rgb.plane(c)
                .iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect::<Vec<_>>()
        };
        assert_eq!(scaled(0), vec![3, 6, 9, 12]);
        assert_eq!(scaled(1), vec![2, 5, 8, 11]);
        assert_eq!(scaled(2), vec![1, 4, 7, 10]);
    }

    #[test]
    fn planar_images_read_each_plane() {
        // 2x1 RGB planar, rows padded to 4 bytes, planes 8 bytes apart.
        let bytes = [
            10u8, 20, 0, 0, 99, 99, 99, 99, 30, 40, 0, 0, 99, 99, 99, 99, 50, 60, 0, 0,
        ];
        let g = ImageGeometry {
            width: 2,
            height: 1,
            row_stride: 4,
            plane_stride: 8,
            format: PixelFormat::Rgb8,
            layout: Layout::Planar,
        };
        assert_eq!(g.required_bytes().unwrap(), 18);
        let rgb = ImageView::new(g, &bytes).unwrap().to_rgb().unwrap();
        assert_eq!(rgb.pixel(0, 0), [10.0 / 255.0, 30.0 / 255.0, 50.0 / 255.0]);
        assert_eq!(rgb.pixel(1, 0), [20.0 / 255.0, 40.0 / 255.0, 60.0 / 255.0]);
        let short = ImageGeometry {
            plane_stride: 1,
            ..g
        };
        assert!(message(short.required_bytes())
            .contains("plane stride 1 bytes is shorter than one plane"));
    }

    #[test]
    fn bad_geometries_are_rejected_with_the_reason() {
        assert!(
            message(geometry(0, 5, 3, PixelFormat::Rgb8).required_bytes()).contains("0x5 is empty")
        );
        assert!(
            message(geometry(10, 2, 29, PixelFormat::Rgb8).required_bytes())
                .contains("row stride 29 bytes is shorter than one row")
        );
        assert!(
            message(geometry(70_000, 1, 70_000, PixelFormat::Gray8).required_bytes())
                .contains("too large")
        );
        assert!(
            message(geometry(30_000, 30_000, 30_000, PixelFormat::Gray8).required_bytes())
                .contains("too large")
        );
        assert!(
            message(geometry(2, 2, 5, PixelFormat::Gray16).required_bytes())
                .contains("not a multiple")
        );
        let huge = geometry(4, 4, usize::MAX / 2, PixelFormat::Gray8);
        assert!(huge.required_bytes().is_err());
        let g = ImageGeometry::packed(4, 4, PixelFormat::Rgb8);
        assert!(message(ImageView::new(g, &[0u8; 47]))
            .contains("47 bytes is shorter than the 48 bytes"));
    }

    #[test]
    fn the_last_row_needs_no_padding() {
        // Row stride 8 for 2 RGB pixels (6 bytes): the buffer may end right after the last pixel.
        let g = geometry(2, 3, 8, PixelFormat::Rgb8);
        assert_eq!(g.required_bytes().unwrap(), 8 * 2 + 6);
    }
}
