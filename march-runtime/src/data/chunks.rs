//! A token stream cut into chunks: the training chunks (read from the
//! token store when a batch needs them) and the held-out validation and
//! test splits (small, held in memory).

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::derive_seed;
use super::store::TokenStore;

/// The training chunks and the held-out splits of a corpus.
#[derive(Debug, Clone)]
pub struct Chunks {
    pub len: usize,
    pub validation: Vec<Vec<u32>>,
    pub test: Vec<Vec<u32>>,
    pub train: TrainChunks,
}

/// Chunks of a token store, by their index in it (chunk `i` is tokens
/// `i·len .. (i+1)·len`), in ascending order.
#[derive(Debug, Clone)]
pub struct TrainChunks {
    store: Arc<TokenStore>,
    len: usize,
    ids: Vec<usize>,
}

impl TrainChunks {
    /// The chunks `ids` (ascending) of `store`.
    pub fn new(store: Arc<TokenStore>, len: usize, ids: Vec<usize>) -> Self {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
        TrainChunks { store, len, ids }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `i`-th training chunk's tokens.
    pub fn get(&self, i: usize) -> std::io::Result<Vec<u32>> {
        self.store.get(self.ids[i] * self.len, self.len)
    }

    /// Every training chunk, read into memory (for tests and small corpora).
    pub fn to_vecs(&self) -> std::io::Result<Vec<Vec<u32>>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }

    /// Token counts over the training chunks (`counts[t]` for token `t`),
    /// the store read in blocks of whole chunks; tokens outside `counts`
    /// are an error.
    pub fn token_counts(&self, vocab: usize) -> std::io::Result<Vec<u64>> {
        let mut counts = vec![0u64; vocab];
        let mut ids = self.ids.iter().copied().peekable();
        let per_block = 8192;
        let mut buf = vec![0u32; per_block * self.len];
        let chunks = self.store.len() / self.len;
        let mut first = 0;
        while first < chunks && ids.peek().is_some() {
            let n = per_block.min(chunks - first);
            let block = &mut buf[..n * self.len];
            self.store.read(first * self.len, block)?;
            while let Some(&id) = ids.peek() {
                if id >= first + n {
                    break;
                }
                ids.next();
                for &t in &block[(id - first) * self.len..(id - first + 1) * self.len] {
                    match counts.get_mut(t as usize) {
                        Some(c) => *c += 1,
                        None => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::InvalidData,
                                format!(
                                "token {t} in the token store is outside the vocabulary of {vocab}"
                            ),
                            ))
                        }
                    }
                }
            }
            first += n;
        }
        Ok(counts)
    }
}

/// The salt of the held-out draw: the same for every run and seed, so that
/// runs on one corpus are evaluated on the same chunks.
const HELD_OUT_SALT: u64 = 0x484f_4c44; // "HOLD"

/// `stream` cut into chunks of `len` tokens (the tail that fills no chunk
/// is dropped).
pub fn cut(stream: &[u32], len: usize) -> Vec<Vec<u32>> {
    stream.chunks_exact(len).map(<[u32]>::to_vec).collect()
}

/// Of `n` chunks, `splits[0]` drawn at random (a permutation seeded by
/// `HELD_OUT_SALT` and `n`, not by the run), the next `splits[1]` of the
/// permutation, …, each in the order drawn; and the indices left, in order.
pub fn draw_ids(n: usize, splits: &[usize]) -> (Vec<Vec<usize>>, Vec<usize>) {
    let total: usize = splits.iter().sum();
    assert!(total <= n, "drawing {total} of {n} chunks");
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = StdRng::seed_from_u64(derive_seed(HELD_OUT_SALT, &[n as u64]));
    order.shuffle(&mut rng);
    let mut drawn_any = vec![false; n];
    let mut drawn = Vec::with_capacity(splits.len());
    let mut at = 0;
    for &k in splits {
        let ids = order[at..at + k].to_vec();
        for &i in &ids {
            drawn_any[i] = true;
        }
        drawn.push(ids);
        at += k;
    }
    let rest = (0..n).filter(|&i| !drawn_any[i]).collect();
    (drawn, rest)
}

/// [`draw_ids`] applied to chunks in memory: the drawn sets of chunks and
/// the chunks left, in their order.
pub fn draw(chunks: Vec<Vec<u32>>, splits: &[usize]) -> (Vec<Vec<Vec<u32>>>, Vec<Vec<u32>>) {
    let (drawn, rest) = draw_ids(chunks.len(), splits);
    let mut slots: Vec<Option<Vec<u32>>> = chunks.into_iter().map(Some).collect();
    let mut take = |ids: &[usize]| -> Vec<Vec<u32>> {
        ids.iter()
            .map(|&i| slots[i].take().expect("drawn once"))
            .collect()
    };
    let drawn = drawn.iter().map(|ids| take(ids)).collect();
    let rest = take(&rest);
    (drawn, rest)
}

/// The chunks `ids` of `store`, read into memory.
pub fn read_chunks(
    store: &TokenStore,
    len: usize,
    ids: &[usize],
) -> std::io::Result<Vec<Vec<u32>>> {
    ids.iter().map(|&i| store.get(i * len, len)).collect()
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
        Self::leading(Arc::new(TokenStore::in_memory(stream)), len, held_out)
            .expect("a store in memory reads")
    }

    /// The layout of runs made before held-out chunks were drawn (their
    /// `held_out_chunks`): the first `held_out` chunks are validation, the
    /// next as many test (at most a quarter of the chunks each).
    pub fn leading(store: Arc<TokenStore>, len: usize, held_out: usize) -> std::io::Result<Chunks> {
        let n = store.len() / len;
        let held = held_out.min(n / 4);
        let ids: Vec<usize> = (0..n).collect();
        Ok(Chunks {
            len,
            validation: read_chunks(&store, len, &ids[..held])?,
            test: read_chunks(&store, len, &ids[held..2 * held])?,
            train: TrainChunks::new(store, len, ids[2 * held..].to_vec()),
        })
    }

    pub fn tokens(&self) -> usize {
        (self.validation.len() + self.test.len() + self.train.len()) * self.len
    }
}
