//! Command-line tool for cdad's data: writes the built-in synthetic benchmark, renders a
//! preview grid of its classes, and renders example NSA patch perturbations.

use cdad::data::dataset::save_image_png;
use cdad::data::nsa::{perturb, NsaConfig};
use cdad::data::synthetic::{classes_for, generate, BenchmarkSpec};
use cdad::image::{Mask, RgbImage};
use clap::{Parser, Subcommand};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cdad-data",
    about = "Synthetic benchmark and data tools for cdad"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct SpecArgs {
    /// Image side in pixels.
    #[arg(long, default_value_t = BenchmarkSpec::default().image_size)]
    size: usize,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A folder of photographs; each becomes one more texture class.
    #[arg(long)]
    photos: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the benchmark in MVTec AD layout.
    Benchmark {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        spec: SpecArgs,
        /// Good training images per class.
        #[arg(long, default_value_t = BenchmarkSpec::default().train_good)]
        train: usize,
        /// Good test images per class.
        #[arg(long, default_value_t = BenchmarkSpec::default().test_good)]
        test_good: usize,
        /// Defective test images per defect kind.
        #[arg(long, default_value_t = BenchmarkSpec::default().test_defects_per_kind)]
        defects_per_kind: usize,
    },
    /// Renders one PNG with a row per class: two good images, then each defect kind
    /// with its ground-truth mask outlined in red.
    Preview {
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        spec: SpecArgs,
        /// Only classes whose name starts with this prefix.
        #[arg(long, default_value = "")]
        only: String,
    },
    /// Renders example NSA perturbations: rows of original, perturbed, changed mask.
    NsaExamples {
        /// Output PNG file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        spec: SpecArgs,
    },
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cdad-data: {e}");
            ExitCode::FAILURE
        }
    }
}

fn spec_from(args: &SpecArgs) -> BenchmarkSpec {
    BenchmarkSpec {
        image_size: args.size,
        seed: args.seed,
        photo_dir: args.photos.clone(),
        ..BenchmarkSpec::default()
    }
}

fn run(command: Command) -> cdad::Result<()> {
    match command {
        Command::Benchmark {
            out,
            spec,
            train,
            test_good,
            defects_per_kind,
        } => {
            let spec = BenchmarkSpec {
                train_good: train,
                test_good,
                test_defects_per_kind: defects_per_kind,
                ..spec_from(&spec)
            };
            let classes = generate(&out, &spec)?;
            println!(
                "{:<16} {:>6} {:>10} {:>15}",
                "class", "train", "test good", "test defective"
            );
            for c in &classes {
                println!(
                    "{:<16} {:>6} {:>10} {:>15}",
                    c.name, c.train_good, c.test_good, c.test_defective
                );
            }
            println!("written to {}", out.display());
            Ok(())
        }
        Command::Preview { out, spec, only } => {
            let spec = spec_from(&spec);
            let size = spec.image_size;
            let classes: Vec<_> = classes_for(&spec)?
                .into_iter()
                .filter(|c| c.name.starts_with(&only))
                .collect();
            let mut rows = Vec::new();
            for class in &classes {
                let mut row = Vec::new();
                for i in 0..2 {
                    row.push(
                        class
                            .good(size, &mut ChaCha8Rng::seed_from_u64(spec.seed + i))
                            .0,
                    );
                }
                for (k, kind) in class.defects.iter().enumerate() {
                    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed + 100 + k as u64);
                    let (image, mask) = class.defective(*kind, size, &mut rng);
                    row.push(image.clone());
                    row.push(outline(&image, &mask));
                }
                rows.push(row);
            }
            save_image_png(&out, &grid(&rows, size))?;
            println!("{} classes written to {}", classes.len(), out.display());
            Ok(())
        }
        Command::NsaExamples { out, spec } => {
            let spec = spec_from(&spec);
            let size = spec.image_size;
            let config = NsaConfig::default();
            let mut rows = Vec::new();
            for class in classes_for(&spec)?.iter().step_by(3) {
                let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
                let image = class.good(size, &mut rng).0;
                let other = class.good(size, &mut rng).0;
                let result = perturb(&image, &[&other], &config, &mut rng)?;
                rows.push(vec![
                    image,
                    result.image.clone(),
                    outline(&result.image, &result.mask),
                    mask_image(&result.mask),
                ]);
            }
            save_image_png(&out, &grid(&rows, size))?;
            println!("{} examples written to {}", rows.len(), out.display());
            Ok(())
        }
    }
}

/// The image with the mask's boundary drawn in red.
fn outline(image: &RgbImage, mask: &Mask) -> RgbImage {
    let mut out = image.clone();
    let (w, h) = (mask.width(), mask.height());
    for y in 0..h {
        for x in 0..w {
            let on = mask.get(x, y);
            let edge = on
                && [(0i64, 1i64), (1, 0), (0, -1), (-1, 0)]
                    .iter()
                    .any(|(dx, dy)| {
                        let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                        nx < 0
                            || ny < 0
                            || nx >= w as i64
                            || ny >= h as i64
                            || !mask.get(nx as usize, ny as usize)
                    });
            if edge {
                out.set_pixel(x, y, [1.0, 0.0, 0.0]);
            }
        }
    }
    out
}

fn mask_image(mask: &Mask) -> RgbImage {
    let mut out = RgbImage::zeros(mask.width(), mask.height());
    for y in 0..mask.height() {
        for x in 0..mask.width() {
            if mask.get(x, y) {
                out.set_pixel(x, y, [1.0; 3]);
            }
        }
    }
    out
}

/// Tiles equally sized images into rows with a 2-pixel white gap.
fn grid(rows: &[Vec<RgbImage>], size: usize) -> RgbImage {
    let gap = 2;
    let columns = rows.iter().map(|r| r.len()).max().unwrap_or(1);
    let (w, h) = (
        columns * (size + gap) + gap,
        rows.len() * (size + gap) + gap,
    );
    let mut out = RgbImage::zeros(w, h);
    for y in 0..h {
        for x in 0..w {
            out.set_pixel(x, y, [1.0; 3]);
        }
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            for y in 0..size {
                for x in 0..size {
                    out.set_pixel(
                        gap + c * (size + gap) + x,
                        gap + r * (size + gap) + y,
                        tile.pixel(x, y),
                    );
                }
            }
        }
    }
    out
}
