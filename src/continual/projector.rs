//! The gradient projector: one projection memory per projected layer, merged after each
//! task, and the filter that removes from every later update its component in the
//! input space earlier tasks used, G <- G - (G P) P^T (never forming P P^T). The
//! filter acts on the optimiser's final update, so the guarantee holds for AdamW too.

use super::decomposition::Basis;
use super::memory::{merge_threshold, ProjectionMemory};
use crate::error::{Error, Result};
use ndarray::Array2;
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Prefix of the projection bases among a saved detector's tensors.
pub const SAVED_PREFIX: &str = "gpm.";

/// Per-layer projection memories and their bases on the compute device.
#[derive(Default)]
pub struct GradientProjector {
    memories: BTreeMap<String, ProjectionMemory>,
    on_device: BTreeMap<String, Tensor>,
}

impl GradientProjector {
    /// Whether no task has been merged yet.
    pub fn is_empty(&self) -> bool {
        self.memories.is_empty()
    }

    /// Total basis columns and total dimension over all layers (how much of the input
    /// spaces earlier tasks occupy).
    pub fn occupancy(&self) -> (usize, usize) {
        self.memories
            .values()
            .fold((0, 0), |(k, d), m| (k + m.rank(), d + m.dim()))
    }

    /// Merges a finished task's bases (`task_index` counts from 0): the first task keeps
    /// `energy_first` of each layer's energy; later tasks add directions up to GPM's
    /// growing threshold.
    pub fn merge(
        &mut self,
        bases: &BTreeMap<String, Basis>,
        task_index: usize,
        energy_first: f64,
        energy_base: f64,
        energy_increment: f64,
        device: Device,
    ) -> Result<()> {
        let energy = if task_index == 0 {
            energy_first
        } else {
            merge_threshold(task_index + 1, energy_base, energy_increment)
        };
        for (name, basis) in bases {
            let memory = match self.memories.entry(name.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(ProjectionMemory::new(basis.dim())?)
                }
            };
            memory.merge(basis, energy)?;
            log::debug!(
                "projection memory {name}: {} of {} dimensions (energy {energy})",
                memory.rank(),
                memory.dim()
            );
            self.on_device
                .insert(name.clone(), to_tensor(memory, device)?);
        }
        Ok(())
    }

    /// The update with its component along layer `name`'s basis removed (unchanged for
    /// layers without a basis). Works on any weight shape whose first dimension is the
    /// output (convolutions are flattened like `weight.view(out, -1)`).
    pub fn filter(&self, name: &str, update: Tensor) -> Tensor {
        match self.on_device.get(name) {
            Some(basis) if basis.size()[1] > 0 => {
                let shape = update.size();
                let flat = update.view([shape[0], -1]);
                let coefficients = flat.matmul(basis);
                (flat - coefficients.matmul(&basis.transpose(0, 1))).view(shape.as_slice())
            }
            _ => update,
        }
    }

    /// The memories as named tensors (`gpm.<layer weight name>`), for saving.
    pub fn to_tensors(&self) -> Vec<(String, Tensor)> {
        self.memories
            .iter()
            .map(|(name, memory)| {
                let (values, [d, k]) = memory.to_flat();
                (
                    format!("{SAVED_PREFIX}{name}"),
                    Tensor::from_slice(&values).view([d as i64, k as i64]),
                )
            })
            .collect()
    }

    /// Rebuilds the memories from saved tensors (names with the `gpm.` prefix).
    pub fn from_tensors(tensors: &BTreeMap<String, Tensor>, device: Device) -> Result<Self> {
        let mut projector = GradientProjector::default();
        for (key, tensor) in tensors {
            let Some(name) = key.strip_prefix(SAVED_PREFIX) else {
                continue;
            };
            if tensor.dim() != 2 {
                return Err(Error::FileFormat(format!(
                    "projection basis '{key}' is not a matrix"
                )));
            }
            let (d, k) = (tensor.size()[0] as usize, tensor.size()[1] as usize);
            let values = Vec::<f32>::try_from(tensor.to_kind(Kind::Float).contiguous().view([-1]))
                .map_err(|e| Error::FileFormat(format!("projection basis '{key}': {e}")))?;
            let memory = ProjectionMemory::from_flat(values, [d, k])
                .map_err(|e| Error::FileFormat(format!("projection basis '{key}': {e}")))?;
            projector
                .on_device
                .insert(name.to_string(), to_tensor(&memory, device)?);
            projector.memories.insert(name.to_string(), memory);
        }
        Ok(projector)
    }
}

fn to_tensor(memory: &ProjectionMemory, device: Device) -> Result<Tensor> {
    let basis: Array2<f32> = memory.basis().to_owned();
    let (d, k) = basis.dim();
    let values: Vec<f32> = basis.iter().copied().collect();
    Ok(Tensor::from_slice(&values)
        .view([d as i64, k as i64])
        .to_device(device))
}
