//! Data: corpus → tokenizer → token store → chunks → span-corrupted batches.

pub mod chunks;
pub mod corpus;
pub mod span_corruption;
pub mod store;
pub mod synthetic;
pub mod tokenizer;

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::session::HostBatch;
pub use chunks::{cut, draw, draw_ids, Chunks, TrainChunks};
pub use span_corruption::{Example, SpanCorruption, SpanFormat, SpecialIds};
pub use store::{StoreWriter, TokenStore};
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
