//! A user's TorchScript backbone for the scorer: a traced EfficientNet-Lite0 scores like
//! the built-in one, a saved detector carries the module (it reloads without the file),
//! and unusable modules are refused with a message that says why.

use cdad::config::{Config, Preset};
use cdad::data::synthetic::{generate, BenchmarkSpec};
use cdad::data::task::TaskData;
use cdad::detector::{AnomalyMap, Detector};
use cdad::model::backbone::EfficientNetLite0;
use cdad::model::builder::backbone_path;
use cdad::Error;
use std::path::Path;
use tch::{CModule, Device, Kind, Tensor};

const SIDE: i64 = 32;

/// Traces `map` (run on the built-in EfficientNet-Lite0) into a TorchScript file whose
/// forward returns that one feature map (lists of maps are covered by the unit tests of
/// the output conversion; a traced module can only return one value).
fn trace(path: &Path, map: impl Fn(&EfficientNetLite0, &Tensor) -> Tensor) {
    let net = EfficientNetLite0::load(&backbone_path(&Preset::Tiny.config()), Device::Cpu).unwrap();
    let input = Tensor::zeros([1, 3, SIDE, SIDE], (Kind::Float, Device::Cpu));
    let module = tch::no_grad(|| {
        CModule::create_by_tracing("Backbone", "forward", &[input], &mut |inputs| {
            vec![map(&net, &inputs[0])]
        })
    })
    .unwrap();
    module.save(path).unwrap();
}

fn config(scorer_backbone: &Path, score_layers: &[usize]) -> Config {
    let mut config = Preset::Tiny.config();
    config.train_steps = 6;
    config.scorer_backbone = scorer_backbone.to_string_lossy().into_owned();
    config.score_layers = score_layers.to_vec();
    config
}

fn trained(config: Config, root: &Path) -> Detector {
    let mut detector = Detector::new(config).unwrap();
    let mut task = TaskData::new("base").unwrap();
    task.add_class_from_dataset(root, "gear", None).unwrap();
    let id = detector.add_task(task).unwrap();
    detector.train_task(id, |_, _| true).unwrap();
    detector
}

fn test_maps(detector: &Detector, root: &Path) -> Vec<AnomalyMap> {
    let data = cdad::data::dataset::open_dataset(root, None)
        .unwrap()
        .class("gear")
        .unwrap();
    let images: Vec<_> = data
        .test
        .iter()
        .map(|s| cdad::data::dataset::load_test_sample(s).unwrap().0)
        .collect();
    detector.infer_batch(&images).unwrap()
}

#[test]
fn a_traced_backbone_scores_like_the_builtin_one_and_travels_with_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("bench");
    let spec = BenchmarkSpec {
        image_size: SIDE as usize,
        train_good: 4,
        test_good: 1,
        test_defects_per_kind: 1,
        seed: 3,
        photo_dir: None,
    };
    generate(&root, &spec).unwrap();
    let module = dir.path().join("lite0.pt");
    // The stride-8 map (the built-in backbone's stage 2) is the module's only map.
    trace(&module, |net, x| net.forward_features_to(x, 8).remove(2));

    let builtin = trained(config(Path::new(""), &[2]), &root);
    let user = trained(config(&module, &[0]), &root);
    let (a, b) = (test_maps(&builtin, &root), test_maps(&user, &root));
    assert_eq!(a.len(), b.len());
    for (a, b) in a.iter().zip(&b) {
        let peak = a.values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a
            .values
            .iter()
            .zip(&b.values)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            peak > 0.0 && worst <= 1e-4 * peak,
            "difference {worst} of peak {peak}"
        );
    }

    let saved = dir.path().join("model.cdad");
    user.save(&saved).unwrap();
    std::fs::remove_file(&module).unwrap();
    let reloaded = Detector::load(&saved, None).unwrap();
    for (x, y) in b.iter().zip(&test_maps(&reloaded, &root)) {
        assert_eq!(x.values, y.values);
        assert_eq!(x.score, y.score);
    }
}

#[test]
fn unusable_modules_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pt");
    let err = Detector::new(config(&missing, &[0])).err().unwrap();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.pt"), "{err}");

    let garbage = dir.path().join("garbage.pt");
    std::fs::write(&garbage, b"not a zip archive").unwrap();
    let err = Detector::new(config(&garbage, &[0])).err().unwrap();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    assert!(
        err.to_string()
            .contains("not a loadable TorchScript module"),
        "{err}"
    );

    let shallow = dir.path().join("shallow.pt");
    trace(&shallow, |net, x| net.forward_features_to(x, 4).remove(1));
    let err = Detector::new(config(&shallow, &[1, 2, 3])).err().unwrap();
    assert!(
        err.to_string()
            .contains("returns 1 feature map(s) but score_layers [1, 2, 3] needs 4"),
        "{err}"
    );
}
