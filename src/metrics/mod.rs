//! Anomaly-detection metrics (method.md section 7) as pure functions on plain arrays.
//!
//! * [`image`]: image AUROC, average precision (AUPR) and F1-max from per-image scores.
//! * [`pixel`]: pixel AUROC and AUPR over all pixels of a set of anomaly maps.
//! * [`pro`]: AU-PRO, the per-region overlap curve of the MVTec AD evaluation.
//! * [`continual`]: A-metric and forgetting measure over the task-after-task matrix.
//! * [`report`]: every per-class metric at once, serialisable.
//!
//! Shared machinery: [`ranking`] (threshold sweeps over tied score groups) and
//! [`regions`] (8-connected ground-truth regions of a mask).

pub mod continual;
pub mod image;
pub mod pixel;
pub mod pro;
pub mod ranking;
pub mod regions;
pub mod report;

pub use continual::{a_metric, forgetting_measure};
pub use image::{average_precision, f1_max, image_auroc, image_ranking};
pub use pixel::{pixel_aupr, pixel_auroc, pixel_ranking};
pub use pro::{au_pro, DEFAULT_FPR_LIMIT};
pub use ranking::Ranking;
pub use regions::Regions;
pub use report::{evaluate_class, ClassMetrics};
