//! Gradient projection end to end on the tiny preset: after a second task is trained,
//! every projected layer responds to inputs in the first task's input space exactly as
//! before (the update is projected after AdamW's scaling and weight decay, and with
//! `project_gradients` the gradient before the moments as well), while training the
//! same task without projection changes those responses. The memories
//! survive a save and load.

use cdad::config::{Config, Decomposition, Preset};
use cdad::data::synthetic::{generate, BenchmarkSpec};
use cdad::data::task::TaskData;
use cdad::detector::Detector;
use std::collections::BTreeMap;
use std::path::Path;
use tch::{Kind, Tensor};

fn task(root: &Path, name: &str, class: &str) -> TaskData {
    let mut task = TaskData::new(name).unwrap();
    task.add_class_from_dataset(root, class, None).unwrap();
    task
}

fn config(projection: bool, project_gradients: bool) -> Config {
    let mut config = Preset::Tiny.config();
    config.train_steps = 8;
    config.projection = projection;
    config.project_gradients = project_gradients;
    config.decomposition = Decomposition::Gram;
    config.representation_every = 2;
    config
}

/// max |W_after P - W_before P| / max |W_before P| over every layer with a basis.
fn drift(
    bases: &[(String, Tensor)],
    before: &BTreeMap<String, Tensor>,
    after: &BTreeMap<String, Tensor>,
) -> f64 {
    let mut worst: f64 = 0.0;
    for (key, basis) in bases {
        let name = key.strip_prefix("gpm.").unwrap();
        if basis.size()[1] == 0 {
            continue;
        }
        let out = before[name].size()[0];
        let response = |w: &Tensor| w.view([out, -1]).matmul(basis);
        let reference = response(&before[name]);
        let change = (response(&after[name]) - &reference)
            .abs()
            .max()
            .double_value(&[]);
        let scale = reference.abs().max().double_value(&[]).max(1e-6);
        worst = worst.max(change / scale);
    }
    worst
}

#[test]
fn projection_keeps_old_responses_and_fine_tuning_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let spec = BenchmarkSpec {
        image_size: 32,
        train_good: 6,
        test_good: 1,
        test_defects_per_kind: 1,
        seed: 4,
        photo_dir: None,
    };
    generate(dir.path(), &spec).unwrap();
    let copy = |d: &Detector| -> BTreeMap<String, Tensor> {
        d.weights()
            .into_iter()
            .map(|(k, t)| (k, t.detach().copy()))
            .collect()
    };

    let mut projected = Detector::new(config(true, false)).unwrap();
    let mut gradients_projected = Detector::new(config(true, true)).unwrap();
    let mut finetuned = Detector::new(config(false, false)).unwrap();
    for detector in [&mut projected, &mut gradients_projected, &mut finetuned] {
        let first = detector
            .add_task(task(dir.path(), "first", "gear"))
            .unwrap();
        detector.train_task(first, |_, _| true).unwrap();
        detector
            .add_task(task(dir.path(), "second", "wood"))
            .unwrap();
    }
    let before = copy(&projected);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        copy(&finetuned).keys().collect::<Vec<_>>()
    );
    let bases = projected.projection_bases();
    assert!(bases.len() > 10, "only {} projected layers", bases.len());
    let (kept, total) = projected.projection_occupancy();
    assert!(kept > 0 && kept < total, "memory holds {kept} of {total}");

    // The first task trained identically in all three: the flags act from the second.
    let twin = copy(&gradients_projected);
    assert!(before.iter().all(|(name, t)| t.equal(&twin[name])));
    projected.train_task(1, |_, _| true).unwrap();
    gradients_projected.train_task(1, |_, _| true).unwrap();
    finetuned.train_task(1, |_, _| true).unwrap();
    let with_projection = drift(&bases, &before, &copy(&projected));
    let with_gradients_projected = drift(&bases, &before, &copy(&gradients_projected));
    let without = drift(&bases, &before, &copy(&finetuned));
    assert!(
        with_projection < 1e-4,
        "projected training moved old responses by {with_projection}"
    );
    assert!(
        with_gradients_projected < 1e-4,
        "training with projected gradients moved old responses by {with_gradients_projected}"
    );
    // Projecting the gradients too changes which steps are taken.
    let (a, b) = (copy(&projected), copy(&gradients_projected));
    assert!(a.iter().any(|(name, t)| !t.equal(&b[name])));
    assert!(
        without > 1e-2,
        "fine-tuning should move old responses (moved {without})"
    );

    // Unprojectable parameters stay frozen after the first task.
    let after = copy(&projected);
    for (name, tensor) in &before {
        if name.starts_with("unet.") && (tensor.dim() == 1 || name.starts_with("unet.time_embed")) {
            assert!(tensor.equal(&after[name]), "{name} changed in a later task");
        }
    }

    // The memories are saved with the model and come back identical.
    let path = dir.path().join("model.cdad");
    projected.save(&path).unwrap();
    let loaded = Detector::load(&path, None).unwrap();
    let reloaded = loaded.projection_bases();
    assert_eq!(reloaded.len(), projected.projection_bases().len());
    for ((a, x), (b, y)) in projected.projection_bases().iter().zip(&reloaded) {
        assert_eq!(a, b);
        assert!(x.equal(y), "{a}");
    }
    let norm: f64 = reloaded
        .iter()
        .map(|(_, t)| t.square().sum(Kind::Float).double_value(&[]))
        .sum();
    assert!(norm > 0.0);
}
