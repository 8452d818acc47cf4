//! Benchmarks of cdad, printed as tables with the command and the machine:
//! parameter counts, training-step time and peak memory per preset, and single-task
//! quality per class against ablations and reference scorers.
//!
//!   cdad-bench train-step [--steps N] [--batch N]
//!   cdad-bench single-task --root DIR [--classes a,b] [--variants cdad,no-mask,...]
//!   cdad-bench protocol --root DIR --setting 3x5 [--methods cdad,finetune,joint] [--out DIR]
//!   cdad-bench decompositions --root DIR --class NAME [--steps N] [--every N] [--block N]

mod baselines;
mod decompositions;
mod protocol;
mod single_task;

use cdad::config::Preset;
use cdad::data::synthetic::builtin_classes;
use cdad::image::RgbImage;
use cdad::model::builder::{build_model, BuiltModel, WeightSource};
use cdad::model::training::{Trainer, TrainingSample};
use clap::{Parser, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tch::nn::VarStore;

#[derive(Parser)]
#[command(name = "cdad-bench", about = "Benchmarks of cdad's model")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Parameters, time per training step and peak memory of the tiny and compact presets.
    TrainStep {
        /// Timed steps (after two warm-up steps).
        #[arg(long, default_value_t = 10)]
        steps: usize,
        /// Images per batch.
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// The EfficientNet-Lite0 weights for the features codec.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.models/efficientnet_lite0.safetensors"))]
        backbone: PathBuf,
    },
    /// Per-class image AUROC, pixel AUROC and AU-PRO of single-class detectors.
    SingleTask {
        /// Dataset root (MVTec AD layout); the built-in benchmark is written there when
        /// the folder does not exist.
        #[arg(long)]
        root: PathBuf,
        /// Classes to measure (default: all of the dataset).
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
        /// What to measure for each class.
        #[arg(long, value_delimiter = ',', default_value = "cdad")]
        variants: Vec<single_task::Variant>,
        /// Training steps per class (default: the preset's).
        #[arg(long)]
        steps: Option<usize>,
        /// Inference settings evaluated on each trained detector, START_STEPxSEEDS.
        #[arg(long, value_delimiter = ',', default_value = "999x1")]
        inference: Vec<single_task::Inference>,
    },
    /// A continual setting with CDAD, fine-tuning and joint training (compact preset).
    Protocol {
        /// Dataset root (MVTec AD layout), written with the built-in benchmark when missing.
        #[arg(long)]
        root: PathBuf,
        /// The setting, e.g. 3x5 or 10-1x5.
        #[arg(long)]
        setting: String,
        /// Methods to run, in order.
        #[arg(long, value_delimiter = ',', default_value = "cdad,finetune,joint")]
        methods: Vec<cdad::protocol::Method>,
        /// Training steps per task (default: the preset's).
        #[arg(long)]
        steps: Option<usize>,
        /// Configuration overrides on top of the compact preset, KEY=VALUE (repeatable).
        #[arg(long = "set")]
        overrides: Vec<String>,
        /// Folder for one JSON report per method.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Full SVD, iSVD and Gram on one task's representation: time, memory, agreement.
    Decompositions {
        /// Dataset root (MVTec AD layout), written with the built-in benchmark when missing.
        #[arg(long)]
        root: PathBuf,
        /// The class whose training images form the task.
        #[arg(long, default_value = "carpet")]
        class: String,
        /// Training steps before the representation is collected.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Every N-th training image runs the trajectory.
        #[arg(long, default_value_t = 4)]
        every: usize,
        /// Images per iSVD block.
        #[arg(long, default_value_t = 1)]
        block: usize,
    },
}

fn main() -> ExitCode {
    cdad::logging::init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cdad-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn count(vs: &VarStore, prefix: &str) -> i64 {
    vs.variables()
        .iter()
        .filter(|(n, _)| n.starts_with(prefix))
        .map(|(_, t)| t.numel() as i64)
        .sum()
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn run(command: Command) -> cdad::Result<()> {
    match command {
        Command::TrainStep {
            steps,
            batch,
            backbone,
        } => train_step(steps, batch, &backbone),
        Command::SingleTask {
            root,
            classes,
            variants,
            steps,
            inference,
        } => {
            print_header(&format!(
                "cdad-bench single-task --root {} --classes {} --variants {} --inference {} {}",
                root.display(),
                classes.join(","),
                comma_list(variants.iter().map(|v| format!("{v:?}"))),
                comma_list(inference.iter().map(|i| i.to_string())),
                steps.map_or(String::new(), |s| format!("--steps {s}"))
            ));
            ensure_benchmark(&root)?;
            let classes = if classes.is_empty() {
                cdad::data::dataset::open_dataset(&root, None)?
                    .class_names()
                    .to_vec()
            } else {
                classes
            };
            single_task::run(&root, &classes, &variants, steps, &inference)
        }
        Command::Protocol {
            root,
            setting,
            methods,
            steps,
            overrides,
            out,
        } => {
            print_header(&format!(
                "cdad-bench protocol --root {} --setting {setting} --methods {} {}{}",
                root.display(),
                comma_list(methods.iter().map(|m| m.name().to_string())),
                steps.map_or(String::new(), |s| format!("--steps {s}")),
                overrides.iter().map(|o| format!(" --set {o}")).collect::<String>()
            ));
            let mut config = Preset::Compact.config();
            if let Some(steps) = steps {
                config.train_steps = steps;
            }
            for item in &overrides {
                let (key, value) = item.split_once('=').ok_or_else(|| {
                    cdad::Error::invalid(format!("--set takes KEY=VALUE, not '{item}'"))
                })?;
                config.set_text(key.trim(), value)?;
            }
            config.validate()?;
            ensure_benchmark(&root)?;
            protocol::run(&root, &setting, &methods, &config, out.as_deref())
        }
        Command::Decompositions {
            root,
            class,
            steps,
            every,
            block,
        } => {
            print_header(&format!(
                "cdad-bench decompositions --root {} --class {class} --steps {steps} --every {every} --block {block}",
                root.display()
            ));
            ensure_benchmark(&root)?;
            decompositions::run(&root, &class, steps, every, block)
        }
    }
}

/// Items joined by commas, as the command line takes them.
fn comma_list(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// Writes the built-in benchmark (default size) to `root` when the folder does not exist.
fn ensure_benchmark(root: &std::path::Path) -> cdad::Result<()> {
    if !root.exists() {
        cdad::data::synthetic::generate(root, &cdad::data::synthetic::BenchmarkSpec::default())?;
    }
    Ok(())
}

fn print_header(command: &str) {
    println!("command: {command}");
    println!(
        "machine: {} logical CPUs, libtorch threads {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        tch::get_num_threads()
    );
    println!();
}

fn train_step(steps: usize, batch: usize, backbone: &std::path::Path) -> cdad::Result<()> {
    print_header(&format!(
        "cdad-bench train-step --steps {steps} --batch {batch}"
    ));
    println!("| preset | codec | image | latent | UNet params | AMN params | step (ms) | peak RSS (MiB) |");
    println!("|---|---|---|---|---|---|---|---|");
    for preset in [Preset::Tiny, Preset::Compact] {
        let mut config = preset.config();
        config.backbone_weights = backbone.to_string_lossy().into_owned();
        let BuiltModel { vs, model, .. } = build_model(&config, WeightSource::Files)?;
        let codec = model.codec();
        let latent = (
            codec.latent_channels(),
            config.image_size as i64 / codec.stride(),
        );
        let size = config.image_size;
        let class = &builtin_classes()[6];
        let images: Vec<RgbImage> = (0..batch as u64)
            .map(|i| class.good(size, &mut ChaCha8Rng::seed_from_u64(i)).0)
            .collect();
        let samples: Vec<TrainingSample<'_>> = images
            .iter()
            .map(|image| TrainingSample {
                image,
                sources: images.iter().collect(),
            })
            .collect();
        let mut trainer = Trainer::new(&vs, &config, true);
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for _ in 0..2 {
            trainer.step(&model, &samples, &mut rng, |_, u| u)?;
        }
        let start = Instant::now();
        for _ in 0..steps {
            trainer.step(&model, &samples, &mut rng, |_, u| u)?;
        }
        let per_step = start.elapsed().as_secs_f64() * 1000.0 / steps as f64;
        println!(
            "| {preset:?} | {} | {size} | {}x{}x{} | {} | {} | {per_step:.0} | {:.0} |",
            config.codec.as_str(),
            latent.0,
            latent.1,
            latent.1,
            count(&vs, "unet."),
            count(&vs, "amn."),
            peak_rss_mib()
        );
    }
    Ok(())
}
