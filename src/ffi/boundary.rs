//! The panic boundary and the per-thread last-error message. Every C entry point runs
//! its body through [`call`], so no panic unwinds into C and every failure leaves a
//! message behind.

use super::status::cdad_status;
use crate::error::Error;
use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Errors that only exist at the C boundary, plus every library error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    /// A required pointer argument was NULL.
    #[error("argument '{0}' is NULL; a valid pointer is required")]
    NullPointer(&'static str),
    /// A handle whose tag does not match its type.
    #[error(
        "argument '{argument}' is not a live {expected} handle (freed, foreign or of another type)"
    )]
    InvalidHandle {
        /// The argument's name.
        argument: &'static str,
        /// The handle type that was expected.
        expected: &'static str,
    },
    /// The handle is in use by a call that needs exclusive access.
    #[error("the detector is busy with {0}; try again when it has finished")]
    Busy(&'static str),
    /// A panic inside the library.
    #[error("internal error (panic) in {0}; the call had no effect")]
    Panic(String),
    /// Any library error.
    #[error(transparent)]
    Library(#[from] Error),
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn remember(message: String) {
    let message = CString::new(message.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|slot| *slot.borrow_mut() = message);
}

/// Runs an entry point's body: catches panics, maps errors to a status and records the
/// message. `name` is the C function's name, used in messages and logs.
pub(crate) fn call(name: &'static str, body: impl FnOnce() -> Result<(), FfiError>) -> cdad_status {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_string());
        Err(FfiError::Panic(format!("{name}: {detail}")))
    });
    match outcome {
        Ok(()) => cdad_status::CDAD_OK,
        Err(error) => {
            let status = cdad_status::of(&error);
            let message = format!("{name}: {error}");
            log::debug!("{message}");
            remember(message);
            status
        }
    }
}

/// The message of the most recent failed call on this thread (empty if none failed).
/// The string stays valid until the next failing call on this thread; copy it to keep it.
/// Never NULL.
#[no_mangle]
pub extern "C" fn cdad_last_error_message() -> *const c_char {
    LAST_ERROR.with(|slot| slot.borrow().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_message() -> String {
        unsafe { CStr::from_ptr(cdad_last_error_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let status = call("cdad_test_entry", || panic!("forced failure {}", 7));
        assert_eq!(status, cdad_status::CDAD_ERR_PANIC);
        let message = last_message();
        assert!(message.contains("cdad_test_entry"), "{message}");
        assert!(message.contains("forced failure 7"), "{message}");
        // The thread (and process) carries on.
        assert_eq!(call("cdad_test_entry", || Ok(())), cdad_status::CDAD_OK);
    }

    #[test]
    fn errors_map_to_their_status_and_keep_the_message() {
        let status = call("cdad_test_entry", || Err(FfiError::NullPointer("out")));
        assert_eq!(status, cdad_status::CDAD_ERR_NULL_POINTER);
        assert_eq!(
            last_message(),
            "cdad_test_entry: argument 'out' is NULL; a valid pointer is required"
        );
    }

    #[test]
    fn success_leaves_the_last_message_alone() {
        call("first", || Err(Error::invalid("broken").into()));
        assert_eq!(call("second", || Ok(())), cdad_status::CDAD_OK);
        assert_eq!(last_message(), "first: broken");
    }

    #[test]
    fn the_message_is_per_thread() {
        call("here", || Err(Error::invalid("on this thread").into()));
        let other = std::thread::spawn(last_message).join().unwrap();
        assert_eq!(other, "");
        assert_eq!(last_message(), "here: on this thread");
    }
}
