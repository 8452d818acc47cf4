//! Runs a continual setting on a dataset: classes in alphabetical order split into
//! tasks, trained task after task, and after each task every class seen so far is
//! evaluated. The result holds A_{b,i} (the metric of task i after training task b)
//! for every metric, the A-metrics, the forgetting measures, per-class values, and
//! renders them as Markdown and JSON. Baselines run through the same code: `finetune`
//! (no projection) and `joint` (all classes in one task, the upper bound).

use super::setting::Setting;
use crate::config::Config;
use crate::data::dataset::open_dataset;
use crate::data::task::TaskData;
use crate::detector::{evaluate_with, Detector};
use crate::error::{Error, Result};
use crate::metrics::{a_metric, forgetting_measure, ClassMetrics};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Which method runs the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    /// Continual training with gradient projection (the configuration's settings).
    Cdad,
    /// The same model and training without projection: shows the forgetting.
    Finetune,
    /// All classes trained as one task with the summed step budget of the setting's
    /// tasks: the upper bound.
    Joint,
}

impl Method {
    /// Every method.
    pub fn all() -> [Method; 3] {
        [Method::Cdad, Method::Finetune, Method::Joint]
    }

    /// The method's name, as reports and command lines spell it: `cdad`, `finetune` or
    /// `joint`.
    pub fn name(self) -> &'static str {
        match self {
            Method::Cdad => "cdad",
            Method::Finetune => "finetune",
            Method::Joint => "joint",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self> {
        Method::all()
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Method::all().iter().map(|m| m.name()).collect();
                Error::invalid(format!(
                    "unknown method '{name}'; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

/// The metric names, in report order.
pub const METRICS: [&str; 6] = [
    "image_auroc",
    "image_aupr",
    "image_f1_max",
    "pixel_auroc",
    "pixel_aupr",
    "au_pro",
];

fn metric(m: &ClassMetrics, name: &str) -> f64 {
    match name {
        "image_auroc" => m.image_auroc,
        "image_aupr" => m.image_aupr,
        "image_f1_max" => m.image_f1_max,
        "pixel_auroc" => m.pixel_auroc,
        "pixel_aupr" => m.pixel_aupr,
        _ => m.au_pro,
    }
}

/// Everything a protocol run measured.
#[derive(Debug, Clone, Serialize)]
pub struct ProtocolResult {
    /// The setting, e.g. `3x5`.
    pub setting: String,
    /// The method.
    pub method: Method,
    /// Classes of each task.
    pub tasks: Vec<Vec<String>>,
    /// Per metric: A[b][i] (None where i > b).
    pub matrices: BTreeMap<String, Vec<Vec<Option<f64>>>>,
    /// Per metric: the A-metric (mean over tasks after the last one).
    pub a_metrics: BTreeMap<String, f64>,
    /// Per metric: the forgetting measure (lower is better).
    pub forgetting: BTreeMap<String, f64>,
    /// Per class, the metrics after the last task.
    pub final_classes: BTreeMap<String, ClassMetrics>,
    /// Seconds spent training, per task.
    pub training_seconds: Vec<f64>,
}

/// Runs `setting` on the dataset at `root` with `method`, starting from `config`.
/// `progress(fraction, stage)` follows the whole run and can cancel it. The trained
/// detector is returned with the result.
pub fn run_protocol(
    config: &Config,
    root: &Path,
    setting: &Setting,
    method: Method,
    mut progress: impl FnMut(f64, &str) -> bool,
) -> Result<(ProtocolResult, Detector)> {
    let dataset = open_dataset(root, None)?;
    let mut tasks = setting.split(dataset.class_names())?;
    let mut config = config.clone();
    if method == Method::Joint {
        // One task with every class and the whole run's training budget.
        config.train_steps *= tasks.len();
        tasks = vec![tasks.concat()];
    }
    config.projection = method == Method::Cdad;
    let mut detector = Detector::new(config)?;
    let n = tasks.len();
    let mut per_class: Vec<BTreeMap<String, ClassMetrics>> = Vec::with_capacity(n);
    let mut training_seconds = Vec::with_capacity(n);
    for (b, classes) in tasks.iter().enumerate() {
        let mut data = TaskData::new(&format!("task {}", b + 1))?;
        for class in classes {
            data.add_class_from_dataset(root, class, None)?;
        }
        let id = detector.add_task(data)?;
        let start = std::time::Instant::now();
        // Each task owns 1/n of the run: 85 % of it training, 15 % evaluating.
        let slot = |within: f64| (b as f64 + within) / n as f64;
        detector.train_task(id, |f, stage| {
            progress(slot(0.85 * f), &format!("task {}/{n}: {stage}", b + 1))
        })?;
        training_seconds.push(start.elapsed().as_secs_f64());
        let seen: Vec<&String> = tasks[..=b].iter().flatten().collect();
        let mut results = BTreeMap::new();
        for (k, class) in seen.iter().enumerate() {
            let data = dataset.class(class)?;
            let metrics = evaluate_with(&data, |images| detector.infer_batch(images), |_, _| {})?;
            results.insert(class.to_string(), metrics);
            let done = slot(0.85 + 0.15 * (k + 1) as f64 / seen.len() as f64);
            if !progress(done, &format!("task {}/{n}: evaluating", b + 1)) {
                return Err(Error::Cancelled);
            }
        }
        per_class.push(results);
    }
    let result = summarise(setting.name(), method, tasks, &per_class, training_seconds)?;
    Ok((result, detector))
}

fn summarise(
    setting: &str,
    method: Method,
    tasks: Vec<Vec<String>>,
    per_class: &[BTreeMap<String, ClassMetrics>],
    training_seconds: Vec<f64>,
) -> Result<ProtocolResult> {
    let n = tasks.len();
    let mut matrices = BTreeMap::new();
    let (mut a_metrics, mut forgetting) = (BTreeMap::new(), BTreeMap::new());
    for name in METRICS {
        let matrix: Vec<Vec<Option<f64>>> = (0..n)
            .map(|b| {
                (0..n)
                    .map(|i| {
                        (i <= b).then(|| {
                            let values: Vec<f64> = tasks[i]
                                .iter()
                                .map(|c| metric(&per_class[b][c], name))
                                .collect();
                            values.iter().sum::<f64>() / values.len() as f64
                        })
                    })
                    .collect()
            })
            .collect();
        a_metrics.insert(name.to_string(), a_metric(&matrix)?);
        forgetting.insert(name.to_string(), forgetting_measure(&matrix)?);
        matrices.insert(name.to_string(), matrix);
    }
    Ok(ProtocolResult {
        setting: setting.to_string(),
        method,
        tasks,
        matrices,
        a_metrics,
        forgetting,
        final_classes: per_class.last().cloned().unwrap_or_default(),
        training_seconds,
    })
}

impl ProtocolResult {
    /// The result as Markdown: A and FM per metric (in percent, the paper's format),
    /// the A_{b,i} matrices of image and pixel AUROC, and the final per-class values.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("### {} on setting {}\n\n", self.method.name(), self.setting);
        out += "| metric | A | FM |\n|---|---|---|\n";
        for name in METRICS {
            out += &format!(
                "| {name} | {:.1} | {:.2} |\n",
                100.0 * self.a_metrics[name],
                100.0 * self.forgetting[name]
            );
        }
        for name in ["image_auroc", "pixel_auroc"] {
            out += &format!("\n{name}: A[b][i] after task b (rows) for task i (columns)\n\n|  |");
            for i in 0..self.tasks.len() {
                out += &format!(" task {} |", i + 1);
            }
            out += "\n|---|";
            out += &"---|".repeat(self.tasks.len());
            out += "\n";
            for (b, row) in self.matrices[name].iter().enumerate() {
                out += &format!("| after {} |", b + 1);
                for value in row {
                    out += &value.map_or(" |".to_string(), |v| format!(" {:.1} |", 100.0 * v));
                }
                out += "\n";
            }
        }
        out += "\n| class | image AUROC | pixel AUROC | AU-PRO |\n|---|---|---|---|\n";
        for (class, m) in &self.final_classes {
            out += &format!(
                "| {class} | {:.1} | {:.1} | {:.1} |\n",
                100.0 * m.image_auroc,
                100.0 * m.pixel_auroc,
                100.0 * m.au_pro
            );
        }
        out
    }

    /// The result as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(v: f64) -> ClassMetrics {
        ClassMetrics {
            image_auroc: v,
            image_aupr: v,
            image_f1_max: v,
            pixel_auroc: v,
            pixel_aupr: v,
            au_pro: v,
        }
    }

    #[test]
    fn method_names_round_trip_and_unknown_names_are_refused() {
        for method in Method::all() {
            assert_eq!(method.name().parse::<Method>().unwrap(), method);
        }
        let err = "Joint".parse::<Method>().unwrap_err().to_string();
        assert!(
            err.contains("expected one of cdad, finetune, joint"),
            "{err}"
        );
    }

    #[test]
    fn matrices_average_classes_per_task_and_give_a_and_fm() {
        let tasks = vec![
            vec!["a".to_string(), "b".to_string()],
            vec!["c".to_string()],
        ];
        let after_first = BTreeMap::from([
            ("a".to_string(), metrics(0.9)),
            ("b".to_string(), metrics(0.7)),
        ]);
        let after_second = BTreeMap::from([
            ("a".to_string(), metrics(0.8)),
            ("b".to_string(), metrics(0.6)),
            ("c".to_string(), metrics(1.0)),
        ]);
        let result = summarise(
            "2-1",
            Method::Cdad,
            tasks,
            &[after_first, after_second],
            vec![1.0, 1.0],
        )
        .unwrap();
        let m = &result.matrices["image_auroc"];
        assert!((m[0][0].unwrap() - 0.8).abs() < 1e-12 && m[0][1].is_none());
        assert!((m[1][0].unwrap() - 0.7).abs() < 1e-12 && (m[1][1].unwrap() - 1.0).abs() < 1e-12);
        assert!((result.a_metrics["au_pro"] - 0.85).abs() < 1e-12);
        assert!((result.forgetting["au_pro"] - 0.1).abs() < 1e-12);
        let markdown = result.to_markdown();
        assert!(
            markdown.contains("| image_auroc | 85.0 | 10.00 |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| after 2 | 70.0 | 100.0 |"),
            "{markdown}"
        );
        assert_eq!(result.to_json()["setting"], "2-1");
    }
}
