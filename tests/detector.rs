//! The detector end to end on the tiny preset: train, infer, save and load (maps
//! bit-identical), cancellation (nothing changes), and refusal of bad input and bad
//! files.

use cdad::config::Preset;
use cdad::data::synthetic::{generate, BenchmarkSpec};
use cdad::data::task::TaskData;
use cdad::detector::Detector;
use cdad::image::RgbImage;
use cdad::Error;
use std::path::Path;

fn benchmark(dir: &Path) {
    let spec = BenchmarkSpec {
        image_size: 32,
        train_good: 4,
        test_good: 1,
        test_defects_per_kind: 1,
        seed: 2,
        photo_dir: None,
    };
    generate(dir, &spec).unwrap();
}

fn task(root: &Path, name: &str, classes: &[&str]) -> TaskData {
    let mut task = TaskData::new(name).unwrap();
    for class in classes {
        task.add_class_from_dataset(root, class, None).unwrap();
    }
    task
}

fn tiny_detector() -> Detector {
    let mut config = Preset::Tiny.config();
    config.train_steps = 6;
    Detector::new(config).unwrap()
}

/// A benchmark folder, and a tiny detector with its gear class added as task `id`.
fn with_gear_task() -> (tempfile::TempDir, Detector, usize) {
    let dir = tempfile::tempdir().unwrap();
    benchmark(dir.path());
    let mut detector = tiny_detector();
    let id = detector
        .add_task(task(dir.path(), "base", &["gear"]))
        .unwrap();
    (dir, detector, id)
}

/// A benchmark folder and a tiny detector trained on its gear class.
fn trained_on_gear() -> (tempfile::TempDir, Detector) {
    let (dir, mut detector, id) = with_gear_task();
    detector.train_task(id, |_, _| true).unwrap();
    (dir, detector)
}

fn gray(side: usize, value: f32) -> RgbImage {
    RgbImage::from_planar(side, side, vec![value; 3 * side * side]).unwrap()
}

#[test]
fn train_infer_save_load_round_trip_is_bit_identical() {
    let dir = tempfile::tempdir().unwrap();
    benchmark(dir.path());
    let mut detector = tiny_detector();
    let err = detector.infer(&gray(32, 0.5)).unwrap_err();
    assert!(matches!(err, Error::State(_)), "{err}");
    let id = detector
        .add_task(task(dir.path(), "base", &["gear", "wood"]))
        .unwrap();
    let mut fractions = Vec::new();
    let summary = detector.train_task(id, |f, _| {
        fractions.push(f);
        true
    });
    let summary = summary.unwrap();
    assert_eq!(summary.steps, 6);
    assert!(
        fractions.windows(2).all(|w| w[0] <= w[1])
            && (fractions.last().unwrap() - 1.0).abs() < 1e-9
    );

    // Maps come back at the input's size, even for a non-square, larger input.
    let odd = RgbImage::from_planar(50, 40, vec![0.3; 3 * 50 * 40]).unwrap();
    let map = detector.infer(&odd).unwrap();
    assert_eq!((map.width, map.height, map.values.len()), (50, 40, 2000));
    assert!(map.values.iter().all(|v| v.is_finite() && *v >= 0.0));
    let again = detector.infer(&odd).unwrap();
    assert_eq!(map, again, "the same image must give the same map");

    let path = dir.path().join("model.cdad");
    detector.save(&path).unwrap();
    let loaded = Detector::load(&path, None).unwrap();
    assert_eq!(loaded.tasks(), detector.tasks());
    assert_eq!(
        loaded.infer(&odd).unwrap(),
        map,
        "reloaded detector must give bit-identical maps"
    );
    // In a batch the arithmetic is blocked differently: equal up to float rounding.
    let batch = loaded.infer_batch(&[odd.clone(), gray(32, 0.7)]).unwrap();
    assert_eq!((batch[0].width, batch[0].height), (50, 40));
    let worst = batch[0]
        .values
        .iter()
        .zip(&map.values)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0f32, f32::max);
    assert!(worst < 1e-4, "batched map differs by {worst}");
    assert_eq!(batch.len(), 2);
}

#[test]
fn cancelled_training_changes_nothing_and_the_task_can_be_trained_later() {
    let (dir, mut detector, id) = with_gear_task();
    let path_before = dir.path().join("before.cdad");
    detector.save(&path_before).unwrap();
    let mut calls = 0;
    let err = detector
        .train_task(id, |_, stage| {
            calls += 1;
            !(stage == "training" && calls > 8)
        })
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(!detector.tasks()[id].trained);
    let path_after = dir.path().join("after.cdad");
    detector.save(&path_after).unwrap();
    assert_eq!(
        std::fs::read(&path_before).unwrap(),
        std::fs::read(&path_after).unwrap(),
        "weights changed"
    );
    detector.train_task(id, |_, _| true).unwrap();
    assert!(detector.infer(&gray(32, 0.5)).is_ok());
}

#[test]
fn bad_calls_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    benchmark(dir.path());
    let mut detector = tiny_detector();
    assert!(detector
        .train_task(0, |_, _| true)
        .unwrap_err()
        .to_string()
        .contains("does not exist"));
    let empty = TaskData::new("nothing").unwrap();
    assert!(detector
        .add_task(empty)
        .unwrap_err()
        .to_string()
        .contains("no classes"));
    let first = detector.add_task(task(dir.path(), "a", &["gear"])).unwrap();
    let err = detector
        .add_task(task(dir.path(), "b", &["gear"]))
        .unwrap_err();
    assert!(
        err.to_string().contains("already belongs to task 'a'"),
        "{err}"
    );
    let second = detector.add_task(task(dir.path(), "b", &["wood"])).unwrap();
    let err = detector.train_task(second, |_, _| true).unwrap_err();
    assert!(
        matches!(err, Error::State(_)) && err.to_string().contains("task 0 must be trained"),
        "{err}"
    );
    detector.train_task(first, |_, _| true).unwrap();
    let err = detector.train_task(first, |_, _| true).unwrap_err();
    assert!(err.to_string().contains("already trained"), "{err}");

    let mut config = Preset::Tiny.config();
    config.image_size = 36;
    assert!(Detector::new(config)
        .err()
        .unwrap()
        .to_string()
        .contains("multiple of 8"));
}

#[test]
fn damaged_model_files_are_refused() {
    let (dir, detector) = trained_on_gear();
    let path = dir.path().join("model.cdad");
    detector.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();

    let truncated = dir.path().join("truncated.cdad");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert!(matches!(
        Detector::load(&truncated, None).err().unwrap(),
        Error::FileFormat(_)
    ));

    let mut flipped = bytes.clone();
    let middle = flipped.len() / 3;
    flipped[middle] ^= 0x40;
    let corrupted = dir.path().join("corrupted.cdad");
    std::fs::write(&corrupted, &flipped).unwrap();
    assert!(matches!(
        Detector::load(&corrupted, None).err().unwrap(),
        Error::FileFormat(_)
    ));

    let missing = Detector::load(&dir.path().join("none.cdad"), None)
        .err()
        .unwrap();
    assert!(missing.to_string().contains("none.cdad"), "{missing}");
    // Saving over an existing file into a folder that does not exist fails and leaves nothing.
    assert!(detector
        .save(&dir.path().join("no/such/dir/model.cdad"))
        .is_err());
}

#[test]
fn inference_keys_change_on_a_trained_detector_and_are_saved() {
    use cdad::config::value::Value;
    let (dir, mut detector) = trained_on_gear();
    let image = gray(32, 0.4);
    let one_seed = detector.infer(&image).unwrap();

    let err = detector
        .set_inference_key("train_steps", Value::Int(5))
        .unwrap_err();
    assert!(
        err.to_string().contains("'train_steps' cannot change"),
        "{err}"
    );
    let err = detector
        .set_inference_key("map_seeds", Value::Int(0))
        .unwrap_err();
    assert!(matches!(err, Error::OutOfRange { .. }), "{err}");
    assert_eq!(
        detector.infer(&image).unwrap(),
        one_seed,
        "a refused change changes nothing"
    );

    // The first of three seeds is the single-seed draw; the average of three differs.
    detector
        .set_inference_key("map_seeds", Value::Int(3))
        .unwrap();
    let three_seeds = detector.infer(&image).unwrap();
    assert_ne!(three_seeds.values, one_seed.values);
    assert_eq!(detector.config().map_seeds, 3);

    let path = dir.path().join("model.cdad");
    detector.save(&path).unwrap();
    let loaded = Detector::load(&path, None).unwrap();
    assert_eq!(loaded.config().map_seeds, 3);
    assert_eq!(loaded.infer(&image).unwrap(), three_seeds);

    detector
        .set_inference_key("map_seeds", Value::Int(1))
        .unwrap();
    assert_eq!(detector.infer(&image).unwrap(), one_seed);
    detector
        .set_inference_key("start_step", Value::Int(400))
        .unwrap();
    assert_ne!(detector.infer(&image).unwrap().values, one_seed.values);
}
