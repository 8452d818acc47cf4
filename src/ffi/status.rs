//! Status codes returned by every fallible C entry point.

use super::boundary::FfiError;
use crate::error::Error;
use std::ffi::{c_char, CStr};

/// The result of a C API call. `CDAD_OK` is zero; every other value is an error whose
/// message `cdad_last_error_message()` returns on the same thread. Codes are stable:
/// new ones are only ever appended.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_status {
    /// Success.
    CDAD_OK = 0,
    /// A required pointer argument was NULL.
    CDAD_ERR_NULL_POINTER = 1,
    /// A handle was not created by this library, was freed, or is of another type.
    CDAD_ERR_INVALID_HANDLE = 2,
    /// An argument is malformed or inconsistent (not UTF-8, unknown name, bad size).
    CDAD_ERR_INVALID_ARGUMENT = 3,
    /// A configuration key does not exist.
    CDAD_ERR_UNKNOWN_KEY = 4,
    /// A configuration value has the wrong type for its key.
    CDAD_ERR_WRONG_TYPE = 5,
    /// A configuration value lies outside its key's accepted range or choices.
    CDAD_ERR_OUT_OF_RANGE = 6,
    /// An image descriptor or its pixels cannot be read as described.
    CDAD_ERR_INVALID_IMAGE = 7,
    /// A caller buffer is too small; the message says how large it must be.
    CDAD_ERR_BUFFER_TOO_SMALL = 8,
    /// The requested compute device is not available in this process.
    CDAD_ERR_DEVICE_UNAVAILABLE = 9,
    /// A file could not be read or written.
    CDAD_ERR_IO = 10,
    /// Training met a non-finite loss or gradient and stopped; weights are unchanged.
    CDAD_ERR_NUMERICAL = 11,
    /// The caller cancelled the call through its progress callback; nothing changed.
    CDAD_ERR_CANCELLED = 12,
    /// The call does not fit the detector's state (e.g. infer before training).
    CDAD_ERR_STATE = 13,
    /// The detector is busy with another call that needs exclusive access.
    CDAD_ERR_BUSY = 14,
    /// The file is not a cdad model, has another format version, is truncated or corrupt.
    CDAD_ERR_FILE_FORMAT = 15,
    /// The library caught an internal panic; the process is intact, the call had no effect.
    CDAD_ERR_PANIC = 255,
}

impl cdad_status {
    /// The status a library error maps to.
    pub(crate) fn of(error: &FfiError) -> cdad_status {
        use cdad_status::*;
        match error {
            FfiError::NullPointer(_) => CDAD_ERR_NULL_POINTER,
            FfiError::InvalidHandle { .. } => CDAD_ERR_INVALID_HANDLE,
            FfiError::Panic(_) => CDAD_ERR_PANIC,
            FfiError::Busy(_) => CDAD_ERR_BUSY,
            FfiError::Library(e) => match e {
                Error::InvalidArgument(_) => CDAD_ERR_INVALID_ARGUMENT,
                Error::UnknownKey { .. } => CDAD_ERR_UNKNOWN_KEY,
                Error::WrongType { .. } => CDAD_ERR_WRONG_TYPE,
                Error::OutOfRange { .. } => CDAD_ERR_OUT_OF_RANGE,
                Error::InvalidImage(_) => CDAD_ERR_INVALID_IMAGE,
                Error::BufferTooSmall { .. } => CDAD_ERR_BUFFER_TOO_SMALL,
                Error::DeviceUnavailable(_) => CDAD_ERR_DEVICE_UNAVAILABLE,
                Error::Io { .. } => CDAD_ERR_IO,
                Error::Numerical(_) => CDAD_ERR_NUMERICAL,
                Error::Cancelled => CDAD_ERR_CANCELLED,
                Error::State(_) => CDAD_ERR_STATE,
                Error::FileFormat(_) => CDAD_ERR_FILE_FORMAT,
            },
        }
    }

    fn name(self) -> &'static CStr {
        use cdad_status::*;
        match self {
            CDAD_OK => c"CDAD_OK",
            CDAD_ERR_NULL_POINTER => c"CDAD_ERR_NULL_POINTER",
            CDAD_ERR_INVALID_HANDLE => c"CDAD_ERR_INVALID_HANDLE",
            CDAD_ERR_INVALID_ARGUMENT => c"CDAD_ERR_INVALID_ARGUMENT",
            CDAD_ERR_UNKNOWN_KEY => c"CDAD_ERR_UNKNOWN_KEY",
            CDAD_ERR_WRONG_TYPE => c"CDAD_ERR_WRONG_TYPE",
            CDAD_ERR_OUT_OF_RANGE => c"CDAD_ERR_OUT_OF_RANGE",
            CDAD_ERR_INVALID_IMAGE => c"CDAD_ERR_INVALID_IMAGE",
            CDAD_ERR_BUFFER_TOO_SMALL => c"CDAD_ERR_BUFFER_TOO_SMALL",
            CDAD_ERR_DEVICE_UNAVAILABLE => c"CDAD_ERR_DEVICE_UNAVAILABLE",
            CDAD_ERR_IO => c"CDAD_ERR_IO",
            CDAD_ERR_NUMERICAL => c"CDAD_ERR_NUMERICAL",
            CDAD_ERR_CANCELLED => c"CDAD_ERR_CANCELLED",
            CDAD_ERR_STATE => c"CDAD_ERR_STATE",
            CDAD_ERR_BUSY => c"CDAD_ERR_BUSY",
            CDAD_ERR_FILE_FORMAT => c"CDAD_ERR_FILE_FORMAT",
            CDAD_ERR_PANIC => c"CDAD_ERR_PANIC",
        }
    }
}

/// The name of a status code as a static string, e.g. `"CDAD_ERR_OUT_OF_RANGE"`;
/// `"CDAD_UNKNOWN_STATUS"` for a value that is not a status code. Never NULL.
#[no_mangle]
pub extern "C" fn cdad_status_name(status: i32) -> *const c_char {
    use cdad_status::*;
    const ALL: [cdad_status; 17] = [
        CDAD_OK,
        CDAD_ERR_NULL_POINTER,
        CDAD_ERR_INVALID_HANDLE,
        CDAD_ERR_INVALID_ARGUMENT,
        CDAD_ERR_UNKNOWN_KEY,
        CDAD_ERR_WRONG_TYPE,
        CDAD_ERR_OUT_OF_RANGE,
        CDAD_ERR_INVALID_IMAGE,
        CDAD_ERR_BUFFER_TOO_SMALL,
        CDAD_ERR_DEVICE_UNAVAILABLE,
        CDAD_ERR_IO,
        CDAD_ERR_NUMERICAL,
        CDAD_ERR_CANCELLED,
        CDAD_ERR_STATE,
        CDAD_ERR_BUSY,
        CDAD_ERR_FILE_FORMAT,
        CDAD_ERR_PANIC,
    ];
    ALL.iter()
        .find(|s| **s as i32 == status)
        .map_or(c"CDAD_UNKNOWN_STATUS", |s| s.name())
        .as_ptr()
}
