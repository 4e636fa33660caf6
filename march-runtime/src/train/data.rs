//! A run's data: corpus → tokenizer → token stream (cached) → chunks.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};

use super::config::TrainConfig;
use super::progress::{progress_bar, say};
use crate::data::{
    cache_dir, corpus, fnv1a, read_cache, synthetic, write_cache, Chunks, MarchTokenizer,
    SpanCorruption,
};

/// The data a run trains on.
pub struct Prepared {
    pub tokenizer: MarchTokenizer,
    pub chunks: Chunks,
    pub data_name: String,
    pub unigram_entropy: f64,
}

/// Corpus → tokenizer → token stream (cached) → chunks.
pub fn prepare_data(
    cfg: &TrainConfig,
    vocab: usize,
    run_dir: &Path,
    progress: bool,
) -> Result<Prepared> {
    let builtin = cfg.data.is_empty();
    let data_name = if builtin {
        format!("{} ({} documents)", synthetic::NAME, cfg.builtin_documents)
    } else {
        cfg.data
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let t0 = Instant::now();
    let docs = if builtin {
        synthetic::documents(0, cfg.builtin_documents)
    } else {
        corpus::read_documents(&cfg.data)?
    };
    say(
        progress,
        format!(
            "data: {data_name}: {} documents read in {:.1}s",
            docs.len(),
            t0.elapsed().as_secs_f64()
        ),
    );

    let saved = run_dir.join("tokenizer.json");
    let tokenizer = match (&cfg.tokenizer, saved.exists()) {
        (Some(path), _) => MarchTokenizer::load(path)?,
        (None, true) => MarchTokenizer::load(&saved)?,
        (None, false) => {
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

    // token stream, cached by corpus, tokenizer and chunk length
    let tok_json = std::fs::read(&saved)?;
    let mut desc = data_name.clone();
    if !builtin {
        for f in corpus::corpus_files(&cfg.data)? {
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
    let key = fnv1a(&[desc.as_bytes(), &tok_json, &cfg.chunk_len.to_le_bytes()]);
    let cache = cache_dir().join(format!("{key:016x}.tokens"));
    let stream = match read_cache(&cache) {
        Some(s) => {
            say(
                progress,
                format!(
                    "data: {} tokens from the cache ({})",
                    crate::arch::thousands(s.len() as u64),
                    cache.display()
                ),
            );
            s
        }
        None => {
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
                    "data: tokenized {} tokens in {:.1}s",
                    crate::arch::thousands(stream.len() as u64),
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
            stream
        }
    };
    let chunks = Chunks::from_stream(&stream, cfg.chunk_len, cfg.held_out_chunks);
    if chunks.train.is_empty() {
        bail!(
            "the corpus has {} tokens: too few for even one training chunk of {} after holding out {} chunks twice",
            stream.len(),
            cfg.chunk_len,
            cfg.held_out_chunks
        );
    }
    let noise = SpanCorruption {
        noise_density: cfg.noise_density,
        mean_noise_span: cfg.mean_noise_span,
    };
    let spans = noise.counts(cfg.chunk_len).1;
    if spans > tokenizer.special.sentinels.len() {
        bail!(
            "chunks of {} tokens need {spans} sentinels but the tokenizer has {}: use shorter chunks",
            cfg.chunk_len,
            tokenizer.special.sentinels.len()
        );
    }
    // unigram entropy of the training tokens: the loss a model that ignores context reaches
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
        data_name,
        unigram_entropy,
    })
}
