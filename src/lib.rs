//! cdad: continual diffusion anomaly detection for industrial inspection.
//!
//! A conditional diffusion model learns product classes task after task without
//! forgetting earlier ones (gradient projection with an iterative SVD), and an
//! anomaly-masked condition network keeps defects out of the reconstruction. The crate
//! is usable from Rust and, through `include/cdad.h`, from C and C++.

pub mod config;
pub mod continual;
pub mod data;
pub mod detector;
pub mod device;
pub mod error;
pub mod ffi;
pub mod image;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod protocol;

pub use config::{Config, Preset};
pub use error::{Error, Result};
