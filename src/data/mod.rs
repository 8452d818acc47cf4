//! Training and test data: dataset readers (MVTec AD, VisA, plain folders), image and
//! mask loading with preprocessing, NSA patch perturbation with Poisson blending, and
//! the built-in synthetic benchmark generator.

pub mod dataset;
pub mod nsa;
pub mod poisson;
pub mod preprocess;
pub mod synthetic;
pub mod task;
