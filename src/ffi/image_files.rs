//! Reading image files into caller buffers and writing anomaly-map overlays, so C
//! programs can work with the library's datasets and show its results without an
//! image library of their own.

use super::boundary::{call, FfiError};
use super::handles::{text_arg, write_out};
use super::image::cdad_image;
use super::image::rgb_image;
use super::status::cdad_status;
use crate::data::dataset::{load_image, save_image_png};
use crate::error::Error;
use crate::image::overlay;
use std::ffi::c_char;
use std::path::Path;

/// Decodes an image file (PNG, JPEG, BMP, TIFF; 8/16-bit, grey or colour) into
/// interleaved RGB8 (`rgb`, room for `capacity` bytes, at least 3 x width x height) and
/// stores its size in `*width` and `*height`. With `rgb` NULL and `capacity` 0 only
/// the size is stored, so the caller can allocate.
#[no_mangle]
pub extern "C" fn cdad_image_file_read(
    path: *const c_char,
    rgb: *mut u8,
    capacity: usize,
    width: *mut u32,
    height: *mut u32,
) -> cdad_status {
    call("cdad_image_file_read", || {
        let path = text_arg(path, "path")?;
        if width.is_null() || height.is_null() {
            return Err(FfiError::NullPointer(if width.is_null() {
                "width"
            } else {
                "height"
            }));
        }
        let image = load_image(Path::new(path))?;
        let (w, h) = (image.width(), image.height());
        if !rgb.is_null() || capacity != 0 {
            if rgb.is_null() {
                return Err(FfiError::NullPointer("rgb"));
            }
            if capacity < 3 * w * h {
                return Err(Error::BufferTooSmall {
                    needed: 3 * w * h,
                    given: capacity,
                }
                .into());
            }
            for y in 0..h {
                for x in 0..w {
                    let pixel = image
                        .pixel(x, y)
                        .map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8);
                    // SAFETY: `rgb` holds at least 3 x w x h bytes (checked above).
                    unsafe {
                        std::ptr::copy_nonoverlapping(pixel.as_ptr(), rgb.add(3 * (y * w + x)), 3)
                    };
                }
            }
        }
        write_out(width, w as u32, "width")?;
        write_out(height, h as u32, "height")
    })
}

/// Writes `image` with `map` drawn over it as a heat map to a PNG file (atomically).
/// `map` holds `image->height` rows of `image->width` floats, `map_row_stride` bytes
/// apart; values at or below `low` leave the image as it is, values at `high` and
/// above are drawn red.
#[no_mangle]
pub extern "C" fn cdad_overlay_write_png(
    path: *const c_char,
    image: *const cdad_image,
    map: *const f32,
    map_row_stride: usize,
    low: f32,
    high: f32,
) -> cdad_status {
    call("cdad_overlay_write_png", || {
        let path = text_arg(path, "path")?;
        let rgb = rgb_image(image, "image")?;
        if map.is_null() {
            return Err(FfiError::NullPointer("map"));
        }
        let (w, h) = (rgb.width(), rgb.height());
        if map_row_stride < 4 * w {
            return Err(Error::invalid(format!(
                "map row stride {map_row_stride} bytes is shorter than one row of {w} floats"
            ))
            .into());
        }
        let mut values = Vec::with_capacity(w * h);
        for y in 0..h {
            // SAFETY: the caller provides `h` rows of `map_row_stride` bytes.
            let row = unsafe { (map as *const u8).add(y * map_row_stride) as *const f32 };
            for x in 0..w {
                values.push(unsafe { row.add(x).read_unaligned() });
            }
        }
        save_image_png(Path::new(path), &overlay(&rgb, &values, low, high)?)?;
        Ok(())
    })
}
