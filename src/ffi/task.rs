//! `cdad_task`: the training data of one task (classes with good images), assembled
//! from datasets on disk and from caller images, then handed to a detector.
//!
//! Thread safety: a task may move between threads; it must not be modified
//! concurrently with any other call on the same handle.

use super::boundary::call;
use super::handles::{borrow, borrow_mut, free, hand_out, impl_handle, text_arg, write_out};
use super::image::{cdad_image, rgb_image};
use super::status::cdad_status;
use crate::data::dataset::DatasetLayout;
use crate::data::task::TaskData;
use crate::error::Error;
use std::ffi::c_char;
use std::path::Path;

/// Dataset layouts for `cdad_task_add_class_from_dataset`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_dataset_layout {
    /// Recognise the layout from the files.
    CDAD_DATASET_AUTO = 0,
    /// `<root>/<class>/train/good`, `test/<kind>`, `ground_truth/<kind>/<name>_mask.png`.
    CDAD_DATASET_MVTEC_AD = 1,
    /// VisA: a split CSV (`<root>/split_csv/1cls.csv`, or the CSV's path as root).
    CDAD_DATASET_VISA = 2,
    /// One class in plain folders: `<root>/good`, optional `test_good`, `defect`, `mask`.
    CDAD_DATASET_FOLDER = 3,
}

/// The training data of one task: named classes, each with good images.
#[allow(non_camel_case_types)]
pub struct cdad_task {
    magic: u64,
    pub(crate) inner: TaskData,
}
impl_handle!(cdad_task wraps TaskData, magic 0x6364_6164_7461_736b);

/// Creates an empty task called `name` (1..=256 printable characters).
#[no_mangle]
pub extern "C" fn cdad_task_new(name: *const c_char, out: *mut *mut cdad_task) -> cdad_status {
    call("cdad_task_new", || {
        let task = TaskData::new(text_arg(name, "name")?)?;
        hand_out(out, cdad_task::new(task))
    })
}

/// Releases a task. NULL is a no-op.
#[no_mangle]
pub extern "C" fn cdad_task_free(task: *mut cdad_task) {
    call("cdad_task_free", || free(task, "task"));
}

/// Adds class `class_name` with all good training images of the dataset at `root`.
/// `layout` is a `cdad_dataset_layout`. Each image file must exist and have a readable
/// header. Errors (unknown class, corrupt file, class already in the task, ...) name
/// the problem; on error the task is unchanged.
#[no_mangle]
pub extern "C" fn cdad_task_add_class_from_dataset(
    task: *mut cdad_task,
    root: *const c_char,
    class_name: *const c_char,
    layout: i32,
) -> cdad_status {
    call("cdad_task_add_class_from_dataset", || {
        let task = borrow_mut(task, "task")?;
        let root = text_arg(root, "root")?;
        let class_name = text_arg(class_name, "class_name")?;
        let layout = match layout {
            0 => None,
            1 => Some(DatasetLayout::MvtecAd),
            2 => Some(DatasetLayout::Visa),
            3 => Some(DatasetLayout::Folder),
            other => {
                return Err(Error::invalid(format!(
                    "layout {other} is not a cdad_dataset_layout; expected 0 (AUTO) ..= 3 (FOLDER)"
                ))
                .into())
            }
        };
        Ok(task
            .inner
            .add_class_from_dataset(Path::new(root), class_name, layout)?)
    })
}

/// Adds one good image to class `class_name` (created if new). The pixels are copied
/// during the call.
#[no_mangle]
pub extern "C" fn cdad_task_add_image(
    task: *mut cdad_task,
    class_name: *const c_char,
    image: *const cdad_image,
) -> cdad_status {
    call("cdad_task_add_image", || {
        let task = borrow_mut(task, "task")?;
        let class_name = text_arg(class_name, "class_name")?;
        let image = rgb_image(image, "image")?;
        Ok(task.inner.add_image(class_name, image)?)
    })
}

/// Stores the number of classes in `*count`.
#[no_mangle]
pub extern "C" fn cdad_task_class_count(task: *const cdad_task, count: *mut usize) -> cdad_status {
    call("cdad_task_class_count", || {
        write_out(count, borrow(task, "task")?.inner.classes().len(), "count")
    })
}

/// Stores the number of good images of class `class_name` in `*count`; an unknown
/// class is `CDAD_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub extern "C" fn cdad_task_image_count(
    task: *const cdad_task,
    class_name: *const c_char,
    count: *mut usize,
) -> cdad_status {
    call("cdad_task_image_count", || {
        let task = &borrow(task, "task")?.inner;
        let name = text_arg(class_name, "class_name")?;
        let class = task.class(name).ok_or_else(|| {
            let known: Vec<_> = task.classes().iter().map(|c| c.name.as_str()).collect();
            Error::invalid(format!(
                "task '{}' has no class '{name}'; it has: {}",
                task.name(),
                known.join(", ")
            ))
        })?;
        write_out(count, class.images.len(), "count")
    })
}
