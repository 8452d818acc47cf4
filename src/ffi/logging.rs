//! Routing the library's log messages to the host.

use super::boundary::call;
use super::status::cdad_status;
use crate::error::Error;
use crate::logging::{set_sink, LogSink};
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

/// Severity of a log message; a callback receives messages at or above its chosen level.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_log_level {
    /// Log nothing.
    CDAD_LOG_OFF = 0,
    /// Failures.
    CDAD_LOG_ERROR = 1,
    /// Suspicious situations that do not fail the call.
    CDAD_LOG_WARN = 2,
    /// Progress of long calls (training, evaluation).
    CDAD_LOG_INFO = 3,
    /// Details useful while integrating (every failed call's message, for example).
    CDAD_LOG_DEBUG = 4,
    /// Very detailed tracing.
    CDAD_LOG_TRACE = 5,
}

/// Receives one log message. `target` names the library module, `message` the event;
/// both are valid only during the call. May be called from any thread that runs a cdad
/// function, so it must be thread-safe.
#[allow(non_camel_case_types)]
pub type cdad_log_callback = Option<
    unsafe extern "C" fn(
        level: i32,
        target: *const c_char,
        message: *const c_char,
        user: *mut c_void,
    ),
>;

struct CallbackSink {
    callback: unsafe extern "C" fn(i32, *const c_char, *const c_char, *mut c_void),
    user: usize,
}

impl LogSink for CallbackSink {
    fn log(&self, level: log::Level, target: &str, message: &str) {
        let code = match level {
            log::Level::Error => cdad_log_level::CDAD_LOG_ERROR,
            log::Level::Warn => cdad_log_level::CDAD_LOG_WARN,
            log::Level::Info => cdad_log_level::CDAD_LOG_INFO,
            log::Level::Debug => cdad_log_level::CDAD_LOG_DEBUG,
            log::Level::Trace => cdad_log_level::CDAD_LOG_TRACE,
        };
        let target = CString::new(target.replace('\0', " ")).unwrap_or_default();
        let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: the host installed this callback and promised it is thread-safe.
        unsafe {
            (self.callback)(
                code as i32,
                target.as_ptr(),
                message.as_ptr(),
                self.user as *mut c_void,
            )
        };
    }
}

/// Installs (or, with `callback` NULL or `level` CDAD_LOG_OFF, removes) the process-wide
/// log callback. `level` is a `cdad_log_level`; `user` is passed back unchanged. Messages
/// also go to env_logger (stderr), filtered by the `RUST_LOG` environment variable.
#[no_mangle]
pub extern "C" fn cdad_set_log_callback(
    callback: cdad_log_callback,
    level: i32,
    user: *mut c_void,
) -> cdad_status {
    call("cdad_set_log_callback", || {
        let filter = match level {
            0 => log::LevelFilter::Off,
            1 => log::LevelFilter::Error,
            2 => log::LevelFilter::Warn,
            3 => log::LevelFilter::Info,
            4 => log::LevelFilter::Debug,
            5 => log::LevelFilter::Trace,
            other => {
                return Err(Error::invalid(format!(
                    "level {other} is not a cdad_log_level; expected 0 (OFF) ..= 5 (TRACE)"
                ))
                .into())
            }
        };
        let sink = match callback {
            Some(callback) if filter != log::LevelFilter::Off => Some((
                Arc::new(CallbackSink {
                    callback,
                    user: user as usize,
                }) as Arc<dyn LogSink>,
                filter,
            )),
            _ => None,
        };
        set_sink(sink);
        Ok(())
    })
}
