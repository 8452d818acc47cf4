//! The plain folder layout for a user's own class: a folder of good training images,
//! optional folders of good and defective test images, and masks matched by file stem.

use std::path::{Path, PathBuf};

use super::{list_images, ClassData, TestSample};
use crate::error::Result;

/// The defect kind given to images of a folder layout's defect folder.
const DEFECT: &str = "defect";

/// Whether `root` holds a `good/` folder.
pub(super) fn looks_like(root: &Path) -> bool {
    root.join("good").is_dir()
}

/// Reads `root/good` (training), and when present `root/test_good`, `root/defect` and
/// `root/mask`, as one class named after `root`'s folder.
pub(super) fn open_root(root: &Path) -> Result<ClassData> {
    let optional = |name: &str| Some(root.join(name)).filter(|dir| dir.is_dir());
    let absolute = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let name = absolute
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("folder");
    open_folder_class(
        name,
        &root.join("good"),
        optional("test_good").as_deref(),
        optional(DEFECT).as_deref(),
        optional("mask").as_deref(),
    )
}

/// Lists a class from explicit folders: `good_dir` holds the training images,
/// `test_good_dir` good test images, `defect_dir` defective test images (kind
/// `"defect"`), and `mask_dir` their masks, named `<stem>.png` or `<stem>_mask.png`.
/// Files are sorted; a defective image without a mask is reported by
/// [`ClassData::validate`].
pub fn open_folder_class(
    name: &str,
    good_dir: &Path,
    test_good_dir: Option<&Path>,
    defect_dir: Option<&Path>,
    mask_dir: Option<&Path>,
) -> Result<ClassData> {
    let train_good = list_images(good_dir)?;
    let mut test = Vec::new();
    if let Some(dir) = test_good_dir {
        test.extend(list_images(dir)?.into_iter().map(|image| TestSample {
            image,
            defect: None,
            mask: None,
        }));
    }
    if let Some(dir) = defect_dir {
        for image in list_images(dir)? {
            let mask = mask_dir.and_then(|masks| find_mask(masks, &image));
            test.push(TestSample {
                image,
                defect: Some(DEFECT.to_owned()),
                mask,
            });
        }
    }
    Ok(ClassData {
        name: name.to_owned(),
        train_good,
        test,
    })
}

/// The mask of `image` in `mask_dir`: `<stem>.png`, else `<stem>_mask.png`.
fn find_mask(mask_dir: &Path, image: &Path) -> Option<PathBuf> {
    let stem = image.file_stem()?;
    ["", "_mask"].into_iter().find_map(|suffix| {
        let mut name = stem.to_os_string();
        name.push(suffix);
        name.push(".png");
        Some(mask_dir.join(name)).filter(|path| path.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::super::{fixtures, open_dataset, DatasetLayout};
    use super::*;

    #[test]
    fn reads_explicit_folders_and_matches_masks_by_stem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for name in ["b.png", "a.bmp"] {
            fixtures::image(&d.join("train").join(name), 2, 2);
        }
        fixtures::image(&d.join("ok/t.png"), 2, 2);
        for name in ["x.jpg", "y.png", "z.png"] {
            fixtures::image(&d.join("bad").join(name), 2, 2);
        }
        fixtures::mask(&d.join("gt/x.png"), 2, 2);
        fixtures::mask(&d.join("gt/y_mask.png"), 2, 2);

        let class = open_folder_class(
            "widget",
            &d.join("train"),
            Some(&d.join("ok")),
            Some(&d.join("bad")),
            Some(&d.join("gt")),
        )
        .unwrap();
        assert_eq!(class.name, "widget");
        assert_eq!(
            class.train_good,
            [d.join("train/a.bmp"), d.join("train/b.png")]
        );
        let expected = [
            (d.join("ok/t.png"), None, None),
            (d.join("bad/x.jpg"), Some(DEFECT), Some(d.join("gt/x.png"))),
            (
                d.join("bad/y.png"),
                Some(DEFECT),
                Some(d.join("gt/y_mask.png")),
            ),
            (d.join("bad/z.png"), Some(DEFECT), None),
        ];
        let got: Vec<_> = class
            .test
            .iter()
            .map(|s| (s.image.clone(), s.defect.as_deref(), s.mask.clone()))
            .collect();
        assert_eq!(got, expected);
        let message = class.validate().unwrap_err().to_string();
        assert!(message.contains("z.png"), "{message}");
    }

    #[test]
    fn root_layout_is_detected_and_read_as_one_class() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("gears");
        fixtures::image(&root.join("good/0.png"), 2, 2);
        fixtures::image(&root.join("test_good/1.png"), 2, 2);
        fixtures::image(&root.join("defect/2.png"), 2, 2);
        fixtures::mask(&root.join("mask/2_mask.png"), 2, 2);
        let dataset = open_dataset(&root, None).unwrap();
        assert_eq!(dataset.layout(), DatasetLayout::Folder);
        assert_eq!(dataset.class_names(), ["gears"]);
        let class = dataset.class("gears").unwrap();
        assert_eq!(class.train_good.len(), 1);
        assert_eq!(class.test.len(), 2);
        assert_eq!(class.test[1].mask, Some(root.join("mask/2_mask.png")));
    }

    #[test]
    fn missing_good_folder_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("nope");
        let message = open_folder_class("c", &good, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(message.contains(&good.display().to_string()), "{message}");
    }
}
