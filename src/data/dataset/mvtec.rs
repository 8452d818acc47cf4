//! The MVTec AD layout: `<root>/<class>/train/good/*`, `<root>/<class>/test/<kind>/*`
//! (`good` or a defect kind) and `<root>/<class>/ground_truth/<kind>/<stem>_mask.png`.

use std::path::Path;

use super::{list_images, read_dir, utf8_name, ClassData, TestSample};
use crate::error::Result;

/// The test folder that holds defect-free images.
const GOOD: &str = "good";

/// Whether `dir` is a class folder: it holds `train/` or `test/`.
fn is_class_dir(dir: &Path) -> bool {
    dir.join("train").is_dir() || dir.join("test").is_dir()
}

/// Whether `root` holds at least one class folder.
pub(super) fn looks_like(root: &Path) -> Result<bool> {
    if !root.is_dir() {
        return Ok(false);
    }
    Ok(read_dir(root)?.iter().any(|entry| is_class_dir(entry)))
}

/// The class folder names under `root`, sorted.
pub(super) fn list_classes(root: &Path) -> Result<Vec<String>> {
    read_dir(root)?
        .iter()
        .filter(|entry| is_class_dir(entry))
        .map(|entry| utf8_name(entry))
        .collect()
}

/// Lists one class's training images and labelled test images, matching each defective
/// image to `ground_truth/<kind>/<stem>_mask.png` when that file exists.
pub(super) fn read_class(root: &Path, name: &str) -> Result<ClassData> {
    let class_dir = root.join(name);
    let train_dir = class_dir.join("train").join(GOOD);
    let train_good = if train_dir.is_dir() {
        list_images(&train_dir)?
    } else {
        Vec::new()
    };
    let mut test = Vec::new();
    let test_dir = class_dir.join("test");
    if test_dir.is_dir() {
        for kind_dir in read_dir(&test_dir)?.into_iter().filter(|p| p.is_dir()) {
            let kind = utf8_name(&kind_dir)?;
            let mask_dir = class_dir.join("ground_truth").join(&kind);
            for image in list_images(&kind_dir)? {
                let sample = if kind == GOOD {
                    TestSample {
                        image,
                        defect: None,
                        mask: None,
                    }
                } else {
                    let mut mask_name = image.file_stem().unwrap_or_default().to_os_string();
                    mask_name.push("_mask.png");
                    let mask = Some(mask_dir.join(mask_name)).filter(|m| m.is_file());
                    TestSample {
                        image,
                        defect: Some(kind.clone()),
                        mask,
                    }
                };
                test.push(sample);
            }
        }
    }
    Ok(ClassData {
        name: name.to_owned(),
        train_good,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures;
    use super::*;

    #[test]
    fn reads_classes_files_kinds_and_masks_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for class in ["screw", "bottle"] {
            let c = root.join(class);
            for name in ["002.png", "000.PNG", "001.jpg"] {
                fixtures::image(&c.join("train/good").join(name), 3, 3);
            }
            std::fs::write(c.join("train/good/notes.txt"), "not an image").unwrap();
            fixtures::image(&c.join("test/good/000.png"), 3, 3);
            for kind in ["scratch", "broken"] {
                fixtures::image(&c.join("test").join(kind).join("001.png"), 3, 3);
                fixtures::image(&c.join("test").join(kind).join("000.png"), 3, 3);
                for stem in ["000", "001"] {
                    let mask = c
                        .join("ground_truth")
                        .join(kind)
                        .join(format!("{stem}_mask.png"));
                    fixtures::mask(&mask, 3, 3);
                }
            }
        }
        std::fs::create_dir_all(root.join("license_folder")).unwrap();

        assert!(looks_like(root).unwrap());
        assert_eq!(list_classes(root).unwrap(), ["bottle", "screw"]);
        let class = read_class(root, "bottle").unwrap();
        class.validate().unwrap();
        let train: Vec<_> = class
            .train_good
            .iter()
            .map(|p| utf8_name(p).unwrap())
            .collect();
        assert_eq!(train, ["000.PNG", "001.jpg", "002.png"]);
        assert_eq!(class.test.len(), 5);
        assert_eq!(class.defect_kinds(), ["broken", "scratch"]);
        let labels: Vec<_> = class.test.iter().map(|s| s.defect.as_deref()).collect();
        assert_eq!(
            labels,
            [
                Some("broken"),
                Some("broken"),
                None,
                Some("scratch"),
                Some("scratch")
            ]
        );
        let first = &class.test[0];
        assert!(first.image.ends_with("bottle/test/broken/000.png"));
        assert!(first
            .mask
            .as_ref()
            .unwrap()
            .ends_with("bottle/ground_truth/broken/000_mask.png"));
        assert_eq!(class.test[2].mask, None);
    }

    #[test]
    fn missing_mask_is_left_for_validation_to_report() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("pill");
        fixtures::image(&c.join("train/good/000.png"), 3, 3);
        fixtures::image(&c.join("test/crack/007.png"), 3, 3);
        let class = read_class(dir.path(), "pill").unwrap();
        assert_eq!(class.test[0].mask, None);
        let message = class.validate().unwrap_err().to_string();
        assert!(
            message.contains("007.png") && message.contains("mask"),
            "{message}"
        );
    }

    #[test]
    fn not_mvtec_when_no_class_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("bottle/images")).unwrap();
        assert!(!looks_like(dir.path()).unwrap());
    }
}
