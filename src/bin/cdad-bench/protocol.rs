//! Continual settings (`3x5`, `10-1x5`, ...) run with CDAD, fine-tuning and joint
//! training on one dataset: a summary row per method, then each method's full report.

use cdad::config::Config;
use cdad::error::{Error, Result};
use cdad::protocol::{run_protocol, Method, ProtocolResult, Setting};
use std::path::Path;
use std::time::Instant;

/// Runs `setting` with each method under `config` and prints the summary table and the
/// reports; writes `<method>.json` into `out` if given.
pub fn run(
    root: &Path,
    setting: &str,
    methods: &[Method],
    config: &Config,
    out: Option<&Path>,
) -> Result<()> {
    let setting = Setting::parse(setting)?;
    let mut results: Vec<(ProtocolResult, f64)> = Vec::new();
    for &method in methods {
        let start = Instant::now();
        let mut last_stage = String::new();
        let (result, _) = run_protocol(config, root, &setting, method, |_, stage| {
            if stage != last_stage {
                eprintln!(
                    "[{:>6.0} s] {method:?} {stage}",
                    start.elapsed().as_secs_f64()
                );
                last_stage = stage.to_string();
            }
            true
        })?;
        if let Some(out) = out {
            let path = out.join(format!("{}.json", method.name()));
            let json = serde_json::to_string_pretty(&result.to_json())
                .map_err(|e| Error::invalid(format!("report JSON: {e}")))?;
            std::fs::create_dir_all(out)
                .and_then(|()| std::fs::write(&path, json))
                .map_err(|source| Error::Io { path, source })?;
        }
        results.push((result, start.elapsed().as_secs_f64()));
    }
    println!("| method | A image AUROC | A pixel AUROC | A image AUPR | A pixel AUPR | A AU-PRO | FM image AUROC | FM pixel AUROC | FM AU-PRO | minutes |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (r, seconds) in &results {
        let a = |m: &str| 100.0 * r.a_metrics[m];
        let fm = |m: &str| 100.0 * r.forgetting[m];
        println!(
            "| {:?} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.method,
            a("image_auroc"),
            a("pixel_auroc"),
            a("image_aupr"),
            a("pixel_aupr"),
            a("au_pro"),
            fm("image_auroc"),
            fm("pixel_auroc"),
            fm("au_pro"),
            seconds / 60.0
        );
    }
    for (r, _) in &results {
        println!();
        print!("{}", r.to_markdown());
    }
    Ok(())
}
