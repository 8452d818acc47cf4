//! `cdad_image`: the descriptor through which C hands images to the library, without
//! copying: any row stride (so a cv::Mat ROI works as it is), interleaved or planar.

use super::boundary::{call, FfiError};
use super::handles::write_array;
use super::status::cdad_status;
use crate::error::Error;
use crate::image::{ImageGeometry, ImageView, Layout, PixelFormat, RgbImage};
use std::ffi::c_void;

/// Pixel encodings accepted in `cdad_image.format`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_pixel_format {
    /// 8-bit grey.
    CDAD_PIXEL_GRAY8 = 0,
    /// 16-bit grey, native byte order, full range 0..65535.
    CDAD_PIXEL_GRAY16 = 1,
    /// 8-bit R, G, B.
    CDAD_PIXEL_RGB8 = 2,
    /// 8-bit B, G, R (OpenCV's order).
    CDAD_PIXEL_BGR8 = 3,
    /// 8-bit R, G, B, A (alpha ignored).
    CDAD_PIXEL_RGBA8 = 4,
    /// 8-bit B, G, R, A (alpha ignored).
    CDAD_PIXEL_BGRA8 = 5,
    /// 32-bit float grey in [0, 1], native byte order (clamped; NaN/Inf rejected).
    CDAD_PIXEL_GRAY32F = 6,
}

/// Channel arrangements accepted in `cdad_image.layout`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_layout {
    /// All samples of a pixel together (OpenCV, most camera SDKs).
    CDAD_LAYOUT_INTERLEAVED = 0,
    /// One plane per channel, `plane_stride` bytes apart, in the format's channel order
    /// (Halcon's multi-channel images).
    CDAD_LAYOUT_PLANAR = 1,
}

/// A caller-owned image. The library reads it during the call and never keeps the
/// pointer. Rows are `row_stride` bytes apart (at least one row of pixels); for planar
/// multi-channel images, planes are `plane_stride` bytes apart (at least one plane).
/// Sides are limited to 65536 pixels and the pixel count to 2^28.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct cdad_image {
    /// First byte of the first row (of the first plane).
    pub data: *const c_void,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from one row to the next.
    pub row_stride: usize,
    /// Bytes from one plane to the next (planar layout; ignored for interleaved).
    pub plane_stride: usize,
    /// A `cdad_pixel_format` value.
    pub format: i32,
    /// A `cdad_layout` value.
    pub layout: i32,
}

fn pixel_format(code: i32) -> Result<PixelFormat, Error> {
    Ok(match code {
        0 => PixelFormat::Gray8,
        1 => PixelFormat::Gray16,
        2 => PixelFormat::Rgb8,
        3 => PixelFormat::Bgr8,
        4 => PixelFormat::Rgba8,
        5 => PixelFormat::Bgra8,
        6 => PixelFormat::Gray32F,
        other => {
            return Err(Error::InvalidImage(format!(
                "format {other} is not a cdad_pixel_format; expected 0..=6 (GRAY8, GRAY16, RGB8, \
                 BGR8, RGBA8, BGRA8, GRAY32F)"
            )))
        }
    })
}

fn layout(code: i32) -> Result<Layout, Error> {
    match code {
        0 => Ok(Layout::Interleaved),
        1 => Ok(Layout::Planar),
        other => Err(Error::InvalidImage(format!(
            "layout {other} is not a cdad_layout; expected 0 (INTERLEAVED) or 1 (PLANAR)"
        ))),
    }
}

/// Reads a C image descriptor into a checked view of the caller's bytes.
pub(crate) fn image_view<'a>(
    image: *const cdad_image,
    argument: &'static str,
) -> Result<ImageView<'a>, FfiError> {
    // SAFETY: non-NULL is checked; C provides a readable descriptor.
    let desc = unsafe { image.as_ref() }.ok_or(FfiError::NullPointer(argument))?;
    let geometry = ImageGeometry {
        width: desc.width as usize,
        height: desc.height as usize,
        row_stride: desc.row_stride,
        plane_stride: desc.plane_stride,
        format: pixel_format(desc.format)?,
        layout: layout(desc.layout)?,
    };
    let extent = geometry.required_bytes()?;
    if desc.data.is_null() {
        return Err(Error::InvalidImage(format!("{argument}.data is NULL")).into());
    }
    // SAFETY: the caller promises `data` covers the geometry it describes, whose
    // extent was just computed with overflow checks.
    let bytes = unsafe { std::slice::from_raw_parts(desc.data as *const u8, extent) };
    Ok(ImageView::new(geometry, bytes)?)
}

/// Reads a C image into the library's RGB float image.
pub(crate) fn rgb_image(
    image: *const cdad_image,
    argument: &'static str,
) -> Result<RgbImage, FfiError> {
    Ok(image_view(image, argument)?.to_rgb()?)
}

/// Checks an image descriptor (sizes, strides, format, layout, NULL data) without
/// reading pixels. `CDAD_ERR_INVALID_IMAGE` with a message naming the problem.
#[no_mangle]
pub extern "C" fn cdad_image_check(image: *const cdad_image) -> cdad_status {
    call("cdad_image_check", || {
        image_view(image, "image").map(|_| ())
    })
}

/// Converts an image into the library's internal form: planar RGB floats in [0, 1]
/// (R plane, G plane, B plane, each width x height, row-major). `out` must hold
/// `3 * width * height` floats (`capacity`); grey is replicated into R, G, B; 8-bit
/// samples are divided by 255, 16-bit by 65535.
#[no_mangle]
pub extern "C" fn cdad_image_to_rgb(
    image: *const cdad_image,
    out: *mut f32,
    capacity: usize,
) -> cdad_status {
    call("cdad_image_to_rgb", || {
        let rgb = rgb_image(image, "image")?;
        if out.is_null() {
            return Err(FfiError::NullPointer("out"));
        }
        write_array(rgb.as_planar(), out, capacity, std::ptr::null_mut())
    })
}
