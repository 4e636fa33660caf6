//! Synthetic batches of a given shape, for benchmarks and probes.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::session::HostBatch;

/// A batch shape: `batch` examples of `enc_len` encoder and `dec_len` decoder tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    pub batch: usize,
    pub enc_len: usize,
    pub dec_len: usize,
    /// Corpus tokens one example stands for (the chunk length before span corruption).
    pub chunk_tokens: usize,
}

impl Workload {
    /// The throughput workload of the issue tracker: batch 8, span corruption
    /// of 256-token chunks (encoder 230, decoder 52).
    pub const REFERENCE: Workload = Workload {
        batch: 8,
        enc_len: crate::arch::REF_ENCODER_LEN,
        dec_len: crate::arch::REF_DECODER_LEN,
        chunk_tokens: crate::arch::REF_CHUNK_TOKENS,
    };

    /// Corpus tokens per step.
    pub fn tokens(&self) -> usize {
        self.batch * self.chunk_tokens
    }

    /// Random token ids (no padding) and labels, deterministic in `seed`.
    pub fn batch(&self, vocab: usize, seed: u64) -> HostBatch {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ids = |n: usize| {
            (0..n)
                .map(|_| rng.gen_range(0..vocab))
                .collect::<Vec<usize>>()
        };
        let (b, se, sd) = (self.batch, self.enc_len, self.dec_len);
        let enc_ids = ids(b * se);
        let dec_ids = ids(b * sd);
        let labels = ids(b * sd).into_iter().map(|x| x as i64).collect();
        HostBatch {
            batch: b,
            enc_len: se,
            dec_len: sd,
            enc_ids,
            enc_mask: vec![1.0; b * se],
            dec_ids,
            labels,
        }
    }
}
