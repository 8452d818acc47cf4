//! Loading weights from safetensors files into a variable store by name, with every
//! mismatch reported: a variable the file lacks, a tensor the model does not have, or a
//! shape that differs. Nothing is copied unless everything matches.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn::VarStore, Tensor};

/// Reads all tensors of a safetensors file.
pub fn read_tensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    if !path.is_file() {
        return Err(Error::invalid(format!(
            "{}: weight file not found",
            path.display()
        )));
    }
    let tensors = Tensor::read_safetensors(path).map_err(|e| {
        Error::invalid(format!(
            "{}: not a readable safetensors file ({e})",
            path.display()
        ))
    })?;
    Ok(tensors.into_iter().collect())
}

/// Copies the tensors of `file` whose names start with `prefix` into `vs`, matching
/// `prefix + variable name`. Tensors without the prefix are ignored (a full SD1.5
/// checkpoint holds the UNet, the VAE and the text encoder side by side). Every
/// variable must be present with its exact shape and no prefixed tensor may be left
/// over; otherwise the error names the key and nothing is changed.
pub fn load_prefixed(
    vs: &VarStore,
    file: &BTreeMap<String, Tensor>,
    prefix: &str,
    origin: &Path,
) -> Result<()> {
    load_mapped(vs, "", file, prefix, origin)
}

/// Like [`load_prefixed`] for the variables of `vs` under `variable_prefix` only: the
/// variable `variable_prefix + name` takes the tensor `file_prefix + name`.
pub fn load_mapped(
    vs: &VarStore,
    variable_prefix: &str,
    file: &BTreeMap<String, Tensor>,
    file_prefix: &str,
    origin: &Path,
) -> Result<()> {
    let variables: BTreeMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .filter_map(|(name, t)| {
            name.strip_prefix(variable_prefix)
                .map(|n| (n.to_string(), t))
        })
        .collect();
    for (name, variable) in &variables {
        let key = format!("{file_prefix}{name}");
        let tensor = file.get(&key).ok_or_else(|| {
            Error::invalid(format!(
                "{}: missing key '{key}' (shape {:?})",
                origin.display(),
                variable.size()
            ))
        })?;
        if tensor.size() != variable.size() {
            return Err(Error::invalid(format!(
                "{}: key '{key}' has shape {:?}, expected {:?}",
                origin.display(),
                tensor.size(),
                variable.size()
            )));
        }
    }
    if let Some(extra) = file
        .keys()
        .filter_map(|k| k.strip_prefix(file_prefix))
        .find(|name| !variables.contains_key(*name))
    {
        return Err(Error::invalid(format!(
            "{}: unexpected key '{file_prefix}{extra}' that the model does not have",
            origin.display()
        )));
    }
    tch::no_grad(|| {
        for (name, mut variable) in variables {
            let source = &file[&format!("{file_prefix}{name}")];
            variable.copy_(&source.to_kind(variable.kind()).to_device(variable.device()));
        }
    });
    Ok(())
}

/// Writes every variable of `vs` to a safetensors file as `prefix + name`.
pub fn save_prefixed(vs: &VarStore, prefix: &str, path: &Path) -> Result<()> {
    let named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| {
            (
                format!("{prefix}{name}"),
                t.to_device(tch::Device::Cpu).contiguous(),
            )
        })
        .collect();
    Tensor::write_safetensors(&named, path).map_err(|e| {
        Error::invalid(format!(
            "{}: cannot write safetensors ({e})",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn store(width: i64) -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "block" / 0, width, 3, Default::default());
        vs
    }

    #[test]
    fn weights_round_trip_under_a_prefix_and_mismatches_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        let source = store(4);
        save_prefixed(&source, "model.", &path).unwrap();
        let file = read_tensors(&path).unwrap();
        let target = store(4);
        load_prefixed(&target, &file, "model.", &path).unwrap();
        let (a, b) = (source.variables(), target.variables());
        assert!(a["block.0.weight"].equal(&b["block.0.weight"]));

        let wrong = store(5);
        let err = load_prefixed(&wrong, &file, "model.", &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("'model.block.0.weight' has shape [3, 4], expected [3, 5]"),
            "{err}"
        );
        let err = load_prefixed(&target, &file, "other.", &path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing key 'other.block.0."), "{err}");

        let mut extra: Vec<(String, Tensor)> = file
            .iter()
            .map(|(k, t)| (k.clone(), t.shallow_clone()))
            .collect();
        extra.push((
            "model.block.1.weight".into(),
            Tensor::zeros([1], (tch::Kind::Float, Device::Cpu)),
        ));
        Tensor::write_safetensors(&extra, &path).unwrap();
        let err = load_prefixed(&target, &read_tensors(&path).unwrap(), "model.", &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unexpected key 'model.block.1.weight'"),
            "{err}"
        );
        assert!(read_tensors(&dir.path().join("none.safetensors")).is_err());
    }
}
