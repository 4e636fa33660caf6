//! Data: corpus → tokenizer → packed chunks → span-corrupted batches.

pub mod corpus;
pub mod span_corruption;
pub mod synthetic;
pub mod tokenizer;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::session::HostBatch;
pub use span_corruption::{Example, SpanCorruption, SpecialIds};
pub use tokenizer::MarchTokenizer;

/// FNV-1a, 64 bits: a stable hash for cache keys and derived seeds.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // separate the parts
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A seed derived from a base seed and a path of integers.
pub fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    let mut bytes = seed.to_le_bytes().to_vec();
    for p in path {
        bytes.extend_from_slice(&p.to_le_bytes());
    }
    fnv1a(&[&bytes])
}

/// The token stream of a corpus cut into chunks: training chunks and the
/// held-out validation and test splits.
#[derive(Debug, Clone)]
pub struct Chunks {
    pub len: usize,
    pub validation: Vec<Vec<u32>>,
    pub test: Vec<Vec<u32>>,
    pub train: Vec<Vec<u32>>,
}

/// The salt of the held-out draw: the same for every run and seed, so that
/// runs on one corpus are evaluated on the same chunks.
const HELD_OUT_SALT: u64 = 0x484f_4c44; // "HOLD"

/// `stream` cut into chunks of `len` tokens (the tail that fills no chunk
/// is dropped).
pub fn cut(stream: &[u32], len: usize) -> Vec<Vec<u32>> {
    stream.chunks_exact(len).map(<[u32]>::to_vec).collect()
}

/// `n` chunks drawn at random (a permutation seeded by [`HELD_OUT_SALT`]
/// and the number of chunks, not by the run) from `chunks`, in the order
/// drawn, and the chunks left, in their order. `splits` draws several
/// disjoint sets at once: the first `splits[0]` chunks of the permutation,
/// the next `splits[1]`, …
pub fn draw(chunks: Vec<Vec<u32>>, splits: &[usize]) -> (Vec<Vec<Vec<u32>>>, Vec<Vec<u32>>) {
    let total: usize = splits.iter().sum();
    assert!(
        total <= chunks.len(),
        "drawing {total} of {} chunks",
        chunks.len()
    );
    let mut order: Vec<usize> = (0..chunks.len()).collect();
    let mut rng = StdRng::seed_from_u64(derive_seed(HELD_OUT_SALT, &[chunks.len() as u64]));
    order.shuffle(&mut rng);
    // split id of each chunk: usize::MAX for the chunks left
    let mut owner = vec![usize::MAX; chunks.len()];
    let mut at = 0;
    for (s, &n) in splits.iter().enumerate() {
        for &i in &order[at..at + n] {
            owner[i] = s;
        }
        at += n;
    }
    let mut slots: Vec<Option<Vec<u32>>> = chunks.into_iter().map(Some).collect();
    let mut drawn = Vec::with_capacity(splits.len());
    let mut at = 0;
    for &n in splits {
        drawn.push(
            order[at..at + n]
                .iter()
                .map(|&i| slots[i].take().expect("drawn once"))
                .collect(),
        );
        at += n;
    }
    let rest = slots
        .into_iter()
        .zip(owner)
        .filter(|(_, o)| *o == usize::MAX)
        .map(|(c, _)| c.expect("not drawn"))
        .collect();
    (drawn, rest)
}

impl Chunks {
    /// Pack `docs` (each followed by `</s>`) into chunks of `len` tokens and
    /// hold out the first `held_out` chunks each for validation and test.
    pub fn pack(docs: &[Vec<u32>], eos: u32, len: usize, held_out: usize) -> Chunks {
        let mut stream = Vec::with_capacity(docs.iter().map(|d| d.len() + 1).sum());
        for d in docs {
            stream.extend_from_slice(d);
            stream.push(eos);
        }
        Self::from_stream(&stream, len, held_out)
    }

    /// The layout of runs made before held-out chunks were drawn (their
    /// `held_out_chunks`): the first `held_out` chunks are validation, the
    /// next as many test (at most a quarter of the chunks each).
    pub fn from_stream(stream: &[u32], len: usize, held_out: usize) -> Chunks {
        let mut chunks = cut(stream, len);
        let held = held_out.min(chunks.len() / 4);
        let train = chunks.split_off(2 * held);
        let test = chunks.split_off(held);
        Chunks {
            len,
            validation: chunks,
            test,
            train,
        }
    }

    pub fn tokens(&self) -> usize {
        (self.validation.len() + self.test.len() + self.train.len()) * self.len
    }
}

/// Read a cached token stream (`None` if absent or unreadable).
pub fn read_cache(path: &Path) -> Option<Vec<u32>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let (head, body) = bytes.split_at_checked(16)?;
    if &head[..8] != b"MARCHTOK" || body.len() % 4 != 0 {
        return None;
    }
    let n = u64::from_le_bytes(head[8..16].try_into().ok()?) as usize;
    if n * 4 != body.len() {
        return None;
    }
    Some(
        body.chunks_exact(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
    )
}

/// Write a token stream to the cache, atomically (a partial file is never read).
pub fn write_cache(path: &Path, stream: &[u32]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(b"MARCHTOK")?;
        f.write_all(&(stream.len() as u64).to_le_bytes())?;
        for t in stream {
            f.write_all(&t.to_le_bytes())?;
        }
        f.flush()?;
    }
    std::fs::rename(tmp, path)
}

/// The default cache directory: `$MARCH_CACHE`, else `$XDG_CACHE_HOME/march`,
/// else `~/.cache/march`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("MARCH_CACHE") {
        return d.into();
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("march");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("march"),
        None => std::env::temp_dir().join("march-cache"),
    }
}

/// Span-corrupted batches of chunks, as tensors.
pub struct Batcher {
    pub noise: SpanCorruption,
    pub special: SpecialIds,
    pub enc_len: usize,
    pub dec_len: usize,
}

impl Batcher {
    pub fn new(noise: SpanCorruption, special: SpecialIds, chunk_len: usize) -> Self {
        let (enc_len, dec_len) = noise.lengths(chunk_len);
        Batcher {
            noise,
            special,
            enc_len,
            dec_len,
        }
    }

    /// Corrupt `chunks` (each with its own seed) into one batch.
    pub fn batch(&self, chunks: &[(&[u32], u64)]) -> HostBatch {
        let b = chunks.len();
        let (se, sd) = (self.enc_len, self.dec_len);
        let pad = self.special.eos;
        let mut enc = Vec::with_capacity(b * se);
        let mut mask = Vec::with_capacity(b * se);
        let mut dec = Vec::with_capacity(b * sd);
        let mut labels = Vec::with_capacity(b * sd);
        for (chunk, seed) in chunks {
            let ex = self
                .noise
                .corrupt(chunk, &self.special, &mut StdRng::seed_from_u64(*seed));
            let n = ex.inputs.len().min(se);
            enc.extend(ex.inputs[..n].iter().map(|&t| t as usize));
            enc.extend(std::iter::repeat_n(pad as usize, se - n));
            mask.extend(std::iter::repeat_n(1.0, n));
            mask.extend(std::iter::repeat_n(0.0, se - n));
            let m = ex.labels.len().min(sd);
            dec.extend(ex.decoder_inputs[..m].iter().map(|&t| t as usize));
            dec.extend(std::iter::repeat_n(pad as usize, sd - m));
            labels.extend(ex.labels[..m].iter().map(|&t| t as i64));
            labels.extend(std::iter::repeat_n(crate::layers::IGNORE_INDEX, sd - m));
        }
        HostBatch {
            batch: b,
            enc_len: se,
            dec_len: sd,
            enc_ids: enc,
            enc_mask: mask,
            dec_ids: dec,
            labels,
        }
    }
}

/// Where the training stream is: epoch and position in that epoch's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataPosition {
    pub epoch: u64,
    pub index: u64,
}

/// The training order: a fresh permutation of the chunks every epoch,
/// determined by the seed, and a corruption seed per (epoch, chunk).
pub struct TrainStream {
    seed: u64,
    n: usize,
    order: Vec<usize>,
    pub position: DataPosition,
}

impl TrainStream {
    pub fn new(seed: u64, n: usize, position: DataPosition) -> Self {
        let mut s = TrainStream {
            seed,
            n,
            order: Vec::new(),
            position,
        };
        s.shuffle();
        s
    }

    fn shuffle(&mut self) {
        self.order = (0..self.n).collect();
        let mut rng =
            StdRng::seed_from_u64(derive_seed(self.seed, &[0x5348_5546, self.position.epoch]));
        self.order.shuffle(&mut rng);
    }

    /// The next `k` (chunk index, corruption seed) pairs.
    pub fn take(&mut self, k: usize) -> Vec<(usize, u64)> {
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            if self.position.index as usize >= self.n {
                self.position = DataPosition {
                    epoch: self.position.epoch + 1,
                    index: 0,
                };
                self.shuffle();
            }
            let chunk = self.order[self.position.index as usize];
            let seed = derive_seed(self.seed, &[self.position.epoch, chunk as u64]);
            out.push((chunk, seed));
            self.position.index += 1;
        }
        out
    }
}
