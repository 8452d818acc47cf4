//! `cdad_detector`: create, add tasks, train, infer, save, load.
//!
//! Thread safety: a detector may be used from several threads at once. `infer` calls
//! run concurrently; calls that change the detector (`add_task`, `train_task`) take
//! exclusive access and fail with `CDAD_ERR_BUSY` while another call is running, as do
//! `infer` and `save` while a training runs.

use super::boundary::{call, FfiError};
use super::config::cdad_config;
use super::handles::{borrow, free, hand_out, impl_handle, text_arg, write_out};
use super::image::{cdad_image, rgb_image};
use super::status::cdad_status;
use super::task::cdad_task;
use crate::config::value::Value;
use crate::detector::{AnomalyMap, Detector};
use crate::error::Error;
use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

/// A continual anomaly detector: one model for every class learned so far.
#[allow(non_camel_case_types)]
pub struct cdad_detector {
    magic: u64,
    pub(crate) inner: RwLock<Detector>,
}
impl_handle!(cdad_detector wraps RwLock<Detector>, magic 0x6364_6164_6465_7465);

/// Reports progress of a long call: `fraction` in [0, 1], `stage` names the current
/// step ("loading", "training", ...; valid during the call only). Return 0 to continue,
/// any other value to cancel: the call then returns `CDAD_ERR_CANCELLED` and the
/// detector is unchanged.
#[allow(non_camel_case_types)]
pub type cdad_progress_callback =
    Option<unsafe extern "C" fn(fraction: f32, stage: *const c_char, user: *mut c_void) -> i32>;

fn read<'a>(
    detector: &'a cdad_detector,
    what: &'static str,
) -> Result<RwLockReadGuard<'a, Detector>, FfiError> {
    match detector.inner.try_read() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::WouldBlock) => Err(FfiError::Busy(what)),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
    }
}

fn write<'a>(
    detector: &'a cdad_detector,
    what: &'static str,
) -> Result<RwLockWriteGuard<'a, Detector>, FfiError> {
    match detector.inner.try_write() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::WouldBlock) => Err(FfiError::Busy(what)),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
    }
}

/// Creates a detector from a configuration (checked with `cdad_config_validate`; the
/// configuration is copied, so it may be freed afterwards).
#[no_mangle]
pub extern "C" fn cdad_detector_create(
    config: *const cdad_config,
    out: *mut *mut cdad_detector,
) -> cdad_status {
    call("cdad_detector_create", || {
        let config = borrow(config, "config")?.inner.clone();
        if out.is_null() {
            return Err(FfiError::NullPointer("out"));
        }
        hand_out(out, cdad_detector::new(RwLock::new(Detector::new(config)?)))
    })
}

/// Releases a detector. NULL is a no-op. Must not run concurrently with other calls on it.
#[no_mangle]
pub extern "C" fn cdad_detector_free(detector: *mut cdad_detector) {
    call("cdad_detector_free", || free(detector, "detector"));
}

/// Adds a task (its classes and good images are copied from `task`, which may be freed
/// afterwards) and stores its id (0, 1, ...) in `*task_id`. Class names must be new.
#[no_mangle]
pub extern "C" fn cdad_detector_add_task(
    detector: *const cdad_detector,
    task: *const cdad_task,
    task_id: *mut usize,
) -> cdad_status {
    call("cdad_detector_add_task", || {
        let detector = borrow(detector, "detector")?;
        let data = borrow(task, "task")?.inner.clone();
        if task_id.is_null() {
            return Err(FfiError::NullPointer("task_id"));
        }
        let id = write(detector, "another call")?.add_task(data)?;
        write_out(task_id, id, "task_id")
    })
}

/// Trains task `task_id` (tasks are trained in the order they were added). `progress`
/// (nullable) reports progress and can cancel. A cancelled or failed training leaves
/// the detector exactly as it was.
#[no_mangle]
pub extern "C" fn cdad_detector_train_task(
    detector: *const cdad_detector,
    task_id: usize,
    progress: cdad_progress_callback,
    user: *mut c_void,
) -> cdad_status {
    call("cdad_detector_train_task", || {
        let detector = borrow(detector, "detector")?;
        let mut guard = write(detector, "another call")?;
        guard.train_task(task_id, |fraction, stage| match progress {
            None => true,
            Some(callback) => {
                let stage = CString::new(stage).unwrap_or_default();
                // SAFETY: the host installed this callback for the duration of the call.
                unsafe { callback(fraction as f32, stage.as_ptr(), user) == 0 }
            }
        })?;
        Ok(())
    })
}

/// Writes an anomaly map into a caller buffer of `height` rows of `width` floats,
/// rows `row_stride` bytes apart.
fn write_map(map: &AnomalyMap, out: *mut f32, row_stride: usize) -> Result<(), FfiError> {
    let row_bytes = map.width * std::mem::size_of::<f32>();
    if row_stride < row_bytes {
        return Err(Error::invalid(format!(
            "map row stride {row_stride} bytes is shorter than one row ({} floats = {row_bytes} bytes)",
            map.width
        ))
        .into());
    }
    for (y, row) in map.values.chunks(map.width).enumerate() {
        // SAFETY: the caller provides `height` rows of `row_stride` bytes at `out`.
        unsafe {
            let destination = (out as *mut u8).add(y * row_stride);
            std::ptr::copy_nonoverlapping(row.as_ptr() as *const u8, destination, row_bytes);
        }
    }
    Ok(())
}

/// Computes the anomaly map (higher = more anomalous) and the image score of one image.
/// `map` (nullable: score only) receives `image->height` rows of `image->width` floats,
/// `map_row_stride` bytes apart (at least `4 * width`); the library never keeps the
/// pointer. `score` receives the image score. Needs a trained task.
#[no_mangle]
pub extern "C" fn cdad_detector_infer(
    detector: *const cdad_detector,
    image: *const cdad_image,
    map: *mut f32,
    map_row_stride: usize,
    score: *mut f32,
) -> cdad_status {
    call("cdad_detector_infer", || {
        let detector = borrow(detector, "detector")?;
        let rgb = rgb_image(image, "image")?;
        if score.is_null() {
            return Err(FfiError::NullPointer("score"));
        }
        if !map.is_null() && map_row_stride < rgb.width() * 4 {
            return Err(Error::invalid(format!(
                "map row stride {map_row_stride} bytes is shorter than one row of {} floats",
                rgb.width()
            ))
            .into());
        }
        let result = read(detector, "a training")?.infer(&rgb)?;
        if !map.is_null() {
            write_map(&result, map, map_row_stride)?;
        }
        write_out(score, result.score, "score")
    })
}

/// Batched `cdad_detector_infer`: `count` images, `maps[i]` (the array and each entry
/// nullable) with row strides `map_row_strides[i]` (nullable when `maps` is NULL), and
/// `scores` (room for `count` floats). Faster than single calls on larger batches.
#[no_mangle]
pub extern "C" fn cdad_detector_infer_batch(
    detector: *const cdad_detector,
    images: *const cdad_image,
    count: usize,
    maps: *const *mut f32,
    map_row_strides: *const usize,
    scores: *mut f32,
) -> cdad_status {
    call("cdad_detector_infer_batch", || {
        let detector = borrow(detector, "detector")?;
        if count == 0 || count > 1 << 20 {
            return Err(Error::invalid(format!("count {count} must be in 1..=1048576")).into());
        }
        if images.is_null() {
            return Err(FfiError::NullPointer("images"));
        }
        if scores.is_null() {
            return Err(FfiError::NullPointer("scores"));
        }
        if !maps.is_null() && map_row_strides.is_null() {
            return Err(FfiError::NullPointer("map_row_strides"));
        }
        let rgb = (0..count)
            // SAFETY: `images` holds `count` descriptors (caller contract).
            .map(|i| rgb_image(unsafe { images.add(i) }, "images[i]"))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, image) in rgb.iter().enumerate() {
            // SAFETY: both arrays hold `count` entries when non-NULL.
            let (target, stride) = if maps.is_null() {
                (std::ptr::null_mut(), 0)
            } else {
                unsafe { (*maps.add(i), *map_row_strides.add(i)) }
            };
            if !target.is_null() && stride < image.width() * 4 {
                return Err(Error::invalid(format!(
                    "map_row_strides[{i}] = {stride} bytes is shorter than one row"
                ))
                .into());
            }
        }
        let results = read(detector, "a training")?.infer_batch(&rgb)?;
        for (i, result) in results.iter().enumerate() {
            if !maps.is_null() {
                // SAFETY: as above.
                let (target, stride) = unsafe { (*maps.add(i), *map_row_strides.add(i)) };
                if !target.is_null() {
                    write_map(result, target, stride)?;
                }
            }
            // SAFETY: `scores` holds `count` floats.
            unsafe { *scores.add(i) = result.score };
        }
        Ok(())
    })
}

/// Saves the detector (configuration, task registry, every weight) to one file,
/// atomically: an existing file is replaced only when the new one is complete.
#[no_mangle]
pub extern "C" fn cdad_detector_save(
    detector: *const cdad_detector,
    path: *const c_char,
) -> cdad_status {
    call("cdad_detector_save", || {
        let detector = borrow(detector, "detector")?;
        let path = text_arg(path, "path")?;
        Ok(read(detector, "a training")?.save(Path::new(path))?)
    })
}

/// Loads a detector saved with `cdad_detector_save`. `device` (nullable: the saved
/// configuration's) overrides the compute device ("cpu", "cuda:N", "auto"). A
/// truncated, corrupted or incompatible file is refused with `CDAD_ERR_FILE_FORMAT`.
#[no_mangle]
pub extern "C" fn cdad_detector_load(
    path: *const c_char,
    device: *const c_char,
    out: *mut *mut cdad_detector,
) -> cdad_status {
    call("cdad_detector_load", || {
        let path = text_arg(path, "path")?;
        let device = if device.is_null() {
            None
        } else {
            Some(text_arg(device, "device")?.parse()?)
        };
        if out.is_null() {
            return Err(FfiError::NullPointer("out"));
        }
        hand_out(
            out,
            cdad_detector::new(RwLock::new(Detector::load(Path::new(path), device)?)),
        )
    })
}

/// Changes an inference-only key of a detector (`start_step`, `ddim_steps`,
/// `map_seeds`, `map_sigma`), trained or not; the value is saved with the model. Any
/// other key, a wrong type or a value out of range is refused and changes nothing.
#[no_mangle]
pub extern "C" fn cdad_detector_set_inference_int(
    detector: *const cdad_detector,
    key: *const c_char,
    value: i64,
) -> cdad_status {
    call("cdad_detector_set_inference_int", || {
        set_inference(detector, key, Value::Int(value))
    })
}

/// Like `cdad_detector_set_inference_int`, for a float key (`map_sigma`).
#[no_mangle]
pub extern "C" fn cdad_detector_set_inference_float(
    detector: *const cdad_detector,
    key: *const c_char,
    value: f64,
) -> cdad_status {
    call("cdad_detector_set_inference_float", || {
        set_inference(detector, key, Value::Float(value))
    })
}

fn set_inference(
    detector: *const cdad_detector,
    key: *const c_char,
    value: Value,
) -> Result<(), FfiError> {
    let detector = borrow(detector, "detector")?;
    let key = text_arg(key, "key")?;
    Ok(write(detector, "another call")?.set_inference_key(key, value)?)
}

/// Stores the number of tasks in `*count` and, in `*trained` (nullable), how many of
/// them are trained.
#[no_mangle]
pub extern "C" fn cdad_detector_task_count(
    detector: *const cdad_detector,
    count: *mut usize,
    trained: *mut usize,
) -> cdad_status {
    call("cdad_detector_task_count", || {
        let detector = borrow(detector, "detector")?;
        let guard = read(detector, "a training")?;
        if !trained.is_null() {
            write_out(
                trained,
                guard.tasks().iter().filter(|t| t.trained).count(),
                "trained",
            )?;
        }
        write_out(count, guard.tasks().len(), "count")
    })
}
