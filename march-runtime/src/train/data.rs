//! A run's data: corpus → tokenizer → token streams (cached) → training
//! chunks and the held-out validation and test splits.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Result};

use super::config::TrainConfig;
use super::progress::{progress_bar, say};
use crate::arch::thousands;
use crate::data::{
    cache_dir, corpus, cut, draw, fnv1a, read_cache, synthetic, write_cache, Chunks,
    MarchTokenizer, SpanCorruption,
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

/// A corpus whose documents are read once, when first needed (a token
/// stream found in the cache needs none).
struct Corpus<'a> {
    /// Files and directories; empty: the built-in corpus.
    files: &'a [PathBuf],
    builtin_documents: usize,
    name: String,
    docs: Option<Vec<String>>,
}

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
            docs: None,
        }
    }

    fn docs(&mut self, progress: bool) -> Result<&[String]> {
        if self.docs.is_none() {
            let t0 = Instant::now();
            let docs = if self.files.is_empty() {
                synthetic::documents(0, self.builtin_documents)
            } else {
                corpus::read_documents(self.files)?
            };
            say(
                progress,
                format!(
                    "data: {}: {} documents read in {:.1}s",
                    self.name,
                    thousands(docs.len() as u64),
                    t0.elapsed().as_secs_f64()
                ),
            );
            self.docs = Some(docs);
        }
        Ok(self.docs.as_deref().expect("read"))
    }

    /// What the token cache keys on: the name, and each file's path, size
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

    /// The corpus as one token stream (each document followed by `</s>`),
    /// from the cache when it holds it (keyed by corpus, tokenizer and
    /// chunk length).
    fn stream(
        &mut self,
        tokenizer: &MarchTokenizer,
        chunk_len: usize,
        progress: bool,
    ) -> Result<Vec<u32>> {
        let tok_json = tokenizer.to_json()?;
        let key = fnv1a(&[
            self.describe()?.as_bytes(),
            tok_json.as_bytes(),
            &chunk_len.to_le_bytes(),
        ]);
        let cache = cache_dir().join(format!("{key:016x}.tokens"));
        if let Some(s) = read_cache(&cache) {
            say(
                progress,
                format!(
                    "data: {}: {} tokens from the cache ({})",
                    self.name,
                    thousands(s.len() as u64),
                    cache.display()
                ),
            );
            return Ok(s);
        }
        let name = self.name.clone();
        let docs = self.docs(progress)?;
        let t0 = Instant::now();
        // in batches, each tokenized on all cores, with progress
        let bar = progress_bar(progress, docs.len() as u64, 0, "documents tokenized");
        let mut stream = Vec::new();
        let mut logged = 0;
        for (i, batch) in docs.chunks(4096).enumerate() {
            for d in tokenizer.encode_all(batch)? {
                stream.extend_from_slice(&d);
                stream.push(tokenizer.special.eos);
            }
            let done = (i * 4096 + batch.len()) as u64;
            match &bar {
                Some(b) => b.set_position(done),
                None if done * 4 >= (logged + 1) * docs.len() as u64
                    && done < docs.len() as u64 =>
                {
                    logged += 1;
                    say(
                        progress,
                        format!("data: tokenized {done}/{} documents", docs.len()),
                    );
                }
                None => {}
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        say(
            progress,
            format!(
                "data: {name}: tokenized {} tokens in {:.1}s",
                thousands(stream.len() as u64),
                t0.elapsed().as_secs_f64()
            ),
        );
        if let Err(e) = write_cache(&cache, &stream) {
            say(
                progress,
                format!(
                    "warning: cannot write the token cache {}: {e}",
                    cache.display()
                ),
            );
        }
        Ok(stream)
    }
}

/// Corpus → tokenizer → token stream (cached) → chunks, for a run in
/// `run_dir`: its tokenizer is `--tokenizer`, else the one saved there, else
/// one trained on the corpus; it is saved there.
pub fn prepare_data(
    cfg: &TrainConfig,
    vocab: usize,
    run_dir: &Path,
    progress: bool,
) -> Result<Prepared> {
    let mut corpus = Corpus::new(&cfg.data, cfg.builtin_documents);
    let saved = run_dir.join("tokenizer.json");
    let tokenizer = match (&cfg.tokenizer, saved.exists()) {
        (Some(path), _) => MarchTokenizer::load(path)?,
        (None, true) => MarchTokenizer::load(&saved)?,
        (None, false) => {
            let docs = corpus.docs(progress)?;
            let t0 = Instant::now();
            // a sample of up to ~20 MB of text is plenty for a BPE
            let mut budget = 20_000_000usize;
            let sample: Vec<String> = docs
                .iter()
                .take_while(|d| {
                    let ok = budget > 0;
                    budget = budget.saturating_sub(d.len());
                    ok
                })
                .cloned()
                .collect();
            let t = MarchTokenizer::train(&sample, vocab)?;
            say(
                progress,
                format!(
                    "tokenizer: trained a byte-fallback BPE of {vocab} tokens in {:.1}s",
                    t0.elapsed().as_secs_f64()
                ),
            );
            t
        }
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
    let stream = Corpus::new(files, 0).stream(tokenizer, chunk_len, progress)?;
    let all = cut(&stream, chunk_len);
    let n = max_tokens.map_or(all.len(), |t| t.div_ceil(chunk_len).min(all.len()));
    Ok(draw(all, &[n]).0.remove(0))
}

/// Cut the training corpus into chunks and take the held-out splits: from
/// their own files when the configuration names them, else drawn across
/// the training corpus (or, for runs made before draws, its first chunks).
fn split(
    cfg: &TrainConfig,
    tokenizer: MarchTokenizer,
    mut corpus: Corpus,
    progress: bool,
) -> Result<Prepared> {
    let len = cfg.chunk_len;
    let stream = corpus.stream(&tokenizer, len, progress)?;
    let per_split = cfg.held_out_chunks_per_split();
    let (chunks, held_out) = if let Some(n) = cfg.held_out_chunks {
        if !cfg.validation.is_empty() || !cfg.test.is_empty() {
            bail!("held_out_chunks (the first chunks held out) cannot be combined with validation or test files: leave it unset");
        }
        let mut c = Chunks::from_stream(&stream, len, n);
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
        let all = cut(&stream, len);
        // a split drawn from the corpus takes at most a quarter of it
        let cap = all.len() / 4;
        let want = |files: &[PathBuf]| {
            if files.is_empty() {
                per_split.min(cap)
            } else {
                0
            }
        };
        let (mut drawn, train) = draw(all, &[want(&cfg.validation), want(&cfg.test)]);
        let test_drawn = drawn.pop().expect("two splits");
        let validation_drawn = drawn.pop().expect("two splits");
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
                train,
            },
            words.join("; "),
        )
    };
    say(progress, format!("data: held out: {held_out}"));
    if chunks.train.is_empty() {
        bail!(
            "the corpus has {} tokens: too few for even one training chunk of {len} after the held-out splits",
            stream.len(),
        );
    }
    let noise = SpanCorruption {
        noise_density: cfg.noise_density,
        mean_noise_span: cfg.mean_noise_span,
    };
    let spans = noise.counts(len).1;
    if spans > tokenizer.special.sentinels.len() {
        bail!(
            "chunks of {len} tokens need {spans} sentinels but the tokenizer has {}: use shorter chunks",
            tokenizer.special.sentinels.len()
        );
    }
    // unigram entropy of the training tokens: the loss a model that ignores context reaches
    let vocab = tokenizer.vocab_size();
    let mut counts = vec![0u64; vocab];
    for c in &chunks.train {
        for &t in c {
            counts[t as usize] += 1;
        }
    }
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
        data_name: corpus.name,
        held_out,
        unigram_entropy,
    })
}
