//! The built-in synthetic benchmark: 15 classes (7 textures, 8 objects) written in the
//! MVTec AD layout, so every continual setting of the paper (14-1, 10-5, 3x5, 10-1x5)
//! runs on it unchanged. Good images vary in pose, lighting, colour and texture; each
//! class has four defect kinds (part faults and surface defects) of realistic subtlety
//! with exact ground-truth masks. Deterministic by seed. Texture classes can also be
//! cut from a folder of real photographs.

mod defects;
mod noise;
mod objects;
mod paint;
mod photos;
mod textures;

pub use defects::SurfaceDefect;
pub use objects::{Object, PartFault};
pub use photos::PhotoTexture;
pub use textures::Texture;

use crate::data::dataset::{save_image_png, save_mask_png};
use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// How large and how many: the knobs of a generated benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkSpec {
    /// Side of the square images in pixels.
    pub image_size: usize,
    /// Good training images per class.
    pub train_good: usize,
    /// Good test images per class.
    pub test_good: usize,
    /// Defective test images per defect kind (four kinds per class).
    pub test_defects_per_kind: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// A folder of photographs; each becomes one more texture class.
    pub photo_dir: Option<PathBuf>,
}

impl Default for BenchmarkSpec {
    /// Sized so the whole continual demo trains on a 2-core CPU in minutes.
    fn default() -> Self {
        BenchmarkSpec {
            image_size: 128,
            train_good: 40,
            test_good: 12,
            test_defects_per_kind: 4,
            seed: 0,
            photo_dir: None,
        }
    }
}

/// What a class is made of.
#[derive(Debug, Clone)]
pub enum ClassSource {
    /// A procedural material.
    Texture(Texture),
    /// A procedural part.
    Object(Object),
    /// Crops of a photograph.
    Photo(PhotoTexture),
}

/// A defect kind of a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefectKind {
    /// Painted onto the surface.
    Surface(SurfaceDefect),
    /// A faulty part, by name.
    Part(&'static str),
}

impl DefectKind {
    /// The folder name of this kind.
    pub fn name(self) -> &'static str {
        match self {
            DefectKind::Surface(d) => d.name(),
            DefectKind::Part(name) => name,
        }
    }
}

/// One class of the benchmark: its name, what it is drawn from, and its defect kinds.
#[derive(Debug, Clone)]
pub struct SyntheticClass {
    /// The class name (folder name).
    pub name: String,
    /// What it is drawn from.
    pub source: ClassSource,
    /// Its four defect kinds.
    pub defects: Vec<DefectKind>,
}

/// The 15 built-in classes, in alphabetical order.
pub fn builtin_classes() -> Vec<SyntheticClass> {
    use DefectKind::{Part, Surface};
    use SurfaceDefect::*;
    let texture = |name: &str, t: Texture, kinds: [SurfaceDefect; 4]| SyntheticClass {
        name: name.to_string(),
        source: ClassSource::Texture(t),
        defects: kinds.iter().map(|&k| Surface(k)).collect(),
    };
    let object = |name: &str, o: Object, surface: [SurfaceDefect; 2]| SyntheticClass {
        name: name.to_string(),
        source: ClassSource::Object(o),
        defects: o
            .fault_names()
            .iter()
            .map(|&f| Part(f))
            .chain(surface.iter().map(|&k| Surface(k)))
            .collect(),
    };
    vec![
        object("bottle_cap", Object::BottleCap, [Scratch, Stain]),
        object("cable", Object::Cable, [Contamination, Crack]),
        object("capsule", Object::Capsule, [Crack, Stain]),
        texture(
            "carpet",
            Texture::Carpet,
            [Hole, Contamination, Colour, Stain],
        ),
        texture(
            "concrete",
            Texture::Concrete,
            [Crack, Hole, Stain, Contamination],
        ),
        texture(
            "fabric",
            Texture::Fabric,
            [Hole, Contamination, Colour, Scratch],
        ),
        object("gear", Object::Gear, [Scratch, Contamination]),
        texture("granite", Texture::Granite, [Crack, Scratch, Stain, Colour]),
        object("hex_nut", Object::HexNut, [Scratch, Hole]),
        texture("leather", Texture::Leather, [Scratch, Hole, Colour, Stain]),
        texture(
            "metal",
            Texture::Metal,
            [Scratch, Hole, Stain, Contamination],
        ),
        object("pcb", Object::Pcb, [Contamination, Scratch]),
        object("screw", Object::Screw, [Scratch, Stain]),
        object("washer", Object::Washer, [Scratch, Hole]),
        texture("wood", Texture::Wood, [Scratch, Crack, Hole, Colour]),
    ]
}

/// The classes of a spec: the built-in 15 plus one per photograph, sorted by name.
pub fn classes_for(spec: &BenchmarkSpec) -> Result<Vec<SyntheticClass>> {
    let mut classes = builtin_classes();
    if let Some(dir) = &spec.photo_dir {
        for photo in PhotoTexture::from_folder(dir)? {
            classes.push(SyntheticClass {
                name: photo.class_name(),
                source: ClassSource::Photo(photo),
                defects: [
                    SurfaceDefect::Scratch,
                    SurfaceDefect::Hole,
                    SurfaceDefect::Stain,
                    SurfaceDefect::Contamination,
                ]
                .iter()
                .map(|&k| DefectKind::Surface(k))
                .collect(),
            });
        }
    }
    classes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(classes)
}

impl SyntheticClass {
    /// A good sample and the mask of the part's surface (all set for materials).
    pub fn good(&self, size: usize, rng: &mut ChaCha8Rng) -> (RgbImage, Mask) {
        match &self.source {
            ClassSource::Texture(t) => (t.render(size, rng), full_mask(size)),
            ClassSource::Photo(p) => (p.render(size, rng), full_mask(size)),
            ClassSource::Object(o) => {
                let pose = o.random_pose(rng);
                o.render(size, &pose, None)
            }
        }
    }

    /// A defective sample of `kind` and its ground-truth mask (never empty).
    pub fn defective(
        &self,
        kind: DefectKind,
        size: usize,
        rng: &mut ChaCha8Rng,
    ) -> (RgbImage, Mask) {
        match (kind, &self.source) {
            (DefectKind::Part(name), ClassSource::Object(o)) => {
                let pose = o.random_pose(rng);
                let (good, _) = o.render(size, &pose, None);
                // Retry the rare fault that changes (almost) nothing in this pose.
                for _ in 0..8 {
                    let fault = o.random_fault(name, rng);
                    let (bad, _) = o.render(size, &pose, Some(fault));
                    let mask = objects::difference_mask(&good, &bad, 0.05);
                    if mask.count() >= 4 {
                        return (bad, mask);
                    }
                }
                let fault = PartFault {
                    name,
                    index: 0,
                    amount: 1.0,
                };
                let (bad, _) = o.render(size, &pose, Some(fault));
                let mask = objects::difference_mask(&good, &bad, 0.05);
                (bad, mask)
            }
            (DefectKind::Surface(defect), _) => {
                let (mut image, surface) = self.good(size, rng);
                let mask = defect.paint(&mut image, &surface, rng);
                (image, mask)
            }
            (DefectKind::Part(name), _) => unreachable!("part fault {name} on a material class"),
        }
    }
}

fn full_mask(size: usize) -> Mask {
    Mask::from_bytes(size, size, &vec![1; size * size]).unwrap_or_else(|| Mask::zeros(size, size))
}

/// The random stream of one image: independent of every other image, so classes and
/// splits can be generated separately and still match.
fn sample_rng(seed: u64, class: &str, split: &str, index: usize) -> ChaCha8Rng {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in class.bytes().chain([0xff]).chain(split.bytes()) {
        h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(h ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Per-class counts of a written benchmark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenClass {
    /// Class name.
    pub name: String,
    /// Good training images.
    pub train_good: usize,
    /// Good test images.
    pub test_good: usize,
    /// Defective test images.
    pub test_defective: usize,
}

/// Writes the benchmark in MVTec AD layout under `root` (created if needed), then
/// `benchmark.json` describing it. A root that already holds a benchmark of the same
/// spec is left as it is.
pub fn generate(root: &Path, spec: &BenchmarkSpec) -> Result<Vec<WrittenClass>> {
    if !(16..=1024).contains(&spec.image_size) {
        return Err(Error::invalid(format!(
            "image_size {} must be in 16..=1024",
            spec.image_size
        )));
    }
    if spec.train_good == 0 || spec.test_good == 0 || spec.test_defects_per_kind == 0 {
        return Err(Error::invalid(
            "train_good, test_good and test_defects_per_kind must be at least 1",
        ));
    }
    let classes = classes_for(spec)?;
    let manifest_path = root.join("benchmark.json");
    let manifest = manifest(spec, &classes);
    if let Ok(existing) = std::fs::read_to_string(&manifest_path) {
        if serde_json::from_str::<serde_json::Value>(&existing)
            .ok()
            .as_ref()
            == Some(&manifest)
        {
            log::info!("benchmark at {} is up to date", root.display());
            return Ok(written(spec, &classes));
        }
    }
    let size = spec.image_size;
    for (done, class) in classes.iter().enumerate() {
        log::info!(
            "generating class {} ({}/{})",
            class.name,
            done + 1,
            classes.len()
        );
        let dir = root.join(&class.name);
        let folders = [dir.join("train/good"), dir.join("test/good")]
            .into_iter()
            .chain(class.defects.iter().flat_map(|k| {
                [
                    dir.join("test").join(k.name()),
                    dir.join("ground_truth").join(k.name()),
                ]
            }));
        for folder in folders {
            std::fs::create_dir_all(&folder).map_err(|source| Error::Io {
                path: folder.clone(),
                source,
            })?;
        }
        for (split, count) in [("train", spec.train_good), ("test", spec.test_good)] {
            for i in 0..count {
                let (image, _) =
                    class.good(size, &mut sample_rng(spec.seed, &class.name, split, i));
                save_image_png(
                    &dir.join(split).join("good").join(format!("{i:03}.png")),
                    &image,
                )?;
            }
        }
        for kind in &class.defects {
            for i in 0..spec.test_defects_per_kind {
                let mut rng = sample_rng(spec.seed, &class.name, kind.name(), i);
                let (image, mask) = class.defective(*kind, size, &mut rng);
                save_image_png(
                    &dir.join("test")
                        .join(kind.name())
                        .join(format!("{i:03}.png")),
                    &image,
                )?;
                save_mask_png(
                    &dir.join("ground_truth")
                        .join(kind.name())
                        .join(format!("{i:03}_mask.png")),
                    &mask,
                )?;
            }
        }
    }
    let text =
        serde_json::to_string_pretty(&manifest).map_err(|e| Error::invalid(e.to_string()))?;
    std::fs::write(&manifest_path, text).map_err(|source| Error::Io {
        path: manifest_path.clone(),
        source,
    })?;
    Ok(written(spec, &classes))
}

fn manifest(spec: &BenchmarkSpec, classes: &[SyntheticClass]) -> serde_json::Value {
    serde_json::json!({
        "generator": "cdad synthetic benchmark",
        "version": 1,
        "image_size": spec.image_size,
        "train_good": spec.train_good,
        "test_good": spec.test_good,
        "test_defects_per_kind": spec.test_defects_per_kind,
        "seed": spec.seed,
        "classes": classes.iter().map(|c| serde_json::json!({
            "name": c.name,
            "defects": c.defects.iter().map(|d| d.name()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn written(spec: &BenchmarkSpec, classes: &[SyntheticClass]) -> Vec<WrittenClass> {
    classes
        .iter()
        .map(|c| WrittenClass {
            name: c.name.clone(),
            train_good: spec.train_good,
            test_good: spec.test_good,
            test_defective: spec.test_defects_per_kind * c.defects.len(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::{load_test_sample, open_dataset, DatasetLayout};

    #[test]
    fn fifteen_distinct_classes_half_textures_half_objects_in_alphabetical_order() {
        let classes = builtin_classes();
        assert_eq!(classes.len(), 15);
        let names: Vec<_> = classes.iter().map(|c| c.name.clone()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted);
        let textures = classes
            .iter()
            .filter(|c| matches!(c.source, ClassSource::Texture(_)))
            .count();
        assert_eq!(textures, 7);
        for c in &classes {
            assert_eq!(c.defects.len(), 4, "{}", c.name);
        }
    }

    #[test]
    fn samples_are_deterministic_and_good_images_vary() {
        for class in builtin_classes() {
            let a = class
                .good(48, &mut sample_rng(1, &class.name, "train", 0))
                .0;
            let b = class
                .good(48, &mut sample_rng(1, &class.name, "train", 0))
                .0;
            let c = class
                .good(48, &mut sample_rng(1, &class.name, "train", 1))
                .0;
            assert_eq!(a, b, "{}", class.name);
            let difference: f32 = a
                .as_planar()
                .iter()
                .zip(c.as_planar())
                .map(|(x, y)| (x - y).abs())
                .sum::<f32>()
                / a.as_planar().len() as f32;
            assert!(
                difference > 0.005,
                "{}: good images nearly identical ({difference})",
                class.name
            );
        }
    }

    #[test]
    fn every_defect_changes_exactly_its_masked_pixels_and_the_mask_is_sane() {
        let size = 64;
        for class in builtin_classes() {
            for kind in &class.defects {
                for i in 0..3 {
                    let mut rng = sample_rng(5, &class.name, kind.name(), i);
                    let (image, mask) = class.defective(*kind, size, &mut rng);
                    let n = mask.count();
                    assert!(
                        n >= 3,
                        "{} {}: mask has {n} pixels",
                        class.name,
                        kind.name()
                    );
                    assert!(
                        n < size * size * 6 / 10,
                        "{} {}: mask covers {n} pixels",
                        class.name,
                        kind.name()
                    );
                    assert_eq!((image.width(), mask.width()), (size, size));
                }
            }
        }
    }

    #[test]
    fn surface_defects_leave_unmasked_pixels_almost_untouched() {
        let class = &builtin_classes()[4]; // concrete
        let mut rng = sample_rng(3, "x", "y", 0);
        let (good, surface) = class.good(64, &mut rng.clone());
        let (bad, mask) =
            class.defective(DefectKind::Surface(SurfaceDefect::Scratch), 64, &mut rng);
        assert_eq!(surface.count(), 64 * 64);
        let mut changed_outside = 0;
        for y in 0..64 {
            for x in 0..64 {
                let d = (0..3)
                    .map(|c| (good.pixel(x, y)[c] - bad.pixel(x, y)[c]).abs())
                    .fold(0.0, f32::max);
                if !mask.get(x, y) && d > 0.2 {
                    changed_outside += 1;
                }
            }
        }
        assert_eq!(changed_outside, 0, "strong changes outside the mask");
    }

    #[test]
    fn a_generated_benchmark_reads_back_as_mvtec_and_regeneration_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BenchmarkSpec {
            image_size: 32,
            train_good: 2,
            test_good: 1,
            test_defects_per_kind: 1,
            seed: 3,
            photo_dir: None,
        };
        let written = generate(dir.path(), &spec).unwrap();
        assert_eq!(written.len(), 15);
        let dataset = open_dataset(dir.path(), None).unwrap();
        assert_eq!(dataset.layout(), DatasetLayout::MvtecAd);
        assert_eq!(dataset.class_names().len(), 15);
        let gear = dataset.class("gear").unwrap();
        assert_eq!(gear.train_good.len(), 2);
        assert_eq!(gear.test.len(), 1 + 4);
        for sample in &gear.test {
            let (image, mask) = load_test_sample(sample).unwrap();
            assert_eq!((image.width(), mask.width()), (32, 32));
            assert_eq!(
                sample.defect.is_some(),
                mask.count() > 0,
                "{:?}",
                sample.image
            );
        }
        let stamp = std::fs::metadata(dir.path().join("gear/train/good/000.png"))
            .unwrap()
            .modified()
            .unwrap();
        generate(dir.path(), &spec).unwrap();
        let again = std::fs::metadata(dir.path().join("gear/train/good/000.png"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(stamp, again, "an up-to-date benchmark was rewritten");
    }

    #[test]
    fn photographs_become_extra_texture_classes() {
        let dir = tempfile::tempdir().unwrap();
        let mut photo = RgbImage::zeros(80, 60);
        for y in 0..60 {
            for x in 0..80 {
                photo.set_pixel(x, y, [x as f32 / 80.0, y as f32 / 60.0, 0.5]);
            }
        }
        save_image_png(&dir.path().join("Brick Wall.png"), &photo).unwrap();
        let spec = BenchmarkSpec {
            photo_dir: Some(dir.path().to_path_buf()),
            ..BenchmarkSpec::default()
        };
        let classes = classes_for(&spec).unwrap();
        assert_eq!(classes.len(), 16);
        let brick = classes
            .iter()
            .find(|c| c.name == "photo_brick_wall")
            .unwrap();
        let (image, mask) = brick.defective(
            DefectKind::Surface(SurfaceDefect::Hole),
            32,
            &mut sample_rng(0, "a", "b", 0),
        );
        assert_eq!(image.width(), 32);
        assert!(mask.count() > 0);
        let empty = tempfile::tempdir().unwrap();
        let spec = BenchmarkSpec {
            photo_dir: Some(empty.path().to_path_buf()),
            ..BenchmarkSpec::default()
        };
        assert!(classes_for(&spec)
            .unwrap_err()
            .to_string()
            .contains("no photographs"));
    }

    #[test]
    fn bad_specs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let spec = BenchmarkSpec {
            image_size: 8,
            ..BenchmarkSpec::default()
        };
        assert!(generate(dir.path(), &spec)
            .unwrap_err()
            .to_string()
            .contains("image_size"));
        let spec = BenchmarkSpec {
            train_good: 0,
            ..BenchmarkSpec::default()
        };
        assert!(generate(dir.path(), &spec).is_err());
    }
}
