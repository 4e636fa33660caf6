//! A run's data: corpus → tokenizer → token store (cached) → training
//! chunks and the held-out validation and test splits.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};

use super::config::TrainConfig;
use super::progress::{bytes_bar, interrupted, say, Interrupted};
use crate::arch::thousands;
use crate::data::chunks::read_chunks;
use crate::data::corpus::Progress;
use crate::data::{
    cache_dir, corpus, draw_ids, fnv1a, synthetic, Chunks, MarchTokenizer, StoreWriter, TokenStore,
    TrainChunks,
};

/// The data a run trains and is evaluated on.
pub struct Prepared {
    pub tokenizer: MarchTokenizer,
    pub chunks: Chunks,
    pub data_name: String,
    /// Where the validation and the test chunks come from, in words.
    pub held_out: String,
    pub unigram_entropy: f64,
}

/// A corpus: its files (or the built-in one), read a document at a time.
struct Corpus<'a> {
    /// Files and directories; empty: the built-in corpus.
    files: &'a [PathBuf],
    builtin_documents: usize,
    name: String,
}

/// Documents tokenized together (on all cores): at most this many bytes
/// of text, so that a batch's encodings stay small beside the store.
const BATCH_BYTES: usize = 8 << 20;
const BATCH_DOCS: usize = 4096;

impl<'a> Corpus<'a> {
    fn new(files: &'a [PathBuf], builtin_documents: usize) -> Self {
        let name = if files.is_empty() {
            format!("{} ({builtin_documents} documents)", synthetic::NAME)
        } else {
            files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Corpus {
            files,
            builtin_documents,
            name,
        }
    }

    /// Every document in order, to `f` (which may stop the pass), with
    /// where the pass is.
    fn for_each(
        &self,
        mut f: impl FnMut(String, Progress) -> Result<ControlFlow<()>>,
    ) -> Result<()> {
        if !self.files.is_empty() {
            return corpus::for_each_document(self.files, f);
        }
        let docs = synthetic::documents(0, self.builtin_documents);
        let total = docs.iter().map(|d| d.len() as u64).sum();
        let mut read = 0;
        for d in docs {
            read += d.len() as u64;
            let at = Progress { read, total };
            if f(d, at)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The first documents, up to about `budget` bytes of text (the
    /// document that crosses it included).
    fn sample(&self, budget: usize) -> Result<Vec<String>> {
        let mut left = budget;
        let mut docs = Vec::new();
        self.for_each(|d, _| {
            if left == 0 {
                return Ok(ControlFlow::Break(()));
            }
            left = left.saturating_sub(d.len());
            docs.push(d);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(docs)
    }

    /// What the token store keys on: the name, and each file's path, size
    /// and modification time.
    fn describe(&self) -> Result<String> {
        let mut desc = self.name.clone();
        if !self.files.is_empty() {
            for f in corpus::corpus_files(self.files)? {
                let m = std::fs::metadata(&f)?;
                let mtime = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                desc.push_str(&format!("|{}:{}:{mtime}", f.display(), m.len()));
            }
        }
        Ok(desc)
    }

    /// The corpus as one token stream (each document followed by `</s>`)
    /// in a token store, keyed by corpus, tokenizer and chunk length: the
    /// one in the cache, or one written there now, streamed (a batch of
    /// documents at a time, each batch tokenized on all cores). Where no
    /// store can be created in the cache, the stream is kept in memory.
    fn store(
        &self,
        tokenizer: &MarchTokenizer,
        chunk_len: usize,
        progress: bool,
    ) -> Result<Arc<TokenStore>> {
        let tok_json = tokenizer.to_json()?;
        let key = fnv1a(&[
            self.describe()?.as_bytes(),
            tok_json.as_bytes(),
            &chunk_len.to_le_bytes(),
        ]);
        let path = cache_dir().join(format!("{key:016x}.tokens"));
        if let Some(s) = TokenStore::open(&path) {
            say(
                progress,
                format!(
                    "data: {}: {} tokens from the token store {}",
                    self.name,
                    thousands(s.len() as u64),
                    path.display()
                ),
            );
            return Ok(Arc::new(s));
        }
        let mut sink = match StoreWriter::create(&path, tokenizer.vocab_size()) {
            Ok(w) => Sink::Store(w),
            Err(e) => {
                say(
                    progress,
                    format!(
                        "warning: cannot write the token store {}: {e}; tokenizing into memory (set MARCH_CACHE to a writable directory)",
                        path.display()
                    ),
                );
                Sink::Memory(Vec::new())
            }
        };
        let t0 = Instant::now();
        let mut docs = 0u64;
        let mut batch: Vec<String> = Vec::new();
        let mut batch_bytes = 0;
        let mut bar: Option<indicatif::ProgressBar> = None;
        let (mut tenth, mut last_line) = (0, Instant::now());
        let store_err = |e: std::io::Error| {
            anyhow::anyhow!(
                "cannot write the token store {}: {e} (free space there or set MARCH_CACHE to another directory)",
                path.display()
            )
        };
        let flush = |batch: &mut Vec<String>, sink: &mut Sink| -> Result<()> {
            for d in tokenizer.encode_all(batch)? {
                sink.push(&d).map_err(store_err)?;
                sink.push(&[tokenizer.special.eos]).map_err(store_err)?;
            }
            batch.clear();
            Ok(())
        };
        self.for_each(|d, at| {
            if interrupted() {
                return Err(Interrupted(format!(
                    "interrupted while tokenizing {}: no token store written, nothing to resume (start the run again)",
                    self.name
                ))
                .into());
            }
            docs += 1;
            batch_bytes += d.len();
            batch.push(d);
            if batch.len() >= BATCH_DOCS || batch_bytes >= BATCH_BYTES {
                flush(&mut batch, &mut sink)?;
                batch_bytes = 0;
                let bar = bar.get_or_insert_with(|| {
                    bytes_bar(progress, at.total, "of the corpus tokenized")
                        .unwrap_or_else(indicatif::ProgressBar::hidden)
                });
                bar.set_position(at.read);
                // without a bar: a line at each tenth, at most every 10 s
                if bar.is_hidden()
                    && at.read * 10 >= (tenth + 1) * at.total.max(1)
                    && last_line.elapsed().as_secs_f64() >= 10.0
                {
                    tenth = at.read * 10 / at.total.max(1);
                    last_line = Instant::now();
                    say(
                        progress,
                        format!(
                            "data: tokenized {}% of {} ({} documents, {} tokens, {:.0} tokens/s)",
                            at.read * 100 / at.total.max(1),
                            self.name,
                            thousands(docs),
                            thousands(sink.len()),
                            sink.len() as f64 / t0.elapsed().as_secs_f64().max(1e-9)
                        ),
                    );
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        flush(&mut batch, &mut sink)?;
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        let tokens = sink.len();
        let secs = t0.elapsed().as_secs_f64();
        let store = match sink {
            Sink::Store(w) => w.finish().map_err(store_err)?,
            Sink::Memory(v) => TokenStore::in_memory(v),
        };
        say(
            progress,
            format!(
                "data: {}: {} documents, {} tokens tokenized in {secs:.1}s ({:.0} tokens/s){}",
                self.name,
                thousands(docs),
                thousands(tokens),
                tokens as f64 / secs.max(1e-9),
                match store.path() {
                    Some(p) => format!(
                        ", stored in {} ({} bytes a token)",
                        p.display(),
                        store.width()
                    ),
                    None => String::new(),
                }
            ),
        );
        Ok(Arc::new(store))
    }
}

/// Where tokenization writes: a token store, or memory.
enum Sink {
    Store(StoreWriter),
    Memory(Vec<u32>),
}

impl Sink {
    fn push(&mut self, tokens: &[u32]) -> std::io::Result<()> {
        match self {
            Sink::Store(w) => w.push(tokens),
            Sink::Memory(v) => {
                v.extend_from_slice(tokens);
                Ok(())
            }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Sink::Store(w) => w.len(),
            Sink::Memory(v) => v.len() as u64,
        }
    }
}

/// Corpus → tokenizer → token store (cached) → chunks, for a run in
/// `run_dir`: its tokenizer is `--tokenizer`, else the one saved there, else
/// one trained on the corpus; it is saved there.
pub fn prepare_data(
    cfg: &TrainConfig,
    vocab: usize,
    run_dir: &Path,
    progress: bool,
) -> Result<Prepared> {
    let corpus = Corpus::new(&cfg.data, cfg.builtin_documents);
    let saved = run_dir.join("tokenizer.json");
    let tokenizer = match (&cfg.tokenizer, saved.exists()) {
        (Some(path), _) => MarchTokenizer::load(path)?,
        (None, true) => MarchTokenizer::load(&saved)?,
        (None, false) => trained_tokenizer(&corpus, vocab, progress)?,
    };
    if tokenizer.vocab_size() != vocab {
        bail!(
            "the tokenizer ({}) has {} tokens but the variant's vocabulary is {vocab}: pick a variant with vocab {} or train a tokenizer (omit --tokenizer)",
            tokenizer.source,
            tokenizer.vocab_size(),
            tokenizer.vocab_size()
        );
    }
    tokenizer.save(&saved)?;
    split(cfg, tokenizer, corpus, progress)
}

/// The tokenizer trained on `corpus` for `vocab` tokens: the one trained
/// before on the same corpus (files, sizes, times) and vocabulary, kept in
/// the cache beside the token stores (training is deterministic: the same
/// tokenizer), else one trained now on the corpus's first ~20 MB of text
/// and kept there.
fn trained_tokenizer(corpus: &Corpus, vocab: usize, progress: bool) -> Result<MarchTokenizer> {
    let key = fnv1a(&[
        b"tokenizer",
        corpus.describe()?.as_bytes(),
        &vocab.to_le_bytes(),
    ]);
    let path = cache_dir().join(format!("{key:016x}.tokenizer.json"));
    if let Ok(mut t) = MarchTokenizer::load(&path) {
        if t.vocab_size() == vocab {
            say(
                progress,
                format!(
                    "tokenizer: the BPE of {vocab} tokens trained on this corpus before ({})",
                    path.display()
                ),
            );
            // the same tokenizer as one trained now, and said so
            t.source = "trained".to_string();
            return Ok(t);
        }
    }
    let t0 = Instant::now();
    // the first ~20 MB of text are plenty for a BPE
    let sample = corpus.sample(20_000_000)?;
    let t = MarchTokenizer::train(&sample, vocab)?;
    say(
        progress,
        format!(
            "tokenizer: trained a byte-fallback BPE of {vocab} tokens on {} documents in {:.1}s",
            thousands(sample.len() as u64),
            t0.elapsed().as_secs_f64()
        ),
    );
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        // a cache that cannot be written only costs the next run a retraining
        let _ = t.save(&path);
    }
    Ok(t)
}

/// The chunks of a finished run's data, with its saved `tokenizer`, as the
/// run had them (`march eval`); writes nothing.
pub fn load_data(cfg: &TrainConfig, tokenizer: MarchTokenizer, progress: bool) -> Result<Prepared> {
    split(
        cfg,
        tokenizer,
        Corpus::new(&cfg.data, cfg.builtin_documents),
        progress,
    )
}

/// Up to `max_tokens` (in whole chunks of `chunk_len`, drawn across the
/// files; `None`: all) of a corpus's chunks, to evaluate a model on.
pub fn corpus_chunks(
    files: &[PathBuf],
    tokenizer: &MarchTokenizer,
    chunk_len: usize,
    max_tokens: Option<usize>,
    progress: bool,
) -> Result<Vec<Vec<u32>>> {
    let store = Corpus::new(files, 0).store(tokenizer, chunk_len, progress)?;
    let all = store.len() / chunk_len;
    let n = max_tokens.map_or(all, |t| t.div_ceil(chunk_len).min(all));
    let ids = draw_ids(all, &[n]).0.remove(0);
    Ok(read_chunks(&store, chunk_len, &ids)?)
}

/// Cut the training corpus into chunks and take the held-out splits: from
/// their own files when the configuration names them, else drawn across
/// the training corpus (or, for runs made before draws, its first chunks).
fn split(
    cfg: &TrainConfig,
    tokenizer: MarchTokenizer,
    corpus: Corpus,
    progress: bool,
) -> Result<Prepared> {
    let len = cfg.chunk_len;
    let store = corpus.store(&tokenizer, len, progress)?;
    let per_split = cfg.held_out_chunks_per_split();
    let (chunks, held_out) = if let Some(n) = cfg.held_out_chunks {
        if !cfg.validation.is_empty() || !cfg.test.is_empty() {
            bail!("held_out_chunks (the first chunks held out) cannot be combined with validation or test files: leave it unset");
        }
        let mut c = Chunks::leading(store.clone(), len, n)?;
        let what = if cfg.held_out_test_first {
            std::mem::swap(&mut c.validation, &mut c.test);
            format!(
                "test the corpus's first {} chunks, validation the next {}",
                c.test.len(),
                c.validation.len()
            )
        } else {
            format!(
                "validation the corpus's first {} chunks, test the next {}",
                c.validation.len(),
                c.test.len()
            )
        };
        (c, what)
    } else {
        let all = store.len() / len;
        // a split drawn from the corpus takes at most a quarter of it
        let cap = all / 4;
        let want = |files: &[PathBuf]| {
            if files.is_empty() {
                per_split.min(cap)
            } else {
                0
            }
        };
        let (mut drawn, train) = draw_ids(all, &[want(&cfg.validation), want(&cfg.test)]);
        let test_drawn = read_chunks(&store, len, &drawn.pop().expect("two splits"))?;
        let validation_drawn = read_chunks(&store, len, &drawn.pop().expect("two splits"))?;
        let mut words = Vec::new();
        let mut held = |name: &str,
                        files: &[PathBuf],
                        drawn: Vec<Vec<u32>>|
         -> Result<Vec<Vec<u32>>> {
            let (chunks, from) = if files.is_empty() {
                (drawn, "drawn across the training corpus".to_string())
            } else {
                let c = corpus_chunks(files, &tokenizer, len, Some(cfg.held_out_tokens), progress)?;
                let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                (c, format!("from {}", names.join(", ")))
            };
            if chunks.len() < per_split {
                say(
                    progress,
                    format!(
                        "warning: the {name} split has {} chunks of {len} tokens, fewer than held_out_tokens = {} asks ({per_split}): {}",
                        chunks.len(),
                        cfg.held_out_tokens,
                        if files.is_empty() { "a split drawn from the corpus takes at most a quarter of it" } else { "its files hold no more" }
                    ),
                );
            }
            if chunks.is_empty() {
                bail!("the {name} split is empty: its corpus ({from}) has fewer than {len} tokens");
            }
            words.push(format!(
                "{name} {} chunks ({} tokens) {from}",
                thousands(chunks.len() as u64),
                thousands((chunks.len() * len) as u64)
            ));
            Ok(chunks)
        };
        let validation = held("validation", &cfg.validation, validation_drawn)?;
        let test = held("test", &cfg.test, test_drawn)?;
        (
            Chunks {
                len,
                validation,
                test,
                train: TrainChunks::new(store.clone(), len, train),
            },
            words.join("; "),
        )
    };
    say(progress, format!("data: held out: {held_out}"));
    if chunks.train.is_empty() {
        bail!(
            "the corpus has {} tokens: too few for even one training chunk of {len} after the held-out splits",
            store.len(),
        );
    }
    let noise = cfg.span_corruption();
    let spans = noise.format.sentinels(noise.counts(len).1);
    if spans > tokenizer.special.sentinels.len() {
        bail!(
            "chunks of {len} tokens need {spans} sentinels but the tokenizer has {}: use shorter chunks",
            tokenizer.special.sentinels.len()
        );
    }
    // unigram entropy of the training tokens: the loss a model that ignores context reaches
    let vocab = tokenizer.vocab_size();
    let counts = chunks.train.token_counts(vocab)?;
    let n: u64 = counts.iter().sum();
    let unigram_entropy = -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            p * p.ln()
        })
        .sum::<f64>();
    Ok(Prepared {
        tokenizer,
        chunks,
        data_name: corpus.name.clone(),
        held_out,
        unigram_entropy,
    })
}
