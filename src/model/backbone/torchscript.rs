//! A user's TorchScript backbone: `forward(images)` takes an ImageNet-normalised
//! N x 3 x H x W float batch and returns its feature maps as a list or tuple of
//! N x C x h x w tensors (a single tensor counts as a list of one). The module's bytes
//! are kept so that a saved detector is self-contained.

use super::FeatureBackbone;
use crate::error::{Error, Result};
use std::path::Path;
use tch::{CModule, Device, IValue, Kind, Tensor};

/// A frozen TorchScript feature extractor.
pub struct TorchScriptBackbone {
    module: CModule,
    bytes: Vec<u8>,
    origin: String,
}

impl TorchScriptBackbone {
    /// Loads the module in `path` onto `device`. The file must be a TorchScript archive
    /// (`torch.jit.save` of a scripted or traced module).
    pub fn load(path: &Path, device: Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(bytes, &path.display().to_string(), device)
    }

    /// Loads a module from the bytes of a TorchScript archive; `origin` names where they
    /// came from in error messages.
    pub fn from_bytes(bytes: Vec<u8>, origin: &str, device: Device) -> Result<Self> {
        let mut module = CModule::load_data_on_device(&mut bytes.as_slice(), device)
            .map_err(|e| {
                Error::invalid(format!(
                    "{origin}: not a loadable TorchScript module ({e}); expected a file written by torch.jit.save"
                ))
            })?;
        module
            .f_set_eval()
            .map_err(|e| Error::invalid(format!("{origin}: cannot switch to eval mode ({e})")))?;
        Ok(TorchScriptBackbone {
            module,
            bytes,
            origin: origin.to_string(),
        })
    }
}

/// The feature maps in a module's output for a batch of `n`: a tensor, or a list or tuple
/// of tensors, each N x C x h x w. `origin` names the module in errors.
fn feature_list(output: IValue, n: i64, origin: &str) -> Result<Vec<Tensor>> {
    let bad = |what: String| {
        Error::invalid(format!(
            "TorchScript backbone {origin}: {what}; expected a list or tuple of N x C x h x w feature maps"
        ))
    };
    let items = match output {
        IValue::Tensor(t) => vec![IValue::Tensor(t)],
        IValue::TensorList(list) => list.into_iter().map(IValue::Tensor).collect(),
        IValue::Tuple(items) | IValue::GenericList(items) => items,
        other => return Err(bad(format!("returned {}", value_kind(&other)))),
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            IValue::Tensor(t) if t.dim() == 4 && t.size()[0] == n => Ok(t.to_kind(Kind::Float)),
            IValue::Tensor(t) => Err(bad(format!(
                "returned map {index} of shape {:?} for a batch of {n}",
                t.size()
            ))),
            other => Err(bad(format!(
                "returned {} as item {index}",
                value_kind(&other)
            ))),
        })
        .collect()
}

fn value_kind(value: &IValue) -> &'static str {
    match value {
        IValue::None => "None",
        IValue::Bool(_) => "a bool",
        IValue::Int(_) => "an int",
        IValue::Double(_) => "a float",
        IValue::String(_) => "a string",
        IValue::GenericDict(_) => "a dict",
        _ => "a value that is not a tensor",
    }
}

impl FeatureBackbone for TorchScriptBackbone {
    fn feature_maps(&self, images: &Tensor, count: usize) -> Result<Vec<Tensor>> {
        let output = tch::no_grad(|| {
            self.module
                .forward_is(&[IValue::Tensor(images.shallow_clone())])
        })
        .map_err(|e| Error::invalid(format!("TorchScript backbone {} failed: {e}", self.origin)))?;
        let mut maps = feature_list(output, images.size()[0], &self.origin)?;
        maps.truncate(count);
        Ok(maps)
    }

    fn serialized(&self) -> Option<&[u8]> {
        Some(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(n: i64, c: i64) -> Tensor {
        Tensor::ones([n, c, 4, 4], (Kind::Double, Device::Cpu))
    }

    #[test]
    fn lists_tuples_and_single_tensors_are_feature_lists() {
        let tuple = IValue::Tuple(vec![IValue::Tensor(map(2, 3)), IValue::Tensor(map(2, 5))]);
        let maps = feature_list(tuple, 2, "m.pt").unwrap();
        assert_eq!(maps.len(), 2);
        assert_eq!(maps[1].size(), [2, 5, 4, 4]);
        assert_eq!(maps[1].kind(), Kind::Float);
        let list = IValue::TensorList(vec![map(1, 3), map(1, 3), map(1, 7)]);
        assert_eq!(feature_list(list, 1, "m.pt").unwrap().len(), 3);
        let generic = IValue::GenericList(vec![IValue::Tensor(map(1, 3))]);
        assert_eq!(feature_list(generic, 1, "m.pt").unwrap().len(), 1);
        assert_eq!(
            feature_list(IValue::Tensor(map(1, 3)), 1, "m.pt")
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn other_outputs_are_refused_with_what_came_back() {
        let message = |output, n| feature_list(output, n, "m.pt").unwrap_err().to_string();
        assert!(message(IValue::Int(3), 1).contains("m.pt: returned an int"));
        let wrong_batch = IValue::Tuple(vec![IValue::Tensor(map(1, 3)), IValue::Tensor(map(2, 3))]);
        assert!(message(wrong_batch, 1).contains("map 1 of shape [2, 3, 4, 4] for a batch of 1"));
        let flat = IValue::TensorList(vec![Tensor::ones([1, 3], (Kind::Float, Device::Cpu))]);
        assert!(message(flat, 1).contains("map 0 of shape [1, 3]"));
        let mixed = IValue::Tuple(vec![IValue::Tensor(map(1, 3)), IValue::String("x".into())]);
        assert!(message(mixed, 1).contains("returned a string as item 1"));
    }
}
