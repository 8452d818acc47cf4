//! The training data of one task: its classes, each with good images given as files
//! (from a dataset) or as pixels (from the caller). Files are checked when added
//! (they exist and their headers decode); pixels are copied, so the caller's buffers
//! are never kept.

use crate::data::dataset::{load_image, open_dataset, DatasetLayout};
use crate::error::{Error, Result};
use crate::image::RgbImage;
use std::path::{Path, PathBuf};

/// One good training image.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainImage {
    /// An image file, decoded when training reads it.
    File(PathBuf),
    /// Pixels handed over by the caller.
    Pixels(RgbImage),
}

impl TrainImage {
    /// The image's pixels (decoding the file if needed).
    pub fn load(&self) -> Result<RgbImage> {
        match self {
            TrainImage::File(path) => load_image(path),
            TrainImage::Pixels(image) => Ok(image.clone()),
        }
    }
}

/// A class of a task: its name and good training images.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskClass {
    /// The class name, unique within the task.
    pub name: String,
    /// Its good training images.
    pub images: Vec<TrainImage>,
}

/// The training data of one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskData {
    name: String,
    classes: Vec<TaskClass>,
}

impl TaskData {
    /// An empty task. The name must be non-empty.
    pub fn new(name: &str) -> Result<Self> {
        check_name("task name", name)?;
        Ok(TaskData {
            name: name.to_string(),
            classes: Vec::new(),
        })
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The classes, in the order they were added.
    pub fn classes(&self) -> &[TaskClass] {
        &self.classes
    }

    /// The class called `name`, if the task has it.
    pub fn class(&self, name: &str) -> Option<&TaskClass> {
        self.classes.iter().find(|c| c.name == name)
    }

    /// Adds class `class` with the good training images of the dataset at `root`, in
    /// `layout` or the detected one. Every file must exist and have a readable image
    /// header. A class already in the task is an error; on any error nothing is added.
    pub fn add_class_from_dataset(
        &mut self,
        root: &Path,
        class: &str,
        layout: Option<DatasetLayout>,
    ) -> Result<()> {
        if self.class(class).is_some() {
            return Err(Error::invalid(format!(
                "class '{class}' is already part of task '{}'",
                self.name
            )));
        }
        let data = open_dataset(root, layout)?.class(class)?;
        for path in &data.train_good {
            image::image_dimensions(path).map_err(|e| {
                Error::invalid(format!(
                    "{}: not a readable image ({e}); expected PNG, JPEG, BMP or TIFF",
                    path.display()
                ))
            })?;
        }
        self.classes.push(TaskClass {
            name: class.to_string(),
            images: data.train_good.into_iter().map(TrainImage::File).collect(),
        });
        Ok(())
    }

    /// Appends one good image to class `class` (created if new).
    pub fn add_image(&mut self, class: &str, image: RgbImage) -> Result<()> {
        check_name("class name", class)?;
        match self.classes.iter_mut().find(|c| c.name == class) {
            Some(existing) => existing.images.push(TrainImage::Pixels(image)),
            None => self.classes.push(TaskClass {
                name: class.to_string(),
                images: vec![TrainImage::Pixels(image)],
            }),
        }
        Ok(())
    }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{what} '{name}' is not accepted; expected 1..=256 printable characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{generate, BenchmarkSpec};

    fn benchmark() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let spec = BenchmarkSpec {
            image_size: 32,
            train_good: 3,
            test_good: 1,
            test_defects_per_kind: 1,
            seed: 1,
            photo_dir: None,
        };
        generate(dir.path(), &spec).unwrap();
        dir
    }

    #[test]
    fn classes_come_from_datasets_and_from_pixels() {
        let dir = benchmark();
        let mut task = TaskData::new("base").unwrap();
        task.add_class_from_dataset(dir.path(), "gear", None)
            .unwrap();
        task.add_class_from_dataset(dir.path(), "wood", Some(DatasetLayout::MvtecAd))
            .unwrap();
        task.add_image("line_3_part", RgbImage::zeros(8, 8))
            .unwrap();
        task.add_image("line_3_part", RgbImage::zeros(8, 8))
            .unwrap();
        let names: Vec<_> = task.classes().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["gear", "wood", "line_3_part"]);
        assert_eq!(task.class("gear").unwrap().images.len(), 3);
        assert_eq!(task.class("line_3_part").unwrap().images.len(), 2);
        assert_eq!(
            task.class("gear").unwrap().images[0]
                .load()
                .unwrap()
                .width(),
            32
        );
    }

    #[test]
    fn bad_additions_are_refused_and_change_nothing() {
        let dir = benchmark();
        let mut task = TaskData::new("t").unwrap();
        task.add_class_from_dataset(dir.path(), "gear", None)
            .unwrap();
        let before = task.clone();
        let err = task
            .add_class_from_dataset(dir.path(), "gear", None)
            .unwrap_err();
        assert!(err.to_string().contains("already part of task"), "{err}");
        let err = task
            .add_class_from_dataset(dir.path(), "sprocket", None)
            .unwrap_err();
        assert!(
            err.to_string().contains("unknown class 'sprocket'"),
            "{err}"
        );
        std::fs::write(dir.path().join("wood/train/good/001.png"), b"not a png").unwrap();
        let err = task
            .add_class_from_dataset(dir.path(), "wood", None)
            .unwrap_err();
        assert!(err.to_string().contains("001.png"), "{err}");
        assert!(task.add_image("", RgbImage::zeros(4, 4)).is_err());
        assert_eq!(task, before);
        assert!(TaskData::new(" ").is_err());
    }
}
