//! The C ABI. Conventions, shared by every function:
//!
//! * Every fallible function returns `cdad_status` (`CDAD_OK` = 0); results go to
//!   out-parameters, which are written only on success.
//! * On failure, `cdad_last_error_message()` on the same thread says what was wrong and
//!   what was expected.
//! * Every pointer is checked for NULL, every handle for its type tag, every size and
//!   enum value for range; a panic inside becomes `CDAD_ERR_PANIC` and never unwinds
//!   into C.
//! * Handles are created by `*_new` and released by `*_free` (NULL is a no-op).

mod benchmark;
mod boundary;
mod config;
mod detector;
mod handles;
mod image;
mod image_files;
mod logging;
mod report;
mod status;
mod task;
mod version;

pub use benchmark::cdad_benchmark_generate;
pub use boundary::cdad_last_error_message;
pub use config::*;
pub use detector::*;
pub use image::{cdad_image, cdad_image_check, cdad_image_to_rgb, cdad_layout, cdad_pixel_format};
pub use image_files::{cdad_image_file_read, cdad_overlay_write_png};
pub use logging::{cdad_log_callback, cdad_log_level, cdad_set_log_callback};
pub use report::*;
pub use status::{cdad_status, cdad_status_name};
pub use task::*;
pub use version::{cdad_cuda_device_count, cdad_version};
