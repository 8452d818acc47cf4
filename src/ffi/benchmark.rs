//! Writing the built-in synthetic benchmark from C.

use super::boundary::call;
use super::handles::text_arg;
use super::status::cdad_status;
use crate::data::synthetic::{generate, BenchmarkSpec};
use std::ffi::c_char;
use std::path::PathBuf;

/// Writes the built-in synthetic benchmark (15 classes, MVTec AD layout) under `root`:
/// `image_size` pixels square (16..=1024), `train_good` good training images and
/// `test_good` good test images per class, `defects_per_kind` defective test images for
/// each of a class's four defect kinds, everything drawn from `seed`. `photo_dir`
/// (nullable) adds one texture class per photograph in that folder. A root that already
/// holds the same benchmark is left untouched, so this is cheap to call on every start.
#[no_mangle]
pub extern "C" fn cdad_benchmark_generate(
    root: *const c_char,
    image_size: u32,
    train_good: u32,
    test_good: u32,
    defects_per_kind: u32,
    seed: u64,
    photo_dir: *const c_char,
) -> cdad_status {
    call("cdad_benchmark_generate", || {
        let root = text_arg(root, "root")?;
        let photo_dir = if photo_dir.is_null() {
            None
        } else {
            Some(PathBuf::from(text_arg(photo_dir, "photo_dir")?))
        };
        let spec = BenchmarkSpec {
            image_size: image_size as usize,
            train_good: train_good as usize,
            test_good: test_good as usize,
            test_defects_per_kind: defects_per_kind as usize,
            seed,
            photo_dir,
        };
        generate(PathBuf::from(root).as_path(), &spec)?;
        Ok(())
    })
}
