//! Continual settings as the paper names them: `B-I` (a base task of B classes, then
//! one task of I), `B-IxS` (a base task, then S tasks of I), `IxS` (S tasks of I).
//! Classes are taken in alphabetical order.

use crate::error::{Error, Result};

/// The task sizes of a setting, e.g. `10-1x5` -> [10, 1, 1, 1, 1, 1].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    name: String,
    sizes: Vec<usize>,
}

impl Setting {
    /// Parses `B-I`, `B-IxS` or `IxS` (all numbers positive).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(format!(
                "setting '{text}' is not of the form B-I, B-IxS or IxS (e.g. 14-1, 10-1x5, 3x5)"
            ))
        };
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(bad)
        };
        let repeated = |s: &str| -> Result<(usize, usize)> {
            match s.split_once(['x', 'X']) {
                Some((size, steps)) => Ok((number(size)?, number(steps)?)),
                None => Ok((number(s)?, 1)),
            }
        };
        let sizes = match text.split_once('-') {
            Some((base, rest)) => {
                let (size, steps) = repeated(rest)?;
                std::iter::once(number(base)?)
                    .chain(std::iter::repeat_n(size, steps))
                    .collect()
            }
            None => {
                let (size, steps) = repeated(text)?;
                if !text.contains(['x', 'X']) {
                    return Err(bad());
                }
                vec![size; steps]
            }
        };
        Ok(Setting {
            name: text.to_string(),
            sizes,
        })
    }

    /// The setting as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Classes per task, in order.
    pub fn task_sizes(&self) -> &[usize] {
        &self.sizes
    }

    /// Splits alphabetically sorted `classes` into tasks; the dataset must have exactly
    /// as many classes as the setting uses, or more (the first ones are used).
    pub fn split(&self, classes: &[String]) -> Result<Vec<Vec<String>>> {
        let needed: usize = self.sizes.iter().sum();
        if classes.len() < needed {
            return Err(Error::invalid(format!(
                "setting '{}' needs {needed} classes; the dataset has {}",
                self.name,
                classes.len()
            )));
        }
        let mut sorted = classes.to_vec();
        sorted.sort();
        let mut start = 0;
        Ok(self
            .sizes
            .iter()
            .map(|&n| {
                let task = sorted[start..start + n].to_vec();
                start += n;
                task
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_settings_parse() {
        for (text, sizes) in [
            ("14-1", vec![14, 1]),
            ("10-5", vec![10, 5]),
            ("3x5", vec![3, 3, 3, 3, 3]),
            ("10-1x5", vec![10, 1, 1, 1, 1, 1]),
            ("11-1", vec![11, 1]),
            ("8-4", vec![8, 4]),
            ("8-1x4", vec![8, 1, 1, 1, 1]),
        ] {
            assert_eq!(
                Setting::parse(text).unwrap().task_sizes(),
                sizes.as_slice(),
                "{text}"
            );
        }
        for bad in ["", "3", "x5", "0x3", "3-", "-1", "a-b", "3x", "2-1x0"] {
            assert!(Setting::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn classes_are_split_in_alphabetical_order() {
        let classes: Vec<String> = ["d", "a", "c", "b", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let tasks = Setting::parse("2-1x2").unwrap().split(&classes).unwrap();
        assert_eq!(tasks, vec![vec!["a", "b"], vec!["c"], vec!["d"]]);
        assert!(Setting::parse("3x2")
            .unwrap()
            .split(&classes)
            .unwrap_err()
            .to_string()
            .contains("needs 6 classes"));
    }
}
