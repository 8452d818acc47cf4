//! `cdad_report`: results of an evaluation or of a continual protocol run, readable as
//! JSON, as Markdown, or metric by metric.

use super::boundary::{call, FfiError};
use super::config::cdad_config;
use super::detector::{cdad_detector, cdad_progress_callback};
use super::handles::{borrow, free, hand_out, impl_handle, text_arg, write_out, write_text};
use super::status::cdad_status;
use crate::data::dataset::open_dataset;
use crate::detector::evaluate_with;
use crate::error::Error;
use crate::metrics::ClassMetrics;
use crate::protocol::{run_protocol, Method, Setting};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::sync::RwLock;

/// Results as JSON, Markdown and named values.
pub(crate) struct Report {
    json: serde_json::Value,
    markdown: String,
    values: BTreeMap<String, f64>,
}

/// The result of `cdad_detector_evaluate` or `cdad_protocol_run`.
#[allow(non_camel_case_types)]
pub struct cdad_report {
    magic: u64,
    pub(crate) inner: Report,
}
impl_handle!(cdad_report wraps Report, magic 0x6364_6164_7265_706f);

/// Continual methods for `cdad_protocol_run`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum cdad_method {
    /// Task after task with gradient projection.
    CDAD_METHOD_CDAD = 0,
    /// Task after task without projection (shows forgetting).
    CDAD_METHOD_FINETUNE = 1,
    /// All classes in one task, trained with the summed step budget of the setting (upper bound).
    CDAD_METHOD_JOINT = 2,
}

fn metric_values(prefix: &str, m: &ClassMetrics, values: &mut BTreeMap<String, f64>) {
    for (name, value) in [
        ("image_auroc", m.image_auroc),
        ("image_aupr", m.image_aupr),
        ("image_f1_max", m.image_f1_max),
        ("pixel_auroc", m.pixel_auroc),
        ("pixel_aupr", m.pixel_aupr),
        ("au_pro", m.au_pro),
    ] {
        values.insert(format!("{prefix}{name}"), value);
    }
}

/// Evaluates the detector on the test sets of `count` classes of the dataset at `root`
/// (`classes` NULL and `count` 0: every class of its trained tasks). The report's
/// values are `<class>.<metric>` and `mean.<metric>` for image_auroc, image_aupr,
/// image_f1_max, pixel_auroc, pixel_aupr and au_pro.
#[no_mangle]
pub extern "C" fn cdad_detector_evaluate(
    detector: *const cdad_detector,
    root: *const c_char,
    classes: *const *const c_char,
    count: usize,
    out: *mut *mut cdad_report,
) -> cdad_status {
    call("cdad_detector_evaluate", || {
        let detector = borrow(detector, "detector")?;
        let root = Path::new(text_arg(root, "root")?);
        let guard = detector
            .inner
            .try_read()
            .map_err(|_| FfiError::Busy("a training"))?;
        let names: Vec<String> = if classes.is_null() {
            if count != 0 {
                return Err(FfiError::NullPointer("classes"));
            }
            guard
                .tasks()
                .iter()
                .filter(|t| t.trained)
                .flat_map(|t| t.classes.clone())
                .collect()
        } else {
            (0..count)
                // SAFETY: `classes` holds `count` strings (caller contract).
                .map(|i| text_arg(unsafe { *classes.add(i) }, "classes[i]").map(str::to_string))
                .collect::<Result<_, _>>()?
        };
        if names.is_empty() {
            return Err(Error::invalid("no classes to evaluate").into());
        }
        let dataset = open_dataset(root, None)?;
        let mut per_class = BTreeMap::new();
        for name in &names {
            let data = dataset.class(name)?;
            per_class.insert(
                name.clone(),
                evaluate_with(&data, |images| guard.infer_batch(images), |_, _| {})?,
            );
        }
        let mean = ClassMetrics::mean(&per_class.values().copied().collect::<Vec<_>>())?;
        let mut values = BTreeMap::new();
        metric_values("mean.", &mean, &mut values);
        let mut markdown = String::from(
            "| class | image AUROC | image AUPR | pixel AUROC | AU-PRO |\n|---|---|---|---|---|\n",
        );
        for (name, m) in &per_class {
            metric_values(&format!("{name}."), m, &mut values);
            markdown += &format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
                100.0 * m.image_auroc,
                100.0 * m.image_aupr,
                100.0 * m.pixel_auroc,
                100.0 * m.au_pro
            );
        }
        markdown += &format!(
            "| mean | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            100.0 * mean.image_auroc,
            100.0 * mean.image_aupr,
            100.0 * mean.pixel_auroc,
            100.0 * mean.au_pro
        );
        let json = serde_json::json!({ "classes": per_class, "mean": mean });
        hand_out(
            out,
            cdad_report::new(Report {
                json,
                markdown,
                values,
            }),
        )
    })
}

/// Runs a continual setting (`"3x5"`, `"10-1x5"`, `"14-1"`, any `B-IxS` or `IxS`) on the
/// dataset at `root` with `method` (a `cdad_method`), starting from `config`: classes in
/// alphabetical order, trained task after task, all seen classes evaluated after each
/// task. The report's values are `a.<metric>` and `fm.<metric>`; its Markdown holds the
/// tables. `detector` (nullable) receives the trained detector. `progress` (nullable)
/// follows the run and can cancel it.
#[no_mangle]
pub extern "C" fn cdad_protocol_run(
    config: *const cdad_config,
    root: *const c_char,
    setting: *const c_char,
    method: i32,
    progress: cdad_progress_callback,
    user: *mut c_void,
    report: *mut *mut cdad_report,
    detector: *mut *mut cdad_detector,
) -> cdad_status {
    call("cdad_protocol_run", || {
        let config = borrow(config, "config")?.inner.clone();
        let root = Path::new(text_arg(root, "root")?);
        let setting = Setting::parse(text_arg(setting, "setting")?)?;
        let method = match method {
            0 => Method::Cdad,
            1 => Method::Finetune,
            2 => Method::Joint,
            other => {
                return Err(Error::invalid(format!(
                    "method {other} is not a cdad_method; expected 0..=2"
                ))
                .into())
            }
        };
        if report.is_null() {
            return Err(FfiError::NullPointer("report"));
        }
        let (result, trained) = run_protocol(
            &config,
            root,
            &setting,
            method,
            |fraction, stage| match progress {
                None => true,
                Some(callback) => {
                    let stage = CString::new(stage).unwrap_or_default();
                    // SAFETY: the host installed this callback for the duration of the call.
                    unsafe { callback(fraction as f32, stage.as_ptr(), user) == 0 }
                }
            },
        )?;
        let mut values = BTreeMap::new();
        for (name, value) in &result.a_metrics {
            values.insert(format!("a.{name}"), *value);
        }
        for (name, value) in &result.forgetting {
            values.insert(format!("fm.{name}"), *value);
        }
        if !detector.is_null() {
            hand_out(detector, cdad_detector::new(RwLock::new(trained)))?;
        }
        hand_out(
            report,
            cdad_report::new(Report {
                json: result.to_json(),
                markdown: result.to_markdown(),
                values,
            }),
        )
    })
}

/// Releases a report. NULL is a no-op.
#[no_mangle]
pub extern "C" fn cdad_report_free(report: *mut cdad_report) {
    call("cdad_report_free", || free(report, "report"));
}

/// Reads one named value of a report (e.g. `"a.image_auroc"`, `"mean.au_pro"`).
#[no_mangle]
pub extern "C" fn cdad_report_value(
    report: *const cdad_report,
    name: *const c_char,
    value: *mut f64,
) -> cdad_status {
    call("cdad_report_value", || {
        let report = &borrow(report, "report")?.inner;
        let name = text_arg(name, "name")?;
        let found = report.values.get(name).ok_or_else(|| {
            Error::invalid(format!(
                "report has no value '{name}'; it has: {}",
                report.values.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        write_out(value, *found, "value")
    })
}

/// Writes the report as JSON into `buffer` (see `cdad_config_get_string` for sizing).
#[no_mangle]
pub extern "C" fn cdad_report_json(
    report: *const cdad_report,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> cdad_status {
    call("cdad_report_json", || {
        write_text(
            &borrow(report, "report")?.inner.json.to_string(),
            buffer,
            capacity,
            length,
        )
    })
}

/// Writes the report as Markdown tables into `buffer` (sized like `cdad_report_json`).
#[no_mangle]
pub extern "C" fn cdad_report_markdown(
    report: *const cdad_report,
    buffer: *mut c_char,
    capacity: usize,
    length: *mut usize,
) -> cdad_status {
    call("cdad_report_markdown", || {
        write_text(
            &borrow(report, "report")?.inner.markdown,
            buffer,
            capacity,
            length,
        )
    })
}
