//! Library version and build facts.

use super::boundary::call;
use super::handles::write_out;
use super::status::cdad_status;
use std::ffi::c_char;

/// The library version as `"MAJOR.MINOR.PATCH"`; matches the header's `CDAD_VERSION_*`
/// macros when header and library belong together. Static; never NULL.
#[no_mangle]
pub extern "C" fn cdad_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr() as *const c_char
}

/// Stores in `*count` how many CUDA devices the linked libtorch can use (0 with the
/// CPU-only libtorch).
#[no_mangle]
pub extern "C" fn cdad_cuda_device_count(count: *mut usize) -> cdad_status {
    call("cdad_cuda_device_count", || {
        write_out(count, tch::Cuda::device_count().max(0) as usize, "count")
    })
}
