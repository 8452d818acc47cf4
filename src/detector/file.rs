//! The detector's model file: one self-describing file holding everything needed to
//! run inference (a JSON header with the configuration, the task registry and any
//! metadata, and the weights), written atomically and verified completely on load.
//!
//! Layout (all integers little-endian):
//!
//! | bytes | content |
//! |---|---|
//! | 8 | magic `CDADMDL\0` |
//! | 4 | format version (u32) |
//! | 8 | total file length in bytes, trailer included (u64) |
//! | 8 | header length `h` (u64) |
//! | `h` | header: UTF-8 JSON |
//! | rest | tensors, in the safetensors layout: u64 index length, JSON index `{name: {dtype, shape, data_offsets}}` padded with spaces to 8 bytes, raw little-endian data |
//! | 4 | CRC-32 (IEEE) of every byte before it |
//!
//! The total length sits at the front so that a truncated file is reported with the
//! size it should have. A file is either read completely and verified, or refused with
//! an error that names it and says what is wrong; nothing is half-loaded.

use crate::error::{Error, Result};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tch::{Kind, Tensor};

/// The format version this build writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first eight bytes of every cdad model file.
pub const MAGIC: [u8; 8] = *b"CDADMDL\0";

/// Magic, version, total length and header length.
const PREAMBLE_LEN: usize = 8 + 4 + 8 + 8;
/// Offset of the version field.
const VERSION_AT: usize = 8;
/// Offset of the total-length field.
const TOTAL_LEN_AT: usize = 12;
/// Offset of the header-length field.
const HEADER_LEN_AT: usize = 20;
/// The trailing CRC-32.
const TRAILER_LEN: usize = 4;
/// The reserved safetensors index key for free-form metadata (tolerated, not written).
const METADATA_KEY: &str = "__metadata__";

/// Tensor element types the file stores, with their safetensors names.
const DTYPES: [(Kind, &str); 10] = [
    (Kind::Bool, "BOOL"),
    (Kind::Uint8, "U8"),
    (Kind::Int8, "I8"),
    (Kind::Int16, "I16"),
    (Kind::Int, "I32"),
    (Kind::Int64, "I64"),
    (Kind::Half, "F16"),
    (Kind::BFloat16, "BF16"),
    (Kind::Float, "F32"),
    (Kind::Double, "F64"),
];

/// Writes `header` and `tensors` to `path` atomically: the file is assembled in a
/// temporary file next to `path`, flushed to disk and renamed over `path`, so `path`
/// holds either its previous content or the complete new file. On error the temporary
/// file is removed and an existing `path` is left untouched.
///
/// Tensor names must be unique; tensors may live on any device, be non-contiguous and
/// have any of the types bool, u8, i8, i16, i32, i64, f16, bf16, f32 or f64.
pub fn write_model_file(
    path: &Path,
    header: &serde_json::Value,
    tensors: &[(String, Tensor)],
) -> Result<()> {
    let bytes = encode(header, tensors)
        .map_err(|msg| Error::invalid(format!("{}: cannot save model: {msg}", path.display())))?;
    write_atomically(path, &bytes)
}

/// Reads a model file written by [`write_model_file`]: the header and the tensors, in
/// the order they were written, on the CPU. Refuses a file that is not a cdad model
/// file, has another format version, is truncated, fails its checksum or is malformed
/// with [`Error::FileFormat`] naming the file; an unreadable file gives [`Error::Io`].
pub fn read_model_file(path: &Path) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
    let bytes = fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode(&bytes).map_err(|msg| Error::FileFormat(format!("{}: {msg}", path.display())))
}

/// One tensor of the safetensors index.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// The safetensors index in file order, duplicates refused, metadata skipped.
struct TensorIndex(Vec<(String, IndexEntry)>);

impl<'de> Deserialize<'de> for TensorIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IndexVisitor)
    }
}

/// Collects the index entries of a JSON object in order.
struct IndexVisitor;

impl<'de> Visitor<'de> for IndexVisitor {
    type Value = TensorIndex;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object mapping tensor names to {dtype, shape, data_offsets}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TensorIndex, A::Error> {
        let mut names = HashSet::new();
        let mut entries = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if name == METADATA_KEY {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            if !names.insert(name.clone()) {
                return Err(de::Error::custom(format!("duplicate tensor name '{name}'")));
            }
            entries.push((name, map.next_value()?));
        }
        Ok(TensorIndex(entries))
    }
}

/// Serialises the whole file in memory.
fn encode(header: &serde_json::Value, tensors: &[(String, Tensor)]) -> Result<Vec<u8>, String> {
    let header = serde_json::to_vec(header).map_err(|e| format!("header: {e}"))?;
    let section = encode_tensors(tensors)?;
    let total = PREAMBLE_LEN + header.len() + section.len() + TRAILER_LEN;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(total as u64).to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&section);
    let checksum = crc32(&out);
    out.extend_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// Serialises the tensors in the safetensors layout, data in the given order.
fn encode_tensors(tensors: &[(String, Tensor)]) -> Result<Vec<u8>, String> {
    let mut names = HashSet::new();
    let mut index = String::from("{");
    let mut data = Vec::new();
    for (name, tensor) in tensors {
        if name == METADATA_KEY {
            return Err(format!("'{METADATA_KEY}' is reserved, not a tensor name"));
        }
        if !names.insert(name.as_str()) {
            return Err(format!("duplicate tensor name '{name}'"));
        }
        if !tensor.defined() {
            return Err(format!("tensor '{name}' is undefined"));
        }
        let kind = tensor.kind();
        let dtype = DTYPES
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, d)| *d)
            .ok_or_else(|| format!("tensor '{name}' has unsupported type {kind:?}"))?;
        let numel = tensor.numel();
        let elt = kind.elt_size_in_bytes();
        let begin = data.len();
        data.resize(begin + numel * elt, 0);
        tensor
            .f_copy_data_u8(&mut data[begin..], numel)
            .map_err(|e| format!("tensor '{name}': {e}"))?;
        to_little_endian(&mut data[begin..], elt);
        let shape = tensor
            .size()
            .into_iter()
            .map(|d| u64::try_from(d).map_err(|_| format!("tensor '{name}': dimension {d}")))
            .collect::<Result<Vec<_>, _>>()?;
        let entry = IndexEntry {
            dtype: dtype.to_string(),
            shape,
            data_offsets: [begin as u64, data.len() as u64],
        };
        if index.len() > 1 {
            index.push(',');
        }
        let json = |e: serde_json::Error| format!("tensor '{name}': {e}");
        index.push_str(&serde_json::to_string(name).map_err(json)?);
        index.push(':');
        index.push_str(&serde_json::to_string(&entry).map_err(json)?);
    }
    index.push('}');
    // Pad so that the data starts 8-byte aligned within the section, as safetensors does.
    while index.len() % 8 != 0 {
        index.push(' ');
    }
    let mut section = Vec::with_capacity(8 + index.len() + data.len());
    section.extend_from_slice(&(index.len() as u64).to_le_bytes());
    section.extend_from_slice(index.as_bytes());
    section.extend_from_slice(&data);
    Ok(section)
}

/// Verifies and parses a whole file; the error is a message without the file name.
fn decode(bytes: &[u8]) -> Result<(serde_json::Value, Vec<(String, Tensor)>), String> {
    let actual = bytes.len();
    if actual == 0 {
        return Err("empty file, not a cdad model file".to_string());
    }
    let magic_len = actual.min(MAGIC.len());
    if bytes[..magic_len] != MAGIC[..magic_len] {
        return Err("not a cdad model file (wrong magic bytes)".to_string());
    }
    let short = || {
        format!(
            "truncated: the file has {actual} bytes, fewer than the {PREAMBLE_LEN}-byte preamble"
        )
    };
    let version = read_u32(bytes, VERSION_AT).ok_or_else(short)?;
    if version != FORMAT_VERSION {
        let age = if version > FORMAT_VERSION {
            "newer"
        } else {
            "older"
        };
        return Err(format!(
            "model file format version {version} ({age}) is not supported; \
             this build of cdad reads format version {FORMAT_VERSION}"
        ));
    }
    let total = read_u64(bytes, TOTAL_LEN_AT).ok_or_else(short)?;
    if (actual as u64) < total {
        return Err(format!(
            "truncated: the file has {actual} bytes, {total} expected"
        ));
    }
    if actual as u64 > total {
        return Err(format!(
            "corrupted: the file has {actual} bytes but records a length of {total}"
        ));
    }
    let header_len = read_u64(bytes, HEADER_LEN_AT).ok_or_else(short)?;
    let body_len = actual
        .checked_sub(TRAILER_LEN)
        .filter(|&n| n >= PREAMBLE_LEN)
        .ok_or_else(|| format!("corrupted: recorded length {total} is too small"))?;
    let stored = read_u32(bytes, body_len).ok_or_else(short)?;
    let computed = crc32(&bytes[..body_len]);
    if stored != computed {
        return Err(format!(
            "corrupted: checksum mismatch (stored {stored:08x}, computed {computed:08x})"
        ));
    }
    let header_end = usize::try_from(header_len)
        .ok()
        .and_then(|h| PREAMBLE_LEN.checked_add(h))
        .filter(|&end| end <= body_len)
        .ok_or_else(|| format!("malformed: header length {header_len} exceeds the file"))?;
    let header = serde_json::from_slice(&bytes[PREAMBLE_LEN..header_end])
        .map_err(|e| format!("malformed header JSON: {e}"))?;
    let tensors = decode_tensors(&bytes[header_end..body_len])
        .map_err(|msg| format!("malformed tensor section: {msg}"))?;
    Ok((header, tensors))
}

/// Parses the safetensors section, checking every length, offset and type.
fn decode_tensors(section: &[u8]) -> Result<Vec<(String, Tensor)>, String> {
    let index_len = read_u64(section, 0).ok_or("shorter than its 8-byte index length")?;
    let index_end = usize::try_from(index_len)
        .ok()
        .and_then(|n| n.checked_add(8))
        .filter(|&end| end <= section.len())
        .ok_or_else(|| format!("index length {index_len} exceeds the section"))?;
    let TensorIndex(entries) =
        serde_json::from_slice(&section[8..index_end]).map_err(|e| format!("index: {e}"))?;
    let data = &section[index_end..];

    // The data ranges must tile the data buffer exactly: no gap, no overlap, no excess.
    let mut spans: Vec<[u64; 2]> = entries.iter().map(|(_, e)| e.data_offsets).collect();
    spans.sort_unstable();
    let mut cursor = 0;
    for [begin, end] in spans {
        if begin != cursor || end < begin {
            return Err(format!(
                "data offsets [{begin}, {end}] leave a gap or overlap at byte {cursor}"
            ));
        }
        cursor = end;
    }
    if cursor != data.len() as u64 {
        return Err(format!(
            "tensor data covers {cursor} bytes, the section holds {}",
            data.len()
        ));
    }

    entries
        .into_iter()
        .map(|(name, entry)| {
            let tensor =
                decode_tensor(&entry, data).map_err(|msg| format!("tensor '{name}': {msg}"))?;
            Ok((name, tensor))
        })
        .collect()
}

/// Builds one tensor from its index entry and the section's data buffer.
fn decode_tensor(entry: &IndexEntry, data: &[u8]) -> Result<Tensor, String> {
    let kind = DTYPES
        .iter()
        .find(|(_, d)| *d == entry.dtype)
        .map(|(k, _)| *k)
        .ok_or_else(|| format!("unsupported dtype '{}'", entry.dtype))?;
    let elt = kind.elt_size_in_bytes();
    let shape = entry
        .shape
        .iter()
        .map(|&d| i64::try_from(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("shape {:?} out of range", entry.shape))?;
    let needed = entry
        .shape
        .iter()
        .try_fold(elt as u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("shape {:?} out of range", entry.shape))?;
    let [begin, end] = entry.data_offsets;
    let bytes = usize::try_from(begin)
        .ok()
        .zip(usize::try_from(end).ok())
        .filter(|_| end.checked_sub(begin) == Some(needed))
        .and_then(|(b, e)| data.get(b..e))
        .ok_or_else(|| {
            format!(
                "{} {:?} needs {needed} bytes, its data offsets are [{begin}, {end}]",
                entry.dtype, entry.shape
            )
        })?;
    let tensor = if cfg!(target_endian = "big") {
        let mut native = bytes.to_vec();
        to_little_endian(&mut native, elt);
        Tensor::f_from_data_size(&native, &shape, kind)
    } else {
        Tensor::f_from_data_size(bytes, &shape, kind)
    };
    tensor.map_err(|e| e.to_string())
}

/// Converts elements of `elt` bytes between native and little-endian byte order (the
/// conversion is its own inverse and a no-op on little-endian hosts).
fn to_little_endian(bytes: &mut [u8], elt: usize) {
    if cfg!(target_endian = "big") && elt > 1 {
        bytes.chunks_exact_mut(elt).for_each(<[u8]>::reverse);
    }
}

/// The little-endian u32 at `at`, if the bytes are there.
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    field.try_into().ok().map(u32::from_le_bytes)
}

/// The little-endian u64 at `at`, if the bytes are there.
fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let field = bytes.get(at..at.checked_add(8)?)?;
    field.try_into().ok().map(u64::from_le_bytes)
}

/// Writes `bytes` to a fresh temporary file beside `path`, syncs it and renames it over
/// `path`; removes the temporary file on failure.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let io_error = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a file path", path.display())))?;
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp_path, mut file) = create_temp_file(dir, file_name).map_err(io_error)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            fs::rename(&temp_path, path)
        });
    if let Err(source) = written {
        // The temporary file is ours; failing to remove it changes nothing for the caller.
        let _ = fs::remove_file(&temp_path);
        return Err(io_error(source));
    }
    // Best effort: makes the rename itself durable where directories can be synced.
    let _ = File::open(dir).and_then(|d| d.sync_all());
    Ok(())
}

/// Creates a new, uniquely named temporary file in `dir` for `file_name`.
fn create_temp_file(dir: &Path, file_name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut attempt = 0;
    loop {
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let temp_path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)
        {
            Ok(file) => return Ok((temp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The CRC-32/IEEE lookup table (reflected polynomial 0xEDB88320).
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/IEEE (as in zlib, PNG and gzip) of `bytes`.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(!0u32, |c, &b| {
        CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;
    use tch::Device;

    /// The raw bytes of a tensor's elements in row-major order.
    fn raw(t: &Tensor) -> Vec<u8> {
        let mut bytes = vec![0; t.numel() * t.kind().elt_size_in_bytes()];
        t.copy_data_u8(&mut bytes, t.numel());
        bytes
    }

    fn halves(bits: &[u16]) -> Vec<u8> {
        bits.iter().flat_map(|b| b.to_le_bytes()).collect()
    }

    fn sample_header() -> serde_json::Value {
        json!({
            "config": {"preset": "compact", "steps": 50, "lr": 1e-4},
            "tasks": [{"id": 0, "name": "bottle"}, {"id": 1, "name": "cable ünïcode"}],
            "meta": null
        })
    }

    fn sample_tensors() -> Vec<(String, Tensor)> {
        let cpu = Device::Cpu;
        vec![
            (
                "f32".into(),
                Tensor::from_slice(&[
                    f32::from_bits(0x7fc0_1234),
                    -0.0,
                    f32::INFINITY,
                    f32::MIN_POSITIVE / 4.0,
                    1.5,
                    -3.25,
                ])
                .reshape([2, 3]),
            ),
            (
                "f64".into(),
                Tensor::from_slice(&[std::f64::consts::PI, -1e300, f64::NAN, 0.0]),
            ),
            (
                "i64".into(),
                Tensor::from_slice(&[i64::MIN, -1, 0, i64::MAX]).reshape([2, 2]),
            ),
            ("u8".into(), Tensor::from_slice(&[0u8, 1, 127, 128, 255])),
            ("bool".into(), Tensor::from_slice(&[true, false, true])),
            (
                "f16".into(),
                Tensor::from_data_size(
                    &halves(&[0x3c00, 0xfbff, 0x7e01, 0x0001]),
                    &[2, 2],
                    Kind::Half,
                ),
            ),
            (
                "bf16".into(),
                Tensor::from_data_size(&halves(&[0x3f80, 0xff80, 0x0001]), &[3], Kind::BFloat16),
            ),
            (
                "i32".into(),
                Tensor::from_slice(&[i32::MIN, 7]).reshape([1, 1, 2]),
            ),
            ("i8".into(), Tensor::from_slice(&[i8::MIN, i8::MAX])),
            ("i16".into(), Tensor::from_slice(&[i16::MIN, -2, 3])),
            (
                "scalar".into(),
                Tensor::from_slice(&[2.5f32]).reshape([0i64; 0]),
            ),
            ("empty".into(), Tensor::zeros([0, 3], (Kind::Float, cpu))),
            (
                "transposed".into(),
                Tensor::arange(6, (Kind::Float, cpu))
                    .reshape([2, 3])
                    .transpose(0, 1),
            ),
            (
                "name with \"quotes\" / ü".into(),
                Tensor::ones([2, 1, 3], (Kind::Double, cpu)),
            ),
        ]
    }

    /// A small valid model file, as bytes.
    fn small_file() -> Vec<u8> {
        let tensors = vec![("w".to_string(), Tensor::from_slice(&[1f32, 2.0]))];
        encode(&json!({"task": "a"}), &tensors).expect("encodes")
    }

    /// Rewrites the length field and the checksum of `bytes` to match its content.
    fn reseal(bytes: &mut Vec<u8>) {
        let body = bytes.len().saturating_sub(TRAILER_LEN).max(PREAMBLE_LEN);
        bytes.resize(body, 0);
        let total = (body + TRAILER_LEN) as u64;
        bytes[TOTAL_LEN_AT..TOTAL_LEN_AT + 8].copy_from_slice(&total.to_le_bytes());
        let checksum = crc32(bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
    }

    /// A sealed file with header `{}` and the given raw tensor section.
    fn with_section(section: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
        bytes.extend_from_slice(b"{}");
        bytes.extend_from_slice(section);
        bytes.extend_from_slice(&[0; TRAILER_LEN]);
        reseal(&mut bytes);
        bytes
    }

    /// A tensor section with the given index text and data bytes.
    fn section(index: &str, data: &[u8]) -> Vec<u8> {
        let mut s = (index.len() as u64).to_le_bytes().to_vec();
        s.extend_from_slice(index.as_bytes());
        s.extend_from_slice(data);
        s
    }

    /// Writes `bytes` to `dir/probe.cdad` and reads it back as a model file.
    fn read_bytes(dir: &Path, bytes: &[u8]) -> Result<(serde_json::Value, Vec<(String, Tensor)>)> {
        let path = dir.join("probe.cdad");
        fs::write(&path, bytes).expect("writes probe");
        read_model_file(&path)
    }

    /// The error message of a refused file; fails the test if the file was accepted.
    fn refusal(dir: &Path, bytes: &[u8]) -> String {
        match read_bytes(dir, bytes) {
            Ok(_) => panic!("a bad file was accepted"),
            Err(e) => {
                assert!(matches!(e, Error::FileFormat(_)), "{e:?}");
                let msg = e.to_string();
                assert!(msg.contains("probe.cdad"), "message names the file: {msg}");
                msg
            }
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("lists")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_is_bit_identical() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.cdad");
        let header = sample_header();
        let tensors = sample_tensors();
        write_model_file(&path, &header, &tensors).expect("writes");
        let (read_header, read_tensors) = read_model_file(&path).expect("reads");
        assert_eq!(read_header, header);
        assert_eq!(read_tensors.len(), tensors.len());
        for ((name, t), (read_name, r)) in tensors.iter().zip(&read_tensors) {
            assert_eq!(name, read_name, "order is preserved");
            assert_eq!(t.kind(), r.kind(), "{name}");
            assert_eq!(t.size(), r.size(), "{name}");
            assert_eq!(raw(t), raw(r), "{name}");
        }
        let bytes = fs::read(&path).expect("reads bytes");
        assert_eq!(&bytes[..8], &MAGIC);
        assert_eq!(read_u32(&bytes, VERSION_AT), Some(FORMAT_VERSION));
        assert_eq!(read_u64(&bytes, TOTAL_LEN_AT), Some(bytes.len() as u64));
    }

    #[test]
    fn no_tensors_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m");
        write_model_file(&path, &json!("just a header"), &[]).expect("writes");
        let (header, tensors) = read_model_file(&path).expect("reads");
        assert_eq!(header, json!("just a header"));
        assert!(tensors.is_empty());
    }

    #[test]
    fn write_replaces_atomically_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.cdad");
        let first = vec![("a".to_string(), Tensor::from_slice(&[1i64, 2, 3]))];
        write_model_file(&path, &json!({"v": 1}), &first).expect("first write");
        let second = vec![("b".to_string(), Tensor::from_slice(&[9u8]))];
        write_model_file(&path, &json!({"v": 2}), &second).expect("second write");
        let (header, tensors) = read_model_file(&path).expect("reads");
        assert_eq!(header, json!({"v": 2}));
        assert_eq!(tensors.len(), 1);
        assert_eq!(tensors[0].0, "b");
        assert_eq!(raw(&tensors[0].1), vec![9]);
        assert_eq!(entries(dir.path()), vec!["model.cdad"]);
    }

    #[test]
    fn write_into_missing_folder_fails_and_leaves_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing").join("model.cdad");
        let err = write_model_file(&path, &json!({}), &[]).expect_err("must fail");
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("model.cdad"), "{err}");
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn failed_rename_removes_the_temp_file_and_keeps_the_target() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("model.cdad");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("keep"), b"x").expect("writes");
        let err = write_model_file(&target, &json!({}), &[]).expect_err("must fail");
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert_eq!(entries(dir.path()), vec!["model.cdad"]);
        assert_eq!(entries(&target), vec!["keep"]);
    }

    #[test]
    fn invalid_tensors_are_refused_and_the_target_is_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.cdad");
        write_model_file(&path, &json!({"v": 1}), &[]).expect("writes");
        let before = fs::read(&path).expect("reads");
        let one = || Tensor::from_slice(&[1f32]);
        let cases: Vec<Vec<(String, Tensor)>> = vec![
            vec![("x".into(), one()), ("x".into(), one())],
            vec![(METADATA_KEY.into(), one())],
            vec![("u".into(), Tensor::new())],
            vec![(
                "c".into(),
                Tensor::zeros([2], (Kind::ComplexFloat, Device::Cpu)),
            )],
        ];
        for tensors in cases {
            let err = write_model_file(&path, &json!({"v": 2}), &tensors).expect_err("refused");
            assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
            assert!(err.to_string().contains("model.cdad"), "{err}");
            assert_eq!(fs::read(&path).expect("reads"), before);
            assert_eq!(entries(dir.path()), vec!["model.cdad"]);
        }
    }

    #[test]
    fn refuses_empty_file_and_wrong_magic() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(refusal(dir.path(), b"").contains("empty"));
        let mut bytes = small_file();
        bytes[0] = b'X';
        assert!(refusal(dir.path(), &bytes).contains("not a cdad model file"));
        let safetensors = section(
            r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
            &[7],
        );
        assert!(refusal(dir.path(), &safetensors).contains("not a cdad model file"));
        assert!(refusal(dir.path(), b"hello").contains("not a cdad model file"));
    }

    #[test]
    fn refuses_other_format_versions_naming_both() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (version, age) in [
            (FORMAT_VERSION + 1, "newer"),
            (0, "older"),
            (u32::MAX, "newer"),
        ] {
            let mut bytes = small_file();
            bytes[VERSION_AT..VERSION_AT + 4].copy_from_slice(&version.to_le_bytes());
            reseal(&mut bytes);
            let msg = refusal(dir.path(), &bytes);
            assert!(
                msg.contains(&format!("format version {version} ({age})")),
                "{msg}"
            );
            assert!(
                msg.contains(&format!("reads format version {FORMAT_VERSION}")),
                "{msg}"
            );
        }
    }

    #[test]
    fn refuses_every_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = small_file();
        let full = bytes.len();
        for len in 1..full {
            let msg = refusal(dir.path(), &bytes[..len]);
            assert!(msg.contains("truncated"), "length {len}: {msg}");
            assert!(msg.contains(&format!("{len} bytes")), "length {len}: {msg}");
            if len >= TOTAL_LEN_AT + 8 {
                assert!(
                    msg.contains(&format!("{full} expected")),
                    "length {len}: {msg}"
                );
            }
        }
    }

    #[test]
    fn refuses_trailing_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = small_file();
        bytes.push(0);
        assert!(refusal(dir.path(), &bytes).contains("corrupted"));
    }

    #[test]
    fn refuses_a_flipped_byte_anywhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bytes = small_file();
        let header_at = PREAMBLE_LEN + 2;
        let data_at = bytes.len() - TRAILER_LEN - 3;
        let checksum_at = bytes.len() - 1;
        for at in [header_at, data_at, checksum_at] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(refusal(dir.path(), &bad).contains("checksum"), "byte {at}");
        }
        for at in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xFF] {
                let mut bad = bytes.clone();
                bad[at] ^= mask;
                refusal(dir.path(), &bad);
            }
        }
    }

    #[test]
    fn refuses_malformed_sections_behind_a_valid_checksum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let (_, tensors) =
            read_bytes(dir.path(), &with_section(&section(good, &[0; 8]))).expect("valid");
        assert_eq!(tensors[0].1.size(), vec![2]);
        let with_metadata =
            r#"{"__metadata__":{"k":"v"},"w":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}"#;
        let (_, tensors) =
            read_bytes(dir.path(), &with_section(&section(with_metadata, &[5]))).expect("valid");
        assert_eq!(tensors.len(), 1);

        let entry = |dtype: &str, shape: &str, offsets: &str| {
            format!(r#"{{"w":{{"dtype":"{dtype}","shape":{shape},"data_offsets":{offsets}}}}}"#)
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (section(good, &[0; 4]), "covers 8 bytes"),
            (section(good, &[0; 12]), "covers 8 bytes"),
            (
                section(&entry("C64", "[1]", "[0,8]"), &[0; 8]),
                "unsupported dtype",
            ),
            (
                section(&entry("F32", "[3]", "[0,8]"), &[0; 8]),
                "needs 12 bytes",
            ),
            (
                section(&entry("F32", "[2]", "[8,0]"), &[0; 8]),
                "gap or overlap",
            ),
            (
                section(&entry("F32", "[2]", "[4,12]"), &[0; 12]),
                "gap or overlap",
            ),
            (
                section(&entry("U8", "[18446744073709551615,2]", "[0,2]"), &[0; 2]),
                "out of range",
            ),
            (
                section(&entry("U8", "[9223372036854775808]", "[0,2]"), &[0; 2]),
                "out of range",
            ),
            (section(&entry("U8", "[-1]", "[0,1]"), &[0; 1]), "index"),
            (
                section(
                    r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#,
                    &[0; 2],
                ),
                "duplicate tensor name",
            ),
            (
                section(
                    r#"{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}"#,
                    &[0; 1],
                ),
                "index",
            ),
            (section("not json", &[]), "index"),
            (section("[]", &[]), "index"),
            (u64::MAX.to_le_bytes().to_vec(), "index length"),
            (vec![1, 2, 3], "8-byte index length"),
            (Vec::new(), "8-byte index length"),
        ];
        for (tensor_section, expected) in cases {
            let msg = refusal(dir.path(), &with_section(&tensor_section));
            assert!(msg.contains("malformed tensor section"), "{msg}");
            assert!(msg.contains(expected), "expected '{expected}' in: {msg}");
        }

        let mut bad_header = with_section(&section("{}", &[]));
        bad_header[PREAMBLE_LEN] = b'[';
        reseal(&mut bad_header);
        assert!(refusal(dir.path(), &bad_header).contains("malformed header JSON"));
        let mut long_header = small_file();
        long_header[HEADER_LEN_AT..HEADER_LEN_AT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        reseal(&mut long_header);
        assert!(refusal(dir.path(), &long_header).contains("header length"));
        let mut tiny = MAGIC.to_vec();
        tiny.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        tiny.extend_from_slice(&(PREAMBLE_LEN as u64).to_le_bytes());
        tiny.extend_from_slice(&0u64.to_le_bytes());
        assert!(refusal(dir.path(), &tiny).contains("too small"));
    }

    /// Applies one random corruption that surely changes `bytes`.
    fn corrupt(rng: &mut ChaCha8Rng, bytes: &mut Vec<u8>) {
        let len = bytes.len();
        match rng.random_range(0..5) {
            0 => {
                for _ in 0..rng.random_range(1..=4) {
                    let at = rng.random_range(0..len);
                    bytes[at] ^= rng.random_range(1..=255u8);
                }
            }
            1 => bytes.truncate(rng.random_range(0..len)),
            2 => {
                let at = rng.random_range(0..=len);
                let extra: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                bytes.splice(at..at, extra);
            }
            3 => {
                let at = rng.random_range(0..len);
                let end = rng.random_range(at + 1..=len.min(at + 16));
                bytes.drain(at..end);
            }
            _ => {
                let at = rng.random_range(0..len);
                let end = len.min(at + rng.random_range(1..32));
                for b in &mut bytes[at..end] {
                    *b ^= rng.random_range(1..=255u8);
                }
            }
        }
    }

    #[test]
    fn fuzzed_corruptions_are_all_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = encode(&sample_header(), &sample_tensors()[..6]).expect("encodes");
        let mut rng = ChaCha8Rng::seed_from_u64(0xCDAD);
        for _ in 0..400 {
            let mut bytes = original.clone();
            corrupt(&mut rng, &mut bytes);
            assert_ne!(bytes, original);
            refusal(dir.path(), &bytes);
        }
    }

    #[test]
    fn fuzzed_resealed_files_never_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let original = encode(&sample_header(), &sample_tensors()[..6]).expect("encodes");
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EA1);
        let mut refused = 0;
        for _ in 0..400 {
            let mut bytes = original.clone();
            corrupt(&mut rng, &mut bytes);
            if bytes.len() >= PREAMBLE_LEN {
                bytes[..VERSION_AT + 4].copy_from_slice(&original[..VERSION_AT + 4]);
                bytes.extend_from_slice(&[0; TRAILER_LEN]);
                reseal(&mut bytes);
            }
            refused += usize::from(read_bytes(dir.path(), &bytes).is_err());
        }
        assert!(
            refused > 100,
            "only {refused} of 400 resealed corruptions refused"
        );
    }
}
