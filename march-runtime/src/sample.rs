//! Span infilling with a trained model — what one does first after
//! pre-training a T5: `The <extra_id_0> of France is Paris.` in, the span
//! out. The decoder writes `<extra_id_0> span <extra_id_1> span … </s>`,
//! as span corruption taught it; each span is put back in place.

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::MarchTokenizer;
use crate::layers::IGNORE_INDEX;
use crate::session::{HostBatch, Session};

/// How to choose each next token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoding {
    /// 0: greedy (the most likely token); otherwise softmax(logits / T).
    pub temperature: f64,
    /// With a temperature: sample among the `top_k` most likely (0: all).
    pub top_k: usize,
    /// Tokens the decoder may write per input, `</s>` included.
    pub max_tokens: usize,
    /// Seeds the sampling (with a temperature).
    pub seed: u64,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            temperature: 0.0,
            top_k: 0,
            max_tokens: 32,
            seed: 0,
        }
    }
}

/// One input, infilled.
#[derive(Debug, Clone, PartialEq)]
pub struct Infilled {
    pub input: String,
    /// `(k, text)` for each `<extra_id_k>` the decoder wrote, in its order.
    pub spans: Vec<(usize, String)>,
    /// The input with each sentinel replaced by `[its span]` (`[?]` where the
    /// decoder wrote none).
    pub filled: String,
    /// The decoder's tokens, without the start token.
    pub generated: Vec<u32>,
}

/// Infill the `<extra_id_N>` spans of every text, in one batch.
pub fn infill(
    session: &dyn Session,
    tok: &MarchTokenizer,
    texts: &[String],
    dec: &Decoding,
) -> Result<Vec<Infilled>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let arch = session.arch();
    let eos = tok.special.eos;
    let mut inputs = tok.encode_all(texts)?;
    for ids in &mut inputs {
        ids.push(eos);
    }
    let se = inputs.iter().map(Vec::len).max().unwrap_or(1);
    if se > arch.max_len {
        bail!(
            "an input of {se} tokens is longer than {}'s max_len {}",
            arch.name,
            arch.max_len
        );
    }
    let steps = dec.max_tokens.min(arch.max_len - 1).max(1);
    let b = texts.len();
    let mut enc_ids = Vec::with_capacity(b * se);
    let mut enc_mask = Vec::with_capacity(b * se);
    for ids in &inputs {
        enc_ids.extend(ids.iter().map(|&t| t as usize));
        enc_ids.extend(std::iter::repeat_n(eos as usize, se - ids.len()));
        enc_mask.extend(std::iter::repeat_n(1.0, ids.len()));
        enc_mask.extend(std::iter::repeat_n(0.0, se - ids.len()));
    }
    // every decoder starts with `</s>`, as in training
    let mut written: Vec<Vec<u32>> = vec![vec![eos]; b];
    let mut done = vec![false; b];
    let mut rng = StdRng::seed_from_u64(dec.seed);
    for _ in 0..steps {
        let sd = written[0].len();
        let batch = HostBatch {
            batch: b,
            enc_len: se,
            dec_len: sd,
            enc_ids: enc_ids.clone(),
            enc_mask: enc_mask.clone(),
            dec_ids: written.iter().flatten().map(|&t| t as usize).collect(),
            labels: vec![IGNORE_INDEX; b * sd],
        };
        let logits = session.decoder_logits(&batch);
        let v = logits.len() / (b * sd);
        for i in 0..b {
            let next = if done[i] {
                eos
            } else {
                let row = &logits[(i * sd + sd - 1) * v..(i * sd + sd) * v];
                choose(row, dec, &mut rng)
            };
            written[i].push(next);
            done[i] |= next == eos;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    texts
        .iter()
        .zip(&inputs)
        .zip(written)
        .map(|((text, ids), w)| assemble(tok, text, ids, &w[1..]))
        .collect()
}

/// The next token from one row of logits.
fn choose(row: &[f32], dec: &Decoding, rng: &mut StdRng) -> u32 {
    let greedy = || {
        row.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i as u32)
    };
    if dec.temperature <= 0.0 {
        return greedy();
    }
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    if dec.top_k > 0 {
        order.truncate(dec.top_k);
    }
    let top = row[order[0]] as f64;
    let weights: Vec<f64> = order
        .iter()
        .map(|&i| ((row[i] as f64 - top) / dec.temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.gen::<f64>() * total;
    for (&i, w) in order.iter().zip(&weights) {
        if u < *w {
            return i as u32;
        }
        u -= w;
    }
    order[order.len() - 1] as u32
}

/// Spans of the decoder's output put back into the input.
fn assemble(tok: &MarchTokenizer, text: &str, input: &[u32], out: &[u32]) -> Result<Infilled> {
    let sentinel = |t: u32| tok.special.sentinels.iter().position(|&s| s == t);
    let eos = tok.special.eos;
    let mut spans: Vec<(usize, Vec<u32>)> = Vec::new();
    for &t in out {
        if t == eos {
            break;
        }
        match sentinel(t) {
            Some(k) => spans.push((k, Vec::new())),
            // tokens before the first sentinel belong to no span
            None => {
                if let Some((_, s)) = spans.last_mut() {
                    s.push(t);
                }
            }
        }
    }
    let spans: Vec<(usize, String)> = spans
        .into_iter()
        .map(|(k, ids)| Ok((k, tok.decode(&ids)?.trim().to_string())))
        .collect::<Result<_>>()?;
    // the input, each sentinel replaced by its span; the tokenizer drops
    // the space a run of text starts with, so it is put back between words
    let mut filled = String::new();
    let push_text = |filled: &mut String, text: &str| {
        let joins = filled.is_empty()
            || filled.ends_with(' ')
            || text.is_empty()
            || text.starts_with([' ', '.', ',', '!', '?', ';', ':']);
        if !joins {
            filled.push(' ');
        }
        filled.push_str(text);
    };
    let mut run: Vec<u32> = Vec::new();
    for &t in &input[..input.len().saturating_sub(1)] {
        match sentinel(t) {
            Some(k) => {
                push_text(&mut filled, &tok.decode(&run)?);
                run.clear();
                let span = spans
                    .iter()
                    .find(|(j, _)| *j == k)
                    .map_or("?", |(_, s)| s.as_str());
                push_text(&mut filled, &format!("[{span}]"));
            }
            None => run.push(t),
        }
    }
    push_text(&mut filled, &tok.decode(&run)?);
    Ok(Infilled {
        input: text.to_string(),
        spans,
        filled,
        generated: out.to_vec(),
    })
}
