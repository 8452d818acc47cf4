//! Dataset layouts: MVTec AD, VisA (split CSV), and a plain folder layout, read into one
//! common model of classes, training images and labelled test samples.

mod folder;
mod loader;
mod mvtec;
mod visa;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::image::{Mask, RgbImage};

pub use folder::open_folder_class;
pub use loader::{load_image, load_mask, save_image_png, save_mask_png};

/// File extensions read as images, compared case-insensitively.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

/// One test image with its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSample {
    /// The image file.
    pub image: PathBuf,
    /// `None` for a good image, otherwise the kind of defect.
    pub defect: Option<String>,
    /// The ground-truth mask file; required for defective images.
    pub mask: Option<PathBuf>,
}

/// The files of one product class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassData {
    /// The class name.
    pub name: String,
    /// Defect-free training images, sorted.
    pub train_good: Vec<PathBuf>,
    /// Labelled test images.
    pub test: Vec<TestSample>,
}

impl ClassData {
    /// Checks that the class can be trained and evaluated: at least one training image,
    /// a mask for every defective test image, and every listed file present.
    pub fn validate(&self) -> Result<()> {
        if self.train_good.is_empty() {
            return Err(Error::invalid(format!(
                "class '{}' has no training images; expected at least one defect-free image",
                self.name
            )));
        }
        for sample in &self.test {
            if let (Some(kind), None) = (&sample.defect, &sample.mask) {
                return Err(Error::invalid(format!(
                    "test image {} of class '{}' is labelled defective ('{kind}') but has no \
                     ground-truth mask; expected a mask for every defective image",
                    sample.image.display(),
                    self.name
                )));
            }
        }
        let files = self
            .test
            .iter()
            .flat_map(|s| std::iter::once(&s.image).chain(&s.mask));
        for file in self.train_good.iter().chain(files) {
            if !file.is_file() {
                return Err(Error::invalid(format!(
                    "file {} listed for class '{}' does not exist or is not a regular file",
                    file.display(),
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// The distinct defect kinds among the test samples, sorted.
    pub fn defect_kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.test.iter().filter_map(|s| s.defect.clone()).collect();
        kinds.sort();
        kinds.dedup();
        kinds
    }
}

/// How a dataset's files are arranged on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetLayout {
    /// `<root>/<class>/{train/good, test/<kind>, ground_truth/<kind>}`.
    MvtecAd,
    /// A split CSV (`<root>/split_csv/1cls.csv`, or the CSV itself as root).
    Visa,
    /// One class: `<root>/good`, optional `<root>/test_good`, `<root>/defect`, `<root>/mask`.
    Folder,
}

impl DatasetLayout {
    /// Recognises the layout of `root`: a CSV file or a `split_csv/1cls.csv` means VisA, a
    /// `good/` folder means the folder layout, and class folders with `train/` or `test/`
    /// mean MVTec AD.
    pub fn detect(root: &Path) -> Result<Self> {
        if visa::looks_like(root) {
            Ok(DatasetLayout::Visa)
        } else if folder::looks_like(root) {
            Ok(DatasetLayout::Folder)
        } else if mvtec::looks_like(root)? {
            Ok(DatasetLayout::MvtecAd)
        } else {
            Err(Error::invalid(format!(
                "cannot recognise the dataset layout of {}; expected a VisA split CSV (or \
                 split_csv/1cls.csv inside it), a good/ folder (folder layout), or class \
                 folders holding train/ and test/ (MVTec AD layout)",
                root.display()
            )))
        }
    }
}

/// An opened dataset: its class names, and each class's files on request.
#[derive(Debug, Clone)]
pub struct Dataset {
    root: PathBuf,
    layout: DatasetLayout,
    classes: Vec<String>,
    listed: BTreeMap<String, ClassData>,
}

impl Dataset {
    /// The folder that the dataset's relative paths start from.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The layout the dataset was read with.
    pub fn layout(&self) -> DatasetLayout {
        self.layout
    }

    /// The class names, sorted alphabetically.
    pub fn class_names(&self) -> &[String] {
        &self.classes
    }

    /// The files of one class, validated with [`ClassData::validate`].
    pub fn class(&self, name: &str) -> Result<ClassData> {
        if !self.classes.iter().any(|c| c == name) {
            return Err(Error::invalid(format!(
                "unknown class '{name}' in dataset {}; known classes: {}",
                self.root.display(),
                self.classes.join(", ")
            )));
        }
        let data = match self.listed.get(name) {
            Some(data) => data.clone(),
            None => mvtec::read_class(&self.root, name)?,
        };
        data.validate()?;
        Ok(data)
    }
}

/// Opens the dataset at `root`, in the given layout or, when `None`, the detected one.
pub fn open_dataset(root: &Path, layout: Option<DatasetLayout>) -> Result<Dataset> {
    let layout = match layout {
        Some(layout) => layout,
        None => DatasetLayout::detect(root)?,
    };
    let (data_root, listed) = match layout {
        DatasetLayout::MvtecAd => (root.to_path_buf(), BTreeMap::new()),
        DatasetLayout::Visa => visa::read_split(root)?,
        DatasetLayout::Folder => {
            let data = folder::open_root(root)?;
            (
                root.to_path_buf(),
                BTreeMap::from([(data.name.clone(), data)]),
            )
        }
    };
    let classes = match layout {
        DatasetLayout::MvtecAd => mvtec::list_classes(root)?,
        DatasetLayout::Visa | DatasetLayout::Folder => listed.keys().cloned().collect(),
    };
    if classes.is_empty() {
        return Err(Error::invalid(format!(
            "dataset {} read as {layout:?} holds no classes; expected at least one",
            root.display()
        )));
    }
    Ok(Dataset {
        root: data_root,
        layout,
        classes,
        listed,
    })
}

/// Loads a test image and its mask, checking that their sizes agree. A good image
/// without a mask gets an all-zero mask.
pub fn load_test_sample(sample: &TestSample) -> Result<(RgbImage, Mask)> {
    let image = load_image(&sample.image)?;
    let mask = match (&sample.mask, &sample.defect) {
        (Some(path), _) => {
            let mask = load_mask(path)?;
            if (mask.width(), mask.height()) != (image.width(), image.height()) {
                return Err(Error::invalid(format!(
                    "mask {} is {}x{} but its image {} is {}x{}; expected the same size",
                    path.display(),
                    mask.width(),
                    mask.height(),
                    sample.image.display(),
                    image.width(),
                    image.height()
                )));
            }
            mask
        }
        (None, None) => Mask::zeros(image.width(), image.height()),
        (None, Some(kind)) => {
            return Err(Error::invalid(format!(
                "test image {} is labelled defective ('{kind}') but has no ground-truth mask; \
                 expected a mask for every defective image",
                sample.image.display()
            )))
        }
    };
    Ok((image, mask))
}

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
fn has_image_extension(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        IMAGE_EXTENSIONS
            .iter()
            .any(|known| known.eq_ignore_ascii_case(e))
    })
}

/// The image files directly inside `dir`, sorted.
fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in read_dir(dir)? {
        if entry.is_file() && has_image_extension(&entry) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// The entries of `dir`, sorted by path.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let io_error = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        entries.push(entry.map_err(io_error)?.path());
    }
    entries.sort();
    Ok(entries)
}

/// The file name of `path` as UTF-8, or an error naming it.
fn utf8_name(path: &Path) -> Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::invalid(format!(
            "the name of {} is not valid UTF-8; expected class and defect folder names in UTF-8",
            path.display()
        ))
        })
}

/// Small fixture files shared by the dataset tests.
#[cfg(test)]
mod fixtures {
    use super::*;

    /// Writes a grey `width` x `height` PNG, creating its folders.
    pub(super) fn image(path: &Path, width: usize, height: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut img = RgbImage::zeros(width, height);
        img.set_pixel(0, 0, [0.5, 0.5, 0.5]);
        save_image_png(path, &img).unwrap();
    }

    /// Writes a mask PNG with its first pixel set, creating its folders.
    pub(super) fn mask(path: &Path, width: usize, height: usize) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut mask = Mask::zeros(width, height);
        mask.set(0, 0, true);
        save_mask_png(path, &mask).unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mvtec_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("bottle");
        fixtures::image(&class.join("train/good/000.png"), 4, 4);
        fixtures::image(&class.join("test/good/000.png"), 4, 4);
        fixtures::image(&class.join("test/crack/000.png"), 4, 4);
        fixtures::mask(&class.join("ground_truth/crack/000_mask.png"), 4, 4);
        dir
    }

    fn sample(image: PathBuf, defect: Option<&str>, mask: Option<PathBuf>) -> TestSample {
        TestSample {
            image,
            defect: defect.map(str::to_owned),
            mask,
        }
    }

    #[test]
    fn detects_each_layout() {
        let mvtec = mvtec_root();
        assert_eq!(
            DatasetLayout::detect(mvtec.path()).unwrap(),
            DatasetLayout::MvtecAd
        );

        let folder = tempfile::tempdir().unwrap();
        fixtures::image(&folder.path().join("good/a.png"), 2, 2);
        assert_eq!(
            DatasetLayout::detect(folder.path()).unwrap(),
            DatasetLayout::Folder
        );

        let visa = tempfile::tempdir().unwrap();
        let csv = visa.path().join("split_csv/1cls.csv");
        fs::create_dir_all(csv.parent().unwrap()).unwrap();
        fs::write(&csv, "object,split,label,image,mask\n").unwrap();
        assert_eq!(
            DatasetLayout::detect(visa.path()).unwrap(),
            DatasetLayout::Visa
        );
        assert_eq!(DatasetLayout::detect(&csv).unwrap(), DatasetLayout::Visa);

        let empty = tempfile::tempdir().unwrap();
        let message = DatasetLayout::detect(empty.path()).unwrap_err().to_string();
        assert!(
            message.contains(&empty.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn open_dataset_detects_and_reads_classes() {
        let root = mvtec_root();
        let dataset = open_dataset(root.path(), None).unwrap();
        assert_eq!(dataset.layout(), DatasetLayout::MvtecAd);
        assert_eq!(dataset.class_names(), ["bottle"]);
        let class = dataset.class("bottle").unwrap();
        assert_eq!(class.defect_kinds(), ["crack"]);
    }

    #[test]
    fn unknown_class_lists_the_known_ones() {
        let root = mvtec_root();
        fixtures::image(&root.path().join("cable/train/good/000.png"), 4, 4);
        let dataset = open_dataset(root.path(), None).unwrap();
        let message = dataset.class("carpet").unwrap_err().to_string();
        assert!(
            message.contains("'carpet'") && message.contains("bottle, cable"),
            "{message}"
        );
    }

    #[test]
    fn empty_class_is_an_error() {
        let root = mvtec_root();
        fs::create_dir_all(root.path().join("cable/train/good")).unwrap();
        let dataset = open_dataset(root.path(), None).unwrap();
        let message = dataset.class("cable").unwrap_err().to_string();
        assert!(
            message.contains("'cable'") && message.contains("no training images"),
            "{message}"
        );
    }

    #[test]
    fn defective_image_without_mask_is_an_error() {
        let root = mvtec_root();
        let unmasked = root.path().join("bottle/test/crack/001.png");
        fixtures::image(&unmasked, 4, 4);
        let dataset = open_dataset(root.path(), None).unwrap();
        let message = dataset.class("bottle").unwrap_err().to_string();
        assert!(
            message.contains(&unmasked.display().to_string()),
            "{message}"
        );

        let message = load_test_sample(&sample(unmasked.clone(), Some("crack"), None))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains(&unmasked.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn listed_file_that_is_missing_is_an_error() {
        let root = mvtec_root();
        let class = open_dataset(root.path(), None)
            .unwrap()
            .class("bottle")
            .unwrap();
        let mut broken = class.clone();
        let gone = root.path().join("bottle/test/crack/gone.png");
        broken
            .test
            .push(sample(gone.clone(), Some("crack"), Some(gone.clone())));
        let message = broken.validate().unwrap_err().to_string();
        assert!(message.contains(&gone.display().to_string()), "{message}");
    }

    #[test]
    fn mask_size_mismatch_names_both_files_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("img.png");
        let mask = dir.path().join("img_mask.png");
        fixtures::image(&image, 5, 4);
        fixtures::mask(&mask, 3, 2);
        let err = load_test_sample(&sample(image.clone(), Some("scratch"), Some(mask.clone())));
        let message = err.unwrap_err().to_string();
        for part in [image.display().to_string(), mask.display().to_string()] {
            assert!(message.contains(&part), "{message}");
        }
        assert!(
            message.contains("5x4") && message.contains("3x2"),
            "{message}"
        );
    }

    #[test]
    fn load_test_sample_reads_masks_and_zero_masks_for_good_images() {
        let root = mvtec_root();
        let class = open_dataset(root.path(), None)
            .unwrap()
            .class("bottle")
            .unwrap();
        let good = class.test.iter().find(|s| s.defect.is_none()).unwrap();
        let (image, mask) = load_test_sample(good).unwrap();
        assert_eq!((image.width(), mask.width(), mask.count()), (4, 4, 0));
        let bad = class.test.iter().find(|s| s.defect.is_some()).unwrap();
        let (_, mask) = load_test_sample(bad).unwrap();
        assert_eq!(mask.count(), 1);
    }

    #[test]
    fn corrupted_test_image_error_names_the_file() {
        let root = mvtec_root();
        let image = root.path().join("bottle/test/good/000.png");
        fs::write(&image, [0u8, 1, 2, 3, 250, 251]).unwrap();
        let message = load_test_sample(&sample(image.clone(), None, None))
            .unwrap_err()
            .to_string();
        assert!(message.contains(&image.display().to_string()), "{message}");
    }
}
