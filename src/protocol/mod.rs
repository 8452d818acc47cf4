//! The continual protocol: settings, and running them task after task.

mod setting;

pub use setting::Setting;
