//! Compute-device selection: what the user asks for, and what this process can give.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The device a configuration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
    /// CUDA device 0 when libtorch has CUDA and a GPU is present, else the CPU.
    Auto,
}

impl DeviceChoice {
    /// The libtorch device this choice means in this process, or an error naming what
    /// is missing when a CUDA device was asked for and is not there.
    pub fn resolve(self) -> Result<tch::Device> {
        let available = tch::Cuda::device_count().max(0) as usize;
        match self {
            DeviceChoice::Cpu => Ok(tch::Device::Cpu),
            DeviceChoice::Auto if available > 0 => Ok(tch::Device::Cuda(0)),
            DeviceChoice::Auto => Ok(tch::Device::Cpu),
            DeviceChoice::Cuda(n) if n < available => Ok(tch::Device::Cuda(n)),
            DeviceChoice::Cuda(n) => Err(Error::DeviceUnavailable(format!(
                "cuda:{n} was requested but this process sees {available} CUDA device(s); \
                 use 'cpu' or 'auto', or link a CUDA build of libtorch 2.11 via LIBTORCH"
            ))),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Auto => write!(f, "auto"),
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let parsed = match text {
            "cpu" => Some(DeviceChoice::Cpu),
            "auto" => Some(DeviceChoice::Auto),
            "cuda" => Some(DeviceChoice::Cuda(0)),
            _ => text
                .strip_prefix("cuda:")
                .filter(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda),
        };
        parsed.ok_or_else(|| {
            Error::invalid(format!(
                "unknown device '{text}'; expected 'cpu', 'cuda', 'cuda:N' or 'auto'"
            ))
        })
    }
}

/// The name of a libtorch device, in the same spelling as [`DeviceChoice`].
pub fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(n) => format!("cuda:{n}"),
        _ => "cpu".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse_and_print() {
        for (text, choice) in [
            ("cpu", DeviceChoice::Cpu),
            ("auto", DeviceChoice::Auto),
            ("cuda", DeviceChoice::Cuda(0)),
            ("cuda:3", DeviceChoice::Cuda(3)),
        ] {
            assert_eq!(text.parse::<DeviceChoice>().unwrap(), choice);
        }
        assert_eq!(DeviceChoice::Cuda(3).to_string(), "cuda:3");
        for bad in ["", "CPU", "cuda:", "cuda:-1", "cuda:x", "cuda:99999", "gpu"] {
            assert!(bad.parse::<DeviceChoice>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn cpu_and_auto_resolve_and_missing_cuda_is_an_error() {
        assert_eq!(DeviceChoice::Cpu.resolve().unwrap(), tch::Device::Cpu);
        let gpus = tch::Cuda::device_count() as usize;
        let auto = DeviceChoice::Auto.resolve().unwrap();
        assert_eq!(
            auto,
            if gpus > 0 {
                tch::Device::Cuda(0)
            } else {
                tch::Device::Cpu
            }
        );
        let err = DeviceChoice::Cuda(gpus).resolve().unwrap_err();
        assert!(matches!(err, Error::DeviceUnavailable(_)), "{err}");
        assert!(err.to_string().contains(&format!("cuda:{gpus}")), "{err}");
    }
}
