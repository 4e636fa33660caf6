//! The token store: a corpus's token stream on disk, read a chunk at a time,
//! so that memory does not grow with the corpus.
//!
//! File layout (little-endian): an 8-byte magic that says the width —
//! `MARCHT16` for `u16` tokens (any vocabulary of at most 65,536 tokens),
//! `MARCHTOK` for `u32` (also the format of the token cache before the
//! store, which stays readable) — the number of tokens as a `u64`, then
//! the tokens.
//!
//! Reads are positioned reads (`pread`), not a memory map: the pages a map
//! touches count in the process's resident memory, and a training run
//! touches every page of its corpus once an epoch; positioned reads leave
//! the caching to the kernel's page cache, which does not. A chunk of 128
//! tokens is one 256-byte read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

const MAGIC_U16: &[u8; 8] = b"MARCHT16";
const MAGIC_U32: &[u8; 8] = b"MARCHTOK";
const HEADER: u64 = 16;

/// A token stream, on disk or (when no store can be written) in memory.
#[derive(Debug)]
pub struct TokenStore {
    tokens: usize,
    backing: Backing,
}

#[derive(Debug)]
enum Backing {
    Memory(Vec<u32>),
    File {
        file: File,
        path: PathBuf,
        /// bytes per token: 2 or 4
        width: usize,
    },
}

/// Bytes per token for a vocabulary of `vocab` tokens.
pub fn width_for(vocab: usize) -> usize {
    if vocab <= 1 << 16 {
        2
    } else {
        4
    }
}

impl TokenStore {
    /// A store of `tokens` held in memory.
    pub fn in_memory(tokens: Vec<u32>) -> Self {
        TokenStore {
            tokens: tokens.len(),
            backing: Backing::Memory(tokens),
        }
    }

    /// Open the store at `path`: `None` if it is absent or not a whole
    /// store (a file of another format, or cut short).
    pub fn open(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        let mut head = [0u8; HEADER as usize];
        read_at(&file, &mut head, 0).ok()?;
        let width = match &head[..8] {
            m if m == MAGIC_U16 => 2,
            m if m == MAGIC_U32 => 4,
            _ => return None,
        };
        let tokens = u64::from_le_bytes(head[8..16].try_into().ok()?);
        let len = file.metadata().ok()?.len();
        if len != HEADER + tokens.checked_mul(width as u64)? {
            return None;
        }
        Some(TokenStore {
            tokens: tokens as usize,
            backing: Backing::File {
                file,
                path: path.to_path_buf(),
                width,
            },
        })
    }

    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// Where the store is: its file, or `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        match &self.backing {
            Backing::Memory(_) => None,
            Backing::File { path, .. } => Some(path),
        }
    }

    /// Bytes per token: 2 or 4 on disk, 4 in memory.
    pub fn width(&self) -> usize {
        match &self.backing {
            Backing::Memory(_) => 4,
            Backing::File { width, .. } => *width,
        }
    }

    /// Tokens `start .. start + out.len()` into `out`.
    pub fn read(&self, start: usize, out: &mut [u32]) -> std::io::Result<()> {
        let end = start
            .checked_add(out.len())
            .filter(|&e| e <= self.tokens)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "tokens {start}..{} of a store of {}",
                        start + out.len(),
                        self.tokens
                    ),
                )
            })?;
        match &self.backing {
            Backing::Memory(v) => out.copy_from_slice(&v[start..end]),
            Backing::File { file, width, path } => {
                let mut bytes = vec![0u8; out.len() * width];
                read_at(file, &mut bytes, HEADER + (start * width) as u64).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("{}: cannot read: {e}", path.display()))
                })?;
                decode(&bytes, *width, out);
            }
        }
        Ok(())
    }

    /// Tokens `start .. start + n`.
    pub fn get(&self, start: usize, n: usize) -> std::io::Result<Vec<u32>> {
        let mut out = vec![0; n];
        self.read(start, &mut out)?;
        Ok(out)
    }

    /// Every token in order, a block at a time (a block of at most
    /// `block` tokens, and a few reads of a store on disk per block).
    pub fn for_each_block(&self, block: usize, mut f: impl FnMut(&[u32])) -> std::io::Result<()> {
        let block = block.max(1);
        let mut buf = vec![0; block];
        let mut at = 0;
        while at < self.tokens {
            let n = block.min(self.tokens - at);
            self.read(at, &mut buf[..n])?;
            f(&buf[..n]);
            at += n;
        }
        Ok(())
    }
}

fn decode(bytes: &[u8], width: usize, out: &mut [u32]) {
    if width == 2 {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            *o = u16::from_le_bytes([b[0], b[1]]) as u32;
        }
    } else {
        for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
            *o = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Writes a store: tokens appended as they come, to a temporary file of
/// this process that [`StoreWriter::finish`] syncs and renames into place
/// (a store is whole or absent; two processes writing one store each
/// write their own file, and the last rename wins with the same bytes).
/// Dropped unfinished, it removes its temporary file.
pub struct StoreWriter {
    path: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
    width: usize,
    tokens: u64,
    bytes: Vec<u8>,
}

impl StoreWriter {
    /// Begin a store at `path` for tokens below `vocab`.
    pub fn create(path: &Path, vocab: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.tmp", crate::files::unique()));
        let tmp = path.with_file_name(name);
        let width = width_for(vocab);
        let mut writer = StoreWriter {
            path: path.to_path_buf(),
            out: Some(BufWriter::with_capacity(1 << 20, File::create(&tmp)?)),
            tmp,
            width,
            tokens: 0,
            bytes: Vec::new(),
        };
        let out = writer.out.as_mut().expect("open");
        out.write_all(if width == 2 { MAGIC_U16 } else { MAGIC_U32 })?;
        out.write_all(&0u64.to_le_bytes())?;
        Ok(writer)
    }

    /// Append `tokens` (each below the vocabulary the store was made for).
    pub fn push(&mut self, tokens: &[u32]) -> std::io::Result<()> {
        self.bytes.clear();
        if self.width == 2 {
            for &t in tokens {
                let t = u16::try_from(t).map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("token {t} does not fit a 16-bit store"),
                    )
                })?;
                self.bytes.extend_from_slice(&t.to_le_bytes());
            }
        } else {
            for &t in tokens {
                self.bytes.extend_from_slice(&t.to_le_bytes());
            }
        }
        self.out
            .as_mut()
            .expect("open until finished")
            .write_all(&self.bytes)?;
        self.tokens += tokens.len() as u64;
        Ok(())
    }

    /// The number of tokens written so far.
    pub fn len(&self) -> u64 {
        self.tokens
    }

    pub fn is_empty(&self) -> bool {
        self.tokens == 0
    }

    /// Write the count, sync, rename into place, and open the store.
    pub fn finish(mut self) -> std::io::Result<TokenStore> {
        let out = self.out.take().expect("open until finished");
        let file = out.into_inner().map_err(|e| e.into_error())?;
        write_at(&file, &self.tokens.to_le_bytes(), 8)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path)?;
        TokenStore::open(&self.path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{}: the store just written does not read back",
                    self.path.display()
                ),
            )
        })
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // unfinished, or failed before its rename: the temporary goes
        if self.tmp.exists() {
            drop(self.out.take());
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(unix)]
fn write_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}
