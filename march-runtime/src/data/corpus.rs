//! Reading corpora: plain text (one document per non-empty line), JSON Lines
//! with a `text` field (the C4 format), and Parquet with a `text` column (the
//! Hugging Face datasets format). Text and JSON Lines may be gzipped
//! (`.txt.gz`, `.jsonl.gz`: C4's `.json.gz` as it ships). Directories are read
//! recursively, in sorted order.

use std::fs::File;
use std::io::{BufRead, BufReader};

use flate2::read::MultiGzDecoder;
use std::path::{Path, PathBuf};

use parquet::basic::{ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReader;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// What can go wrong reading a corpus. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    // `error` is said in the message, so it is not also a `source` (which
    // the CLI's error chain would print a second time)
    #[error("{path}: cannot read: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path}: unknown corpus format; use .txt, .jsonl/.json (a `text` field per line), either gzipped (.gz), or .parquet (a `text` column)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}:{line}: not a JSON object with a string `text` field: {reason}")]
    BadJsonLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path}: not a readable Parquet file: {reason}")]
    BadParquet { path: PathBuf, reason: String },
    #[error("{path}: no `text` column (columns: {columns})")]
    NoTextColumn { path: PathBuf, columns: String },
    #[error("{path}: the `text` column is {found}, not a UTF-8 string")]
    TextNotString { path: PathBuf, found: String },
    #[error(
        "{path}: no corpus files (.txt, .jsonl, .json, their .gz, .parquet) in this directory"
    )]
    EmptyDirectory { path: PathBuf },
    #[error("the corpus is empty: {paths} contain no text")]
    Empty { paths: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CorpusError + '_ {
    move |error| CorpusError::Io {
        path: path.to_path_buf(),
        error,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    JsonLines,
    Parquet,
}

/// Whether `path` names a gzip file (`.gz`), read through a decoder.
fn gzipped(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

fn format_of(path: &Path) -> Option<Format> {
    // `a.jsonl.gz` is `a.jsonl`, decompressed
    let inner = if gzipped(path) {
        Path::new(path.file_stem()?)
    } else {
        path
    };
    match inner.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "txt" | "text" | "raw" | "tokens" => Some(Format::Text),
        "jsonl" | "json" | "ndjson" => Some(Format::JsonLines),
        // Parquet compresses its own pages
        "parquet" if !gzipped(path) => Some(Format::Parquet),
        _ => None,
    }
}

/// The file's lines, decompressed where it is gzipped (every member of a
/// multi-member file, as `gzip -d` reads it).
fn lines(path: &Path) -> Result<std::io::Lines<Box<dyn BufRead>>, CorpusError> {
    let file = File::open(path).map_err(io(path))?;
    let reader: Box<dyn BufRead> = if gzipped(path) {
        Box::new(BufReader::new(MultiGzDecoder::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    Ok(reader.lines())
}

/// The files `paths` stand for: files as given, directories expanded.
pub fn corpus_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CorpusError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(io(p))?;
        if meta.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(CorpusError::EmptyDirectory { path: p.clone() });
            }
        } else {
            if format_of(p).is_none() {
                return Err(CorpusError::UnknownFormat { path: p.clone() });
            }
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CorpusError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.path()).map_err(io(dir)))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if format_of(&p).is_some() {
            out.push(p);
        }
    }
    Ok(())
}

/// Every document of `paths`, in order.
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<String>, CorpusError> {
    let mut docs = Vec::new();
    for file in corpus_files(paths)? {
        read_file(&file, &mut docs)?;
    }
    if docs.iter().all(|d| d.trim().is_empty()) {
        let paths = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CorpusError::Empty { paths });
    }
    Ok(docs)
}

fn read_file(path: &Path, docs: &mut Vec<String>) -> Result<(), CorpusError> {
    match format_of(path).ok_or_else(|| CorpusError::UnknownFormat { path: path.into() })? {
        Format::Text => {
            for line in lines(path)? {
                let line = line.map_err(io(path))?;
                if !line.trim().is_empty() {
                    docs.push(line.trim().to_string());
                }
            }
        }
        Format::JsonLines => {
            for (i, line) in lines(path)?.enumerate() {
                let line = line.map_err(io(path))?;
                if line.trim().is_empty() {
                    continue;
                }
                let bad = |reason: String| CorpusError::BadJsonLine {
                    path: path.into(),
                    line: i + 1,
                    reason,
                };
                let v: serde_json::Value =
                    serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
                match v.get("text") {
                    Some(serde_json::Value::String(s)) => docs.push(s.clone()),
                    Some(other) => return Err(bad(format!("`text` is {other}"))),
                    None => return Err(bad("no `text` field".into())),
                }
            }
        }
        Format::Parquet => read_parquet(path, docs)?,
    }
    Ok(())
}

fn read_parquet(path: &Path, docs: &mut Vec<String>) -> Result<(), CorpusError> {
    let bad = |e: parquet::errors::ParquetError| CorpusError::BadParquet {
        path: path.into(),
        reason: e.to_string(),
    };
    let reader = SerializedFileReader::new(File::open(path).map_err(io(path))?).map_err(bad)?;
    let schema = reader.metadata().file_metadata().schema_descr_ptr();
    let columns: Vec<String> = (0..schema.num_columns())
        .map(|i| schema.column(i).path().string())
        .collect();
    let Some(index) = columns.iter().position(|c| c == "text") else {
        return Err(CorpusError::NoTextColumn {
            path: path.into(),
            columns: columns.join(", "),
        });
    };
    let column = schema.column(index);
    let is_string = column.physical_type() == PhysicalType::BYTE_ARRAY
        && (matches!(column.logical_type_ref(), Some(LogicalType::String))
            || column.converted_type() == ConvertedType::UTF8);
    if !is_string {
        return Err(CorpusError::TextNotString {
            path: path.into(),
            found: format!("{:?}", column.physical_type()),
        });
    }
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(bad)?;
        let ColumnReader::ByteArrayColumnReader(mut r) =
            group.get_column_reader(index).map_err(bad)?
        else {
            unreachable!("a BYTE_ARRAY column has a byte-array reader");
        };
        loop {
            let mut values = Vec::new();
            let mut defs = Vec::new();
            let (records, _, _) = r
                .read_records(4096, Some(&mut defs), None, &mut values)
                .map_err(bad)?;
            if records == 0 {
                break;
            }
            for v in values {
                let s = std::str::from_utf8(v.data()).map_err(|e| CorpusError::BadParquet {
                    path: path.into(),
                    reason: format!("invalid UTF-8 in `text`: {e}"),
                })?;
                docs.push(s.to_string());
            }
        }
    }
    Ok(())
}
