//! Reading corpora: plain text (one document per non-empty line), JSON Lines
//! with a `text` field (the C4 format), and Parquet with a `text` column (the
//! Hugging Face datasets format). Text and JSON Lines may be gzipped
//! (`.txt.gz`, `.jsonl.gz`: C4's `.json.gz` as it ships) or zstd-compressed
//! (`.jsonl.zst`: the Pile's and RedPajama's). Directories are read
//! recursively, in sorted order. Documents are read one at a time
//! ([`for_each_document`]): a corpus is never held in memory whole.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::rc::Rc;

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
    #[error("{path}: unknown corpus format; use .txt, .jsonl/.json (a `text` field per line), either compressed (.gz, .zst), or .parquet (a `text` column)")]
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
        "{path}: no corpus files (.txt, .jsonl, .json, their .gz or .zst, .parquet) in this directory"
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// How `path` is compressed, by its last extension (`.gz`, `.zst`).
fn compression(path: &Path) -> Compression {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("gz") => Compression::Gzip,
        Some(e) if e.eq_ignore_ascii_case("zst") || e.eq_ignore_ascii_case("zstd") => {
            Compression::Zstd
        }
        _ => Compression::None,
    }
}

fn format_of(path: &Path) -> Option<Format> {
    // `a.jsonl.gz` is `a.jsonl`, decompressed
    let compressed = compression(path) != Compression::None;
    let inner = if compressed {
        Path::new(path.file_stem()?)
    } else {
        path
    };
    match inner.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "txt" | "text" | "raw" | "tokens" => Some(Format::Text),
        "jsonl" | "json" | "ndjson" => Some(Format::JsonLines),
        // Parquet compresses its own pages
        "parquet" if !compressed => Some(Format::Parquet),
        _ => None,
    }
}

/// A reader of every zstd frame of `file` (a file that is not zstd is an
/// error naming it).
fn zstd_frames<R: Read>(path: &Path, file: R) -> Result<impl Read, CorpusError> {
    zstd::stream::read::Decoder::new(file).map_err(io(path))
}

/// Counts the bytes read from a file into a shared counter (progress
/// through a corpus, in bytes as stored).
struct Counted<R> {
    inner: R,
    read: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// The file's lines, decompressed where it is gzipped (every member of a
/// multi-member file, as `gzip -d` reads it) or zstd-compressed (every
/// frame, as `zstd -d` reads it); `read` counts the file's bytes read.
fn lines(
    path: &Path,
    read: Rc<Cell<u64>>,
) -> Result<std::io::Lines<Box<dyn BufRead>>, CorpusError> {
    let file = Counted {
        inner: File::open(path).map_err(io(path))?,
        read,
    };
    let reader: Box<dyn BufRead> = match compression(path) {
        Compression::Gzip => Box::new(BufReader::new(MultiGzDecoder::new(file))),
        Compression::Zstd => Box::new(BufReader::new(zstd_frames(path, file)?)),
        Compression::None => Box::new(BufReader::new(file)),
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

/// Every document of `paths`, in order, in memory (small corpora, tests).
pub fn read_documents(paths: &[PathBuf]) -> Result<Vec<String>, CorpusError> {
    let mut docs = Vec::new();
    for_each_document(paths, |doc, _| {
        docs.push(doc);
        Ok::<_, CorpusError>(ControlFlow::Continue(()))
    })?;
    Ok(docs)
}

/// Where a corpus pass is: bytes of its files read (as stored, so
/// compressed bytes for a compressed file) of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub read: u64,
    pub total: u64,
}

/// Call `f` with every document of `paths`, in order, and where the pass
/// is; `f` may stop the pass early (`ControlFlow::Break`). A corpus whose
/// documents are all blank is an error once the pass has seen them all.
pub fn for_each_document<E: From<CorpusError>>(
    paths: &[PathBuf],
    mut f: impl FnMut(String, Progress) -> Result<ControlFlow<()>, E>,
) -> Result<(), E> {
    let files = corpus_files(paths)?;
    let mut total = 0;
    for p in &files {
        total += std::fs::metadata(p).map_err(io(p))?.len();
    }
    let mut done = 0;
    let mut any_text = false;
    for file in &files {
        let read = Rc::new(Cell::new(0));
        let mut stop = false;
        let mut sink = |doc: String, read_now: u64| -> Result<bool, E> {
            any_text |= !doc.trim().is_empty();
            let at = Progress {
                read: done + read_now,
                total,
            };
            stop = f(doc, at)?.is_break();
            Ok(!stop)
        };
        read_file(file, read.clone(), &mut sink)?;
        if stop {
            return Ok(());
        }
        done += std::fs::metadata(file).map_err(io(file))?.len();
    }
    if !any_text {
        let paths = paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CorpusError::Empty { paths }.into());
    }
    Ok(())
}

/// The documents of one file into `sink` (with the file's bytes read so
/// far), until it returns `false`.
fn read_file<E: From<CorpusError>>(
    path: &Path,
    read: Rc<Cell<u64>>,
    sink: &mut dyn FnMut(String, u64) -> Result<bool, E>,
) -> Result<(), E> {
    match format_of(path).ok_or_else(|| CorpusError::UnknownFormat { path: path.into() })? {
        Format::Text => {
            for line in lines(path, read.clone())? {
                let line = line.map_err(io(path))?;
                if !line.trim().is_empty() && !sink(line.trim().to_string(), read.get())? {
                    break;
                }
            }
        }
        Format::JsonLines => {
            for (i, line) in lines(path, read.clone())?.enumerate() {
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
                let doc = match v {
                    serde_json::Value::Object(mut o) => match o.remove("text") {
                        Some(serde_json::Value::String(s)) => s,
                        Some(other) => return Err(bad(format!("`text` is {other}")).into()),
                        None => return Err(bad("no `text` field".into()).into()),
                    },
                    _ => return Err(bad("no `text` field".into()).into()),
                };
                if !sink(doc, read.get())? {
                    break;
                }
            }
        }
        Format::Parquet => read_parquet(path, sink)?,
    }
    Ok(())
}

fn read_parquet<E: From<CorpusError>>(
    path: &Path,
    sink: &mut dyn FnMut(String, u64) -> Result<bool, E>,
) -> Result<(), E> {
    let size = std::fs::metadata(path).map_err(io(path))?.len();
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
        }
        .into());
    };
    let column = schema.column(index);
    let is_string = column.physical_type() == PhysicalType::BYTE_ARRAY
        && (matches!(column.logical_type_ref(), Some(LogicalType::String))
            || column.converted_type() == ConvertedType::UTF8);
    if !is_string {
        return Err(CorpusError::TextNotString {
            path: path.into(),
            found: format!("{:?}", column.physical_type()),
        }
        .into());
    }
    let groups = reader.num_row_groups();
    for g in 0..groups {
        // progress by row groups: the file's share of bytes read
        let at = size * g as u64 / groups.max(1) as u64;
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
                if !sink(s.to_string(), at)? {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}
