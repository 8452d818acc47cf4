//! `cdad_config`: presets and typed get/set by key.
//!
//! Thread safety: a configuration may move between threads; calls that modify it must
//! not run concurrently with any other call on the same handle.

use super::boundary::{call, FfiError};
use super::handles::{
    borrow, borrow_mut, free, hand_out, impl_handle, text_arg, write_array, write_out, write_text,
};
use super::status::cdad_status;
use crate::config::value::Value;
use crate::config::{Config, Preset};
use crate::device::device_name;
use crate::error::Error;
use std::ffi::c_char;

/// A detector configuration: every tunable value, starting from a preset.
#[allow(non_camel_case_types)]
pub struct cdad_config {
    magic: u64,
    pub(crate) inner: Config,
}
impl_handle!(cdad_config wraps Config, magic 0x6364_6164_636f_6e66);

/// Creates a configuration from a preset: `"tiny"`, `"compact"` (the default when
/// `preset` is NULL) or `"paper"`. Release it with `cdad_config_free`.
#[no_mangle]
pub extern "C" fn cdad_config_new(
    preset: *const c_char,
    out: *mut *mut cdad_config,
) -> cdad_status {
    call("cdad_config_new", || {
        let preset: Preset = if preset.is_null() {
            Preset::Compact
        } else {
            text_arg(preset, "preset")?.parse()?
        };
        log::debug!("configuration created from preset {preset:?}");
        hand_out(out, cdad_config::new(preset.config()))
    })
}

/// Creates a configuration from JSON as written by `cdad_config_to_json`. Keys left out
/// keep the compact preset's values; an unknown key or a bad value is an error.
#[no_mangle]
pub extern "C" fn cdad_config_from_json(
    json: *const c_char,
    out: *mut *mut cdad_config,
) -> cdad_status {
    call("cdad_config_from_json", || {
        let text = text_arg(json, "json")?;
        let parsed: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("configuration JSON does not parse: {e}")))?;
        let config = Config::from_json(&parsed)?;
        hand_out(out, cdad_config::new(config))
    })
}

/// Releases a configuration. NULL is a no-op.
#[no_mangle]
pub extern "C" fn cdad_config_free(config: *mut cdad_config) {
    call("cdad_config_free", || free(config, "config"));
}

fn set(
    config: *mut cdad_config,
    key: *const c_char,
    value: impl FnOnce() -> Result<Value, FfiError>,
) -> Result<(), FfiError> {
    let config = borrow_mut(config, "config")?;
    let key = text_arg(key, "key")?;
    config.inner.set(key, value()?)?;
    Ok(())
}

fn get<T>(
    config: *const cdad_config,
    key: *const c_char,
    extract: impl FnOnce(Value) -> Option<T>,
    wanted: &'static str,
) -> Result<T, FfiError> {
    let config = borrow(config, "config")?;
    let key = text_arg(key, "key")?;
    let value = config.inner.get(key)?;
    let held = value.type_name();
    extract(value).ok_or_else(|| {
        Error::WrongType {
            key: key.to_string(),
            expected: held,
            given: wanted,
        }
        .into()
    })
}

/// Sets an integer key. Errors: unknown key, wrong type, value out of range (the
/// message names the key and the accepted range). On error nothing changes.
#[no_mangle]
pub extern "C" fn cdad_config_set_int(
    config: *mut cdad_config,
    key: *const c_char,
    value: i64,
) -> cdad_status {
    call("cdad_config_set_int", || {
        set(config, key, || Ok(Value::Int(value)))
    })
}

/// Sets a float key (an integer key does not accept floats).
#[no_mangle]
pub extern "C" fn cdad_config_set_float(
    config: *mut cdad_config,
    key: *const c_char,
    value: f64,
) -> cdad_status {
    call("cdad_config_set_float", || {
        set(config, key, || Ok(Value::Float(value)))
    })
}

/// Sets a boolean key.
#[no_mangle]
pub extern "C" fn cdad_config_set_bool(
    config: *mut cdad_config,
    key: *const c_char,
    value: bool,
) -> cdad_status {
    call("cdad_config_set_bool", || {
        set(config, key, || Ok(Value::Bool(value)))
    })
}

/// Sets a text key (a choice such as `codec`, or `device`: `cpu`, `cuda`, `cuda:N`, `auto`).
#[no_mangle]
pub extern "C" fn cdad_config_set_string(
    config: *mut cdad_config,
    key: *const c_char,
    value: *const c_char,
) -> cdad_status {
    call("cdad_config_set_string", || {
        set(config, key, || {
            Ok(Value::Text(text_arg(value, "value")?.to_string()))
        })
    })
}

/// Sets an integer-list key from `count` values (`values` may be NULL when `count` is 0).
#[no_mangle]
pub extern "C" fn cdad_config_set_int_list(
    config: *mut cdad_config,
    key: *const c_char,
    values: *const i64,
    count: usize,
) -> cdad_status {
    call("cdad_config_set_int_list", || {
        set(config, key, || {
            if count == 0 {
                return Ok(Value::IntList(Vec::new()));
            }
            if values.is_null() {
                return Err(FfiError::NullPointer("values"));
            }
            if count > 4096 {
                return Err(
                    Error::invalid(format!("count {count} is too large for a list key")).into(),
                );
            }
            // SAFETY: non-NULL; C promises `count` readable values.
            Ok(Value::IntList(
                unsafe { std::slice::from_raw_parts(values, count) }.to_vec(),
            ))
        })
    })
}

/// Reads an integer key into `*out`.
#[no_mangle]
pub extern "C" fn cdad_config_get_int(
    config: *const cdad_config,
    key: *const c_char,
    out: *mut i64,
) -> cdad_status {
    call("cdad_config_get_int", || {
        let value = get(
            config,
            key,
            |v| if let Value::Int(x) = v { Some(x) } else { None },
            "an integer",
        )?;
        write_out(out, value, "out")
    })
}

/// Reads a float key into `*out`.
#[no_mangle]
pub extern "C" fn cdad_config_get_float(
    config: *const cdad_config,
    key: *const c_char,
    out: *mut f64,
) -> cdad_status {
    call("cdad_config_get_float", || {
        let value = get(
            config,
            key,
            |v| {
                if let Value::Float(x) = v {
                    Some(x)
                } else {
                    None
                }
            },
            "a float",
        )?;
        write_out(out, value, "out")
    })
}

/// Reads a boolean key into `*out`.
#[no_mangle]
pub extern "C" fn cdad_config_get_bool(
    config: *const cdad_config,
    key: *const c_char,
    out: *mut bool,
) -> cdad_status {
    call("cdad_config_get_bool", || {
        let value = get(
            config,
            key,
            |v| {
                if let Value::Bool(x) = v {
                    Some(x)
                } else {
                    None
                }
            },
            "a boolean",
        )?;
        write_out(out, value, "out")
    })
}

/// Reads a text key into `buffer` (NUL-terminated). `length` (optional) receives the
/// text length without the NUL. Pass `buffer` NULL and `capacity` 0 to learn the length.
#[no_mangle]
pub extern "C" fn cdad_config_get_string(
    config: *const cdad_config,
    key: *const c_char,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> cdad_status {
    call("cdad_config_get_string", || {
        let value = get(
            config,
            key,
            |v| {
                if let Value::Text(x) = v {
                    Some(x)
                } else {
                    None
                }
            },
            "text",
        )?;
        write_text(&value, buffer, capacity, length)
    })
}

/// Reads an integer-list key into `values` (room for `capacity`); `count` (optional)
/// receives the list length. Pass `values` NULL and `capacity` 0 to learn the length.
#[no_mangle]
pub extern "C" fn cdad_config_get_int_list(
    config: *const cdad_config,
    key: *const c_char,
    values: *mut i64,
    capacity: usize,
    count: *mut usize,
) -> cdad_status {
    call("cdad_config_get_int_list", || {
        let list = get(
            config,
            key,
            |v| {
                if let Value::IntList(x) = v {
                    Some(x)
                } else {
                    None
                }
            },
            "an integer list",
        )?;
        write_array(&list, values, capacity, count)
    })
}

/// Checks the rules that involve several keys (e.g. `image_size` divisible by the
/// model's total stride, attention levels that exist). Each key's own range is
/// already checked when it is set.
#[no_mangle]
pub extern "C" fn cdad_config_validate(config: *const cdad_config) -> cdad_status {
    call("cdad_config_validate", || {
        Ok(borrow(config, "config")?.inner.validate()?)
    })
}

/// Writes the whole configuration as a JSON object into `buffer`, like
/// `cdad_config_get_string`.
#[no_mangle]
pub extern "C" fn cdad_config_to_json(
    config: *const cdad_config,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> cdad_status {
    call("cdad_config_to_json", || {
        let json = borrow(config, "config")?.inner.to_json().to_string();
        write_text(&json, buffer, capacity, length)
    })
}

/// Writes the device this configuration resolves to in this process (`"cpu"` or
/// `"cuda:N"`) into `buffer`. `CDAD_ERR_DEVICE_UNAVAILABLE` when it asks for a CUDA
/// device this process does not have.
#[no_mangle]
pub extern "C" fn cdad_config_resolve_device(
    config: *const cdad_config,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> cdad_status {
    call("cdad_config_resolve_device", || {
        let device = borrow(config, "config")?.inner.device.resolve()?;
        write_text(&device_name(device), buffer, capacity, length)
    })
}
