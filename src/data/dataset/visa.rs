//! The VisA layout: a split CSV with header `object,split,label,image,mask`, labels
//! `normal`/`anomaly`, and image and mask paths relative to the dataset root.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{ClassData, TestSample};
use crate::error::{Error, Result};

/// The split CSV's place inside a VisA root.
const DEFAULT_SPLIT: [&str; 2] = ["split_csv", "1cls.csv"];

/// The columns the split CSV must have, in any order.
const COLUMNS: [&str; 5] = ["object", "split", "label", "image", "mask"];

/// The defect kind given to anomalous VisA images, whose CSV names no kind.
const ANOMALY: &str = "anomaly";

/// Whether `root` is a CSV file or holds `split_csv/1cls.csv`.
pub(super) fn looks_like(root: &Path) -> bool {
    let is_csv = root
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    (is_csv && root.is_file()) || default_split(root).is_file()
}

/// `<root>/split_csv/1cls.csv`.
fn default_split(root: &Path) -> PathBuf {
    DEFAULT_SPLIT
        .iter()
        .fold(root.to_path_buf(), |path, part| path.join(part))
}

/// Reads the split CSV at `root` (a file) or `root/split_csv/1cls.csv`, returning the
/// folder the CSV's paths are relative to and every class it lists. A CSV given directly
/// is resolved against the folder above `split_csv/` when it lies in one, otherwise
/// against its own folder.
pub(super) fn read_split(root: &Path) -> Result<(PathBuf, BTreeMap<String, ClassData>)> {
    let (csv, data_root) = if root.is_file() {
        let folder = root.parent().unwrap_or(Path::new(""));
        let data_root = match (folder.file_name(), folder.parent()) {
            (Some(name), Some(above)) if name == DEFAULT_SPLIT[0] => above,
            _ => folder,
        };
        (root.to_path_buf(), data_root.to_path_buf())
    } else {
        (default_split(root), root.to_path_buf())
    };
    let text = fs::read_to_string(&csv).map_err(|source| Error::Io {
        path: csv.clone(),
        source,
    })?;
    let classes = classes_from_csv(&text, &data_root).map_err(|problem| {
        Error::invalid(format!("VisA split file {}: {problem}", csv.display()))
    })?;
    Ok((data_root, classes))
}

/// Groups the CSV rows into classes; errors are described without the file name.
fn classes_from_csv(text: &str, data_root: &Path) -> Result<BTreeMap<String, ClassData>, String> {
    let mut records = parse_csv(text)?.into_iter();
    let header = records
        .next()
        .ok_or("the file is empty; expected the header object,split,label,image,mask")?;
    let mut column = [0usize; COLUMNS.len()];
    for (slot, name) in column.iter_mut().zip(COLUMNS) {
        *slot = header
            .fields
            .iter()
            .position(|f| f.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                format!(
                    "the header ({}) has no '{name}' column; expected columns {}",
                    header.fields.join(","),
                    COLUMNS.join(",")
                )
            })?;
    }
    let [object, split, label, image, mask] = column;
    let mut classes: BTreeMap<String, ClassData> = BTreeMap::new();
    for record in records {
        let line = record.line;
        if record.fields.len() != header.fields.len() {
            return Err(format!(
                "line {line} has {} fields; expected {} as in the header",
                record.fields.len(),
                header.fields.len()
            ));
        }
        let field = |i: usize| record.fields[i].trim();
        if field(object).is_empty() || field(image).is_empty() {
            return Err(format!(
                "line {line} has an empty object or image field; expected both"
            ));
        }
        let anomalous = match field(label) {
            "normal" => false,
            "anomaly" => true,
            other => {
                return Err(format!(
                    "line {line} has label '{other}'; expected 'normal' or 'anomaly'"
                ))
            }
        };
        let class = classes
            .entry(field(object).to_owned())
            .or_insert_with(|| ClassData {
                name: field(object).to_owned(),
                train_good: Vec::new(),
                test: Vec::new(),
            });
        let image_path = data_root.join(field(image));
        match field(split) {
            "train" if anomalous => {
                return Err(format!(
                    "line {line} puts an anomalous image in the train split; expected only normal \
                     training images"
                ))
            }
            "train" => class.train_good.push(image_path),
            "test" => class.test.push(TestSample {
                image: image_path,
                defect: anomalous.then(|| ANOMALY.to_owned()),
                mask: Some(field(mask))
                    .filter(|m| !m.is_empty())
                    .map(|m| data_root.join(m)),
            }),
            other => {
                return Err(format!(
                    "line {line} has split '{other}'; expected 'train' or 'test'"
                ))
            }
        }
    }
    Ok(classes)
}

/// One CSV record and the line it starts on (1-based).
#[derive(Debug, PartialEq)]
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits CSV text into records: comma-separated fields, optionally enclosed in double
/// quotes (which may hold commas, line breaks and doubled quotes); LF or CRLF line ends;
/// a leading byte-order mark and blank lines are skipped.
fn parse_csv(text: &str) -> Result<Vec<Record>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut line = 1;
    let mut record_line = 1;
    let mut quote_line = 1;
    let mut in_quotes = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                if !fields.is_empty() || !field.is_empty() || quoted {
                    fields.push(std::mem::take(&mut field));
                    records.push(Record {
                        line: record_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                quoted = false;
                line += 1;
                record_line = line;
            }
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
                quote_line = line;
            }
            _ if quoted => {
                return Err(format!(
                "line {line}: unexpected '{c}' after a closing quote; expected a comma or line end"
            ))
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(format!(
            "the quoted field opened on line {quote_line} is never closed; expected a closing '\"'"
        ));
    }
    if !fields.is_empty() || !field.is_empty() || quoted {
        fields.push(field);
        records.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::super::{fixtures, open_dataset, DatasetLayout};
    use super::*;

    fn fields(records: &[Record]) -> Vec<Vec<&str>> {
        records
            .iter()
            .map(|r| r.fields.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn csv_parser_handles_quotes_line_ends_and_blank_lines() {
        let text = "\u{feff}a,\"b,c\",\"say \"\"hi\"\"\"\r\n\r\n\"two\nlines\",,\"\"\nlast,x,y";
        let records = parse_csv(text).unwrap();
        assert_eq!(
            fields(&records),
            [
                vec!["a", "b,c", "say \"hi\""],
                vec!["two\nlines", "", ""],
                vec!["last", "x", "y"]
            ]
        );
        assert_eq!(
            records.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 3, 5]
        );
    }

    #[test]
    fn csv_parser_rejects_malformed_quotes() {
        let message = parse_csv("a,\"open\nb").unwrap_err();
        assert!(
            message.contains("line 1") && message.contains("never closed"),
            "{message}"
        );
        let message = parse_csv("ok\n\"x\"y,z").unwrap_err();
        assert!(message.contains("line 2"), "{message}");
    }

    fn write_visa(root: &Path, csv_body: &str) -> PathBuf {
        let csv = default_split(root);
        fs::create_dir_all(csv.parent().unwrap()).unwrap();
        fs::write(&csv, format!("object,split,label,image,mask\n{csv_body}")).unwrap();
        csv
    }

    #[test]
    fn reads_split_csv_into_classes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for image in [
            "candle/Normal/0.JPG",
            "candle/Normal/1.JPG",
            "candle/Normal/2.JPG",
            "candle/Anomaly/3, odd.JPG",
        ] {
            fixtures::image(&root.join(image), 3, 2);
        }
        fixtures::image(&root.join("pcb1/Normal/0.JPG"), 3, 2);
        fixtures::mask(&root.join("candle/Masks/3.png"), 3, 2);
        let csv = write_visa(
            root,
            "candle,train,normal,candle/Normal/1.JPG,\n\
             candle,train,normal,candle/Normal/0.JPG,\n\
             candle,test,normal,candle/Normal/2.JPG,\n\
             candle,test,anomaly,\"candle/Anomaly/3, odd.JPG\",candle/Masks/3.png\n\
             pcb1,train,normal,pcb1/Normal/0.JPG,\n",
        );

        for given in [root.to_path_buf(), csv] {
            let dataset = open_dataset(&given, None).unwrap();
            assert_eq!(dataset.layout(), DatasetLayout::Visa);
            assert_eq!(dataset.root(), root);
            assert_eq!(dataset.class_names(), ["candle", "pcb1"]);
            let candle = dataset.class("candle").unwrap();
            assert_eq!(
                candle.train_good,
                [
                    root.join("candle/Normal/1.JPG"),
                    root.join("candle/Normal/0.JPG")
                ]
            );
            assert_eq!(candle.test.len(), 2);
            assert_eq!(
                candle.test[0],
                TestSample {
                    image: root.join("candle/Normal/2.JPG"),
                    defect: None,
                    mask: None
                }
            );
            let anomalous = &candle.test[1];
            assert_eq!(anomalous.image, root.join("candle/Anomaly/3, odd.JPG"));
            assert_eq!(anomalous.defect.as_deref(), Some(ANOMALY));
            assert_eq!(anomalous.mask, Some(root.join("candle/Masks/3.png")));
        }
    }

    #[test]
    fn csv_outside_split_folder_resolves_against_its_own_folder() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("mine.csv");
        fs::write(
            &csv,
            "label,object,image,split,mask\nnormal,nut,nut/0.png,train,\n",
        )
        .unwrap();
        let (data_root, classes) = read_split(&csv).unwrap();
        assert_eq!(data_root, dir.path());
        assert_eq!(classes["nut"].train_good, [dir.path().join("nut/0.png")]);
    }

    #[test]
    fn bad_rows_are_errors_naming_the_csv_and_line() {
        let cases = [
            ("a,train,anomaly,a/0.png,a/m.png\n", "line 2"),
            ("a,val,normal,a/0.png,\n", "'val'"),
            ("a,test,broken,a/0.png,\n", "'broken'"),
            ("a,test,normal\n", "3 fields"),
        ];
        for (body, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let csv = write_visa(dir.path(), body);
            let message = read_split(dir.path()).unwrap_err().to_string();
            assert!(
                message.contains(&csv.display().to_string()) && message.contains(expected),
                "{message}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let csv = default_split(dir.path());
        fs::create_dir_all(csv.parent().unwrap()).unwrap();
        fs::write(&csv, "object,split,image,mask\n").unwrap();
        let message = read_split(dir.path()).unwrap_err().to_string();
        assert!(message.contains("'label'"), "{message}");
    }
}
