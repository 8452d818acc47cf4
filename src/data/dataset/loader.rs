//! Reading and writing image and mask files (PNG, JPEG, BMP, TIFF) as the library's
//! [`RgbImage`] and [`Mask`]. Writes are atomic: a temporary file in the same folder is
//! renamed over the target.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use image::codecs::png::PngEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder, ImageError, ImageReader};

use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};

/// Reads an image file as RGB in [0, 1]: 8-bit samples are divided by 255, 16-bit ones
/// by 65535, grey is replicated to the three channels and alpha is dropped.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let decoded = decode(path)?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let planar = match decoded {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageRgb8(_)
        | DynamicImage::ImageRgba8(_) => to_planar(&decoded.into_rgb8(), |v| f32::from(v) / 255.0),
        DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_)
        | DynamicImage::ImageRgb16(_)
        | DynamicImage::ImageRgba16(_) => {
            to_planar(&decoded.into_rgb16(), |v| f32::from(v) / 65535.0)
        }
        _ => to_planar(&decoded.into_rgb32f(), |v| v.clamp(0.0, 1.0)),
    };
    RgbImage::from_planar(width, height, planar).ok_or_else(|| empty_image(path))
}

/// Splits interleaved RGB samples into planes, mapping each sample with `scale`.
fn to_planar<T: Copy>(interleaved: &[T], scale: impl Fn(T) -> f32) -> Vec<f32> {
    let n = interleaved.len() / 3;
    let mut planar = vec![0.0f32; 3 * n];
    for (i, px) in interleaved.chunks_exact(3).enumerate() {
        for (c, &v) in px.iter().enumerate() {
            planar[c * n + i] = scale(v);
        }
    }
    planar
}

/// Reads a mask file: a pixel is defective when any of its colour samples is non-zero
/// (alpha is ignored).
pub fn load_mask(path: &Path) -> Result<Mask> {
    let decoded = decode(path)?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    if width == 0 || height == 0 {
        return Err(empty_image(path));
    }
    let bytes: Vec<u8> = decoded
        .into_rgb16()
        .pixels()
        .map(|px| u8::from(px.0.iter().any(|&v| v != 0)))
        .collect();
    Mask::from_bytes(width, height, &bytes).ok_or_else(|| empty_image(path))
}

/// Writes an image as an 8-bit RGB PNG (samples clamped to [0, 1] and rounded).
pub fn save_image_png(path: &Path, image: &RgbImage) -> Result<()> {
    let n = image.width() * image.height();
    let planar = image.as_planar();
    let mut interleaved = Vec::with_capacity(3 * n);
    for i in 0..n {
        for c in 0..3 {
            interleaved.push((planar[c * n + i].clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    write_png_atomic(
        path,
        &interleaved,
        image.width(),
        image.height(),
        ExtendedColorType::Rgb8,
    )
}

/// Writes a mask as an 8-bit grey PNG: 255 where set, 0 elsewhere.
pub fn save_mask_png(path: &Path, mask: &Mask) -> Result<()> {
    let grey: Vec<u8> = mask
        .as_bytes()
        .iter()
        .map(|&b| if b != 0 { 255 } else { 0 })
        .collect();
    write_png_atomic(
        path,
        &grey,
        mask.width(),
        mask.height(),
        ExtendedColorType::L8,
    )
}

/// Opens and decodes a file, guessing the format from its content and then its name.
fn decode(path: &Path) -> Result<DynamicImage> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = ImageReader::open(path)
        .map_err(io_error)?
        .with_guessed_format()
        .map_err(io_error)?;
    reader.decode().map_err(|e| match e {
        ImageError::IoError(source) => Error::Io {
            path: path.to_path_buf(),
            source,
        },
        other => Error::invalid(format!(
            "cannot decode image file {}: {other}; expected a valid PNG, JPEG, BMP or TIFF image",
            path.display()
        )),
    })
}

/// The error for a file that decodes to zero pixels.
fn empty_image(path: &Path) -> Error {
    Error::invalid(format!(
        "image file {} has no pixels; expected a width and height of at least 1",
        path.display()
    ))
}

/// Encodes `samples` as a PNG into a temporary file next to `path`, then renames it over
/// `path`, so that readers never see a half-written file.
fn write_png_atomic(
    path: &Path,
    samples: &[u8],
    width: usize,
    height: usize,
    color: ExtendedColorType,
) -> Result<()> {
    let too_large = || {
        Error::invalid(format!(
            "cannot write {}: {width}x{height} is too large for a PNG file",
            path.display()
        ))
    };
    let (w, h) = (
        u32::try_from(width).map_err(|_| too_large())?,
        u32::try_from(height).map_err(|_| too_large())?,
    );
    let temp = temp_path(path)?;
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|source| Error::Io {
            path: temp.clone(),
            source,
        })?;
    let written = encode_into(file, samples, w, h, color, path, &temp).and_then(|()| {
        fs::rename(&temp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if written.is_err() {
        // Best effort: the original error is what the caller needs to see.
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Writes the PNG stream into `file` and flushes it to disk.
fn encode_into(
    file: File,
    samples: &[u8],
    width: u32,
    height: u32,
    color: ExtendedColorType,
    target: &Path,
    temp: &Path,
) -> Result<()> {
    let io_error = |source| Error::Io {
        path: temp.to_path_buf(),
        source,
    };
    let mut writer = BufWriter::new(file);
    PngEncoder::new(&mut writer)
        .write_image(samples, width, height, color)
        .map_err(|e| match e {
            ImageError::IoError(source) => io_error(source),
            other => Error::invalid(format!(
                "cannot encode {} as PNG: {other}",
                target.display()
            )),
        })?;
    writer.flush().map_err(io_error)?;
    let file = writer.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)
}

/// A fresh temporary name in the folder of `path`, unique within this process.
fn temp_path(path: &Path) -> Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "cannot write {}: expected a path that ends in a file name",
            path.display()
        ))
    })?;
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".{}.{unique}.tmp", std::process::id()));
    Ok(path.with_file_name(temp_name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageBuffer, Luma, LumaA, Rgb, Rgba};

    #[test]
    fn sixteen_bit_grey_png_is_scaled_and_replicated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep.png");
        let buffer: ImageBuffer<Luma<u16>, Vec<u16>> =
            ImageBuffer::from_vec(2, 1, vec![0, 65535 / 5]).unwrap();
        buffer.save(&path).unwrap();
        let img = load_image(&path).unwrap();
        assert_eq!((img.width(), img.height()), (2, 1));
        assert_eq!(img.pixel(0, 0), [0.0; 3]);
        let expected = (65535 / 5) as f32 / 65535.0;
        for v in img.pixel(1, 0) {
            assert!((v - expected).abs() < 1e-6, "{v} vs {expected}");
        }
    }

    #[test]
    fn grey_png_is_replicated_to_rgb() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grey.png");
        GrayImage::from_vec(1, 2, vec![51, 255])
            .unwrap()
            .save(&path)
            .unwrap();
        let img = load_image(&path).unwrap();
        assert_eq!(img.pixel(0, 0), [0.2; 3]);
        assert_eq!(img.pixel(0, 1), [1.0; 3]);
    }

    #[test]
    fn alpha_is_dropped_and_sixteen_bit_rgb_is_scaled() {
        let dir = tempfile::tempdir().unwrap();
        let rgba = dir.path().join("rgba.png");
        ImageBuffer::<Rgba<u8>, _>::from_vec(1, 1, vec![255, 0, 51, 0])
            .unwrap()
            .save(&rgba)
            .unwrap();
        assert_eq!(load_image(&rgba).unwrap().pixel(0, 0), [1.0, 0.0, 0.2]);
        let rgb16 = dir.path().join("rgb16.png");
        ImageBuffer::<Rgb<u16>, _>::from_vec(1, 1, vec![65535u16, 0, 13107])
            .unwrap()
            .save(&rgb16)
            .unwrap();
        assert_eq!(load_image(&rgb16).unwrap().pixel(0, 0), [1.0, 0.0, 0.2]);
    }

    #[test]
    fn other_formats_load() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = ImageBuffer::<Rgb<u8>, _>::from_vec(2, 2, vec![200; 12]).unwrap();
        for ext in ["bmp", "tiff", "jpg"] {
            let path = dir.path().join(format!("x.{ext}"));
            buffer.save(&path).unwrap();
            let img = load_image(&path).unwrap();
            assert_eq!((img.width(), img.height()), (2, 2), "{ext}");
            assert!((img.pixel(1, 1)[0] - 200.0 / 255.0).abs() < 0.02, "{ext}");
        }
    }

    #[test]
    fn corrupt_file_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.png");
        fs::write(&path, b"definitely not an image").unwrap();
        let message = load_image(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        let message = load_mask(&path).unwrap_err().to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
    }

    #[test]
    fn missing_file_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.png");
        let err = load_image(&path).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn mask_treats_any_non_zero_sample_as_defect() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.png");
        let samples = vec![0, 255, 1, 255, 7, 0, 0, 0];
        ImageBuffer::<LumaA<u8>, _>::from_vec(4, 1, samples)
            .unwrap()
            .save(&path)
            .unwrap();
        let mask = load_mask(&path).unwrap();
        assert_eq!(mask.as_bytes(), &[0, 1, 1, 0]);
    }

    #[test]
    fn writers_round_trip_and_leave_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = RgbImage::zeros(3, 2);
        img.set_pixel(2, 1, [1.0, 0.2, 0.6]);
        let image_path = dir.path().join("img.png");
        save_image_png(&image_path, &img).unwrap();
        save_image_png(&image_path, &img).unwrap();
        assert_eq!(load_image(&image_path).unwrap(), img);

        let mut mask = Mask::zeros(3, 2);
        mask.set(1, 0, true);
        let mask_path = dir.path().join("mask.png");
        save_mask_png(&mask_path, &mask).unwrap();
        assert_eq!(load_mask(&mask_path).unwrap(), mask);

        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["img.png", "mask.png"]);
    }

    #[test]
    fn write_into_missing_folder_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no_such_dir").join("img.png");
        let message = save_image_png(&path, &RgbImage::zeros(1, 1))
            .unwrap_err()
            .to_string();
        assert!(message.contains("no_such_dir"), "{message}");
    }
}
