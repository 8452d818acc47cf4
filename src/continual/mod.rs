//! Continual learning support: host-side decompositions of layer representations and
//! the gradient-projection memory built from them (method.md section 5).

pub mod decomposition;
pub mod memory;
pub mod projector;
pub mod representation;

pub use decomposition::{energy_rank, principal_angles, Basis, Decomposer};
pub use memory::{merge_threshold, MergeReport, ProjectionMemory};
pub use projector::GradientProjector;
pub use representation::{collect_representation, CollectionReport};
