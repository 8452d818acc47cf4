//! The library's error type. Every fallible Rust API returns [`Result`]; the C boundary
//! maps each variant to one `cdad_status` code.

use std::path::PathBuf;

/// Everything that can go wrong inside cdad, with a message that says what was wrong
/// and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument is malformed or inconsistent with the others.
    #[error("{0}")]
    InvalidArgument(String),
    /// A configuration key that does not exist.
    #[error("unknown configuration key '{key}'; known keys: {known}")]
    UnknownKey {
        /// The key that was asked for.
        key: String,
        /// Every key the configuration knows, comma separated.
        known: String,
    },
    /// A configuration value of the wrong type for its key.
    #[error("configuration key '{key}' holds {expected}, not {given}")]
    WrongType {
        /// The key.
        key: String,
        /// The type the key holds.
        expected: &'static str,
        /// The type that was given.
        given: &'static str,
    },
    /// A configuration value outside the accepted range or set of choices.
    #[error("configuration key '{key}': {value} is not accepted; expected {accepted}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The rejected value, as text.
        value: String,
        /// What the key accepts.
        accepted: String,
    },
    /// An image descriptor or image buffer that cannot be read as described.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// A compute device that is not available in this process.
    #[error("device unavailable: {0}")]
    DeviceUnavailable(String),
    /// A caller buffer too small for the result; `needed` is the size that fits.
    #[error("buffer too small: {needed} elements needed, {given} given")]
    BufferTooSmall {
        /// Elements (bytes for text, including the terminating NUL) that are needed.
        needed: usize,
        /// Elements the caller provided.
        given: usize,
    },
    /// Training produced a non-finite loss or gradient; the weights were left as they
    /// were before the failing step.
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The caller cancelled a long call through its progress callback; nothing changed.
    #[error("cancelled by the caller; the detector is unchanged")]
    Cancelled,
    /// A call that does not fit the detector's current state (e.g. inferring before any
    /// task was trained, training a task twice).
    #[error("{0}")]
    State(String),
    /// A model file that is not a cdad model, is of another format version, is
    /// truncated or fails its checksum.
    #[error("{0}")]
    FileFormat(String),
    /// A file that cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system reported.
        source: std::io::Error,
    },
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an [`Error::InvalidArgument`] from anything printable.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidArgument(message.into())
    }
}
