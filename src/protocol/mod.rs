//! The continual protocol: settings, and running them task after task.

mod runner;
mod setting;

pub use runner::{run_protocol, Method, ProtocolResult, METRICS};
pub use setting::Setting;
