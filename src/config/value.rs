//! Typed configuration values and the rules that validate them.

use crate::device::DeviceChoice;
use std::fmt;

/// A configuration value as it crosses the API: one of five types.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A signed integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// Text: a choice among names, or a device string.
    Text(String),
    /// A list of integers.
    IntList(Vec<i64>),
}

impl Value {
    /// The name of this value's type, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
            Value::Text(_) => "text",
            Value::IntList(_) => "an integer list",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Text(v) => write!(f, "'{v}'"),
            Value::IntList(v) => {
                let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
                write!(f, "[{}]", items.join(", "))
            }
        }
    }
}

/// What a key accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// An integer in `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A finite float in `min..=max`.
    Float {
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// One of the listed names.
    Choice(&'static [&'static str]),
    /// A list of `min_len..=max_len` integers, each in `min..=max`.
    IntList {
        /// Smallest accepted element.
        min: i64,
        /// Largest accepted element.
        max: i64,
        /// Fewest elements.
        min_len: usize,
        /// Most elements.
        max_len: usize,
    },
    /// A device string: `cpu`, `cuda`, `cuda:N` or `auto`.
    Device,
    /// A file path (empty for "none" or "the default"), at most 4096 bytes.
    Path,
}

impl Rule {
    /// The type name of values this rule accepts, as used in error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Rule::Int { .. } => "an integer",
            Rule::Float { .. } => "a float",
            Rule::Bool => "a boolean",
            Rule::Choice(_) | Rule::Device | Rule::Path => "text",
            Rule::IntList { .. } => "an integer list",
        }
    }

    /// A description of the accepted values, e.g. `an integer in 32..=1024`.
    pub fn describe(&self) -> String {
        match self {
            Rule::Int { min, max } => format!("an integer in {min}..={max}"),
            Rule::Float { min, max } => format!("a finite float in [{min}, {max}]"),
            Rule::Bool => "true or false".to_string(),
            Rule::Choice(names) => format!("one of {}", names.join(", ")),
            Rule::IntList {
                min,
                max,
                min_len,
                max_len,
            } => {
                format!("a list of {min_len}..={max_len} integers, each in {min}..={max}")
            }
            Rule::Device => "'cpu', 'cuda', 'cuda:N' or 'auto'".to_string(),
            Rule::Path => "a file path of at most 4096 bytes (empty for none)".to_string(),
        }
    }

    /// Checks `value` against this rule. `Err(true)` means the type is wrong,
    /// `Err(false)` means the type is right but the value is not accepted.
    pub fn check(&self, value: &Value) -> Result<(), bool> {
        match (self, value) {
            (Rule::Int { min, max }, Value::Int(v)) => in_range(v >= min && v <= max),
            (Rule::Float { min, max }, Value::Float(v)) => {
                in_range(v.is_finite() && v >= min && v <= max)
            }
            (Rule::Bool, Value::Bool(_)) => Ok(()),
            (Rule::Choice(names), Value::Text(v)) => in_range(names.contains(&v.as_str())),
            (
                Rule::IntList {
                    min,
                    max,
                    min_len,
                    max_len,
                },
                Value::IntList(v),
            ) => in_range(
                v.len() >= *min_len
                    && v.len() <= *max_len
                    && v.iter().all(|x| x >= min && x <= max),
            ),
            (Rule::Device, Value::Text(v)) => in_range(v.parse::<DeviceChoice>().is_ok()),
            (Rule::Path, Value::Text(v)) => in_range(v.len() <= 4096),
            _ => Err(true),
        }
    }
}

fn in_range(ok: bool) -> Result<(), bool> {
    if ok {
        Ok(())
    } else {
        Err(false)
    }
}

/// A Rust type that a configuration field can have. Values reaching `from_value`
/// have already passed the key's [`Rule`], so conversions cannot fail.
pub trait FieldType: Sized {
    /// This field's value in API form.
    fn to_value(&self) -> Value;
    /// Builds the field from a value that passed the key's rule.
    fn from_value(value: Value) -> Self;
}

impl FieldType for u64 {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Int(v) => v as u64,
            other => unreachable!("rule admitted {other:?} for an integer field"),
        }
    }
}

impl FieldType for usize {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Int(v) => v as usize,
            other => unreachable!("rule admitted {other:?} for an integer field"),
        }
    }
}

impl FieldType for f64 {
    fn to_value(&self) -> Value {
        Value::Float(*self)
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Float(v) => v,
            other => unreachable!("rule admitted {other:?} for a float field"),
        }
    }
}

impl FieldType for bool {
    fn to_value(&self) -> Value {
        Value::Bool(*self)
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Bool(v) => v,
            other => unreachable!("rule admitted {other:?} for a boolean field"),
        }
    }
}

impl FieldType for Vec<usize> {
    fn to_value(&self) -> Value {
        Value::IntList(self.iter().map(|&x| x as i64).collect())
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::IntList(v) => v.into_iter().map(|x| x as usize).collect(),
            other => unreachable!("rule admitted {other:?} for an integer-list field"),
        }
    }
}

impl FieldType for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Text(v) => v,
            other => unreachable!("rule admitted {other:?} for a path field"),
        }
    }
}

impl FieldType for DeviceChoice {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
    fn from_value(value: Value) -> Self {
        match value {
            Value::Text(v) => match v.parse() {
                Ok(device) => device,
                Err(e) => unreachable!("rule admitted an unparsable device: {e}"),
            },
            other => unreachable!("rule admitted {other:?} for a device field"),
        }
    }
}

/// Declares a closed set of names stored as a Rust enum, usable as a configuration field
/// with `Rule::Choice(Type::NAMES)`.
macro_rules! choice_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every accepted name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The name of this choice.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl $crate::config::value::FieldType for $name {
            fn to_value(&self) -> $crate::config::value::Value {
                $crate::config::value::Value::Text(self.as_str().to_string())
            }
            fn from_value(value: $crate::config::value::Value) -> Self {
                match value {
                    $($crate::config::value::Value::Text(t) if t == $text => $name::$variant,)+
                    other => unreachable!("rule admitted {other:?} for {}", stringify!($name)),
                }
            }
        }
    };
}
pub(crate) use choice_enum;
