//! Texture classes cut from real photographs: each good image is a random square crop
//! (random size, mirror flip and half turn, which keep the material's orientation, and a
//! slight exposure change) of one photograph.

use crate::data::dataset::{load_image, IMAGE_EXTENSIONS};
use crate::data::preprocess::resize_image;
use crate::error::{Error, Result};
use crate::image::RgbImage;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// A photograph used as a material.
#[derive(Debug, Clone)]
pub struct PhotoTexture {
    name: String,
    photo: RgbImage,
}

impl PhotoTexture {
    /// Loads every image of `dir` (sorted by file name). Errors name the unreadable file;
    /// a folder without images is an error.
    pub fn from_folder(dir: &Path) -> Result<Vec<PhotoTexture>> {
        let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        paths.sort();
        if paths.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no photographs (png, jpg, bmp, tif) found",
                dir.display()
            )));
        }
        paths
            .iter()
            .map(|path| {
                let photo = load_image(path)?;
                if photo.width().min(photo.height()) < 32 {
                    return Err(Error::invalid(format!(
                        "{}: photograph is smaller than 32 pixels",
                        path.display()
                    )));
                }
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("photo");
                let name: String = stem
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                Ok(PhotoTexture { name, photo })
            })
            .collect()
    }

    /// The class name: `photo_<file stem>`.
    pub fn class_name(&self) -> String {
        format!("photo_{}", self.name)
    }

    /// A random crop of the photograph, `size` x `size`.
    pub fn render(&self, size: usize, rng: &mut ChaCha8Rng) -> RgbImage {
        let side = self.photo.width().min(self.photo.height());
        let crop = ((side as f32 * rng.random_range(0.45..0.75)) as usize).max(8);
        let x0 = rng.random_range(0..=self.photo.width() - crop);
        let y0 = rng.random_range(0..=self.photo.height() - crop);
        let (flip, turns) = (rng.random_bool(0.5), 2 * rng.random_range(0..2));
        let gain = rng.random_range(0.92..1.08);
        let mut out = RgbImage::zeros(crop, crop);
        for y in 0..crop {
            for x in 0..crop {
                let (mut sx, mut sy) = (if flip { crop - 1 - x } else { x }, y);
                for _ in 0..turns {
                    (sx, sy) = (crop - 1 - sy, sx);
                }
                let rgb = self.photo.pixel(x0 + sx, y0 + sy);
                out.set_pixel(x, y, rgb.map(|c| (c * gain).clamp(0.0, 1.0)));
            }
        }
        resize_image(&out, size)
    }
}
