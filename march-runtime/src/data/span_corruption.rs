//! T5's span corruption (Raffel et al., 2020, §3.1.4), as the original march
//! ran it through Hugging Face's `run_t5_mlm_flax` collator.
//!
//! A chunk of `length` tokens is split into alternating non-noise / noise
//! spans, starting with non-noise. `round(length · density)` tokens are
//! noise, in `round(noise / mean_span)` spans. The encoder input keeps the
//! non-noise tokens and replaces each noise span by a sentinel
//! (`<extra_id_0>`, `<extra_id_1>`, …); the labels are the sentinel-delimited
//! noise spans. Both end with `</s>`; the decoder input is `</s>` followed by
//! the labels without their last token.

use rand::seq::SliceRandom;
use rand::Rng;

/// Noise settings. The original: density 0.15, mean span 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCorruption {
    pub noise_density: f64,
    pub mean_noise_span: f64,
}

impl Default for SpanCorruption {
    fn default() -> Self {
        SpanCorruption {
            noise_density: 0.15,
            mean_noise_span: 3.0,
        }
    }
}

/// One span-corrupted example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Encoder input, ending with `</s>`.
    pub inputs: Vec<u32>,
    /// Targets, ending with `</s>`.
    pub labels: Vec<u32>,
    /// `</s>` followed by `labels[..len-1]`.
    pub decoder_inputs: Vec<u32>,
}

/// The token ids span corruption needs from the tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecialIds {
    pub eos: u32,
    /// `sentinels[k]` is `<extra_id_k>`.
    pub sentinels: Vec<u32>,
}

impl SpanCorruption {
    /// Number of noise tokens and noise spans in a chunk of `length`.
    pub fn counts(&self, length: usize) -> (usize, usize) {
        let noise = ((length as f64 * self.noise_density).round_ties_even() as usize)
            .clamp(1, length.saturating_sub(1).max(1));
        let spans = ((noise as f64 / self.mean_noise_span).round_ties_even() as usize).max(1);
        (noise, spans)
    }

    /// Encoder and decoder lengths for chunks of `length` tokens.
    pub fn lengths(&self, length: usize) -> (usize, usize) {
        let (noise, spans) = self.counts(length);
        (length - noise + spans + 1, noise + spans + 1)
    }

    /// The chunk length whose encoder input has exactly `enc_len` tokens
    /// (as the collator's `compute_input_and_target_lengths`), if any.
    pub fn chunk_for_encoder_len(&self, enc_len: usize) -> Option<usize> {
        (2..4 * enc_len + 8).find(|&l| self.lengths(l).0 == enc_len)
    }

    /// The noise mask of a chunk: `true` where a token is noise.
    pub fn noise_mask(&self, length: usize, rng: &mut impl Rng) -> Vec<bool> {
        if length < 2 {
            return vec![false; length];
        }
        let (noise, spans) = self.counts(length);
        let spans = spans.min(noise).min(length - noise);
        let noise_lens = random_segmentation(noise, spans, rng);
        let keep_lens = random_segmentation(length - noise, spans, rng);
        let mut mask = Vec::with_capacity(length);
        for (k, n) in keep_lens.iter().zip(&noise_lens) {
            mask.extend(std::iter::repeat_n(false, *k));
            mask.extend(std::iter::repeat_n(true, *n));
        }
        mask
    }

    /// Corrupt one chunk. Panics if the chunk needs more sentinels than `ids` has.
    pub fn corrupt(&self, chunk: &[u32], ids: &SpecialIds, rng: &mut impl Rng) -> Example {
        let mask = self.noise_mask(chunk.len(), rng);
        let mut inputs = Vec::with_capacity(chunk.len());
        let mut labels = Vec::new();
        let mut span = 0;
        for (i, (&tok, &noise)) in chunk.iter().zip(&mask).enumerate() {
            let starts = noise && (i == 0 || !mask[i - 1]);
            if noise {
                if starts {
                    let sentinel = *ids.sentinels.get(span).unwrap_or_else(|| {
                        panic!(
                            "a chunk of {} tokens needs more than {} sentinels",
                            chunk.len(),
                            ids.sentinels.len()
                        )
                    });
                    inputs.push(sentinel);
                    labels.push(sentinel);
                    span += 1;
                }
                labels.push(tok);
            } else {
                inputs.push(tok);
            }
        }
        inputs.push(ids.eos);
        labels.push(ids.eos);
        let mut decoder_inputs = Vec::with_capacity(labels.len());
        decoder_inputs.push(ids.eos);
        decoder_inputs.extend_from_slice(&labels[..labels.len() - 1]);
        Example {
            inputs,
            labels,
            decoder_inputs,
        }
    }
}

/// Split `items` into `segments` non-empty segments, uniformly at random:
/// their lengths, in order.
fn random_segmentation(items: usize, segments: usize, rng: &mut impl Rng) -> Vec<usize> {
    // choose which of the `items - 1` gaps start a new segment
    let mut starts: Vec<bool> = (0..items.saturating_sub(1))
        .map(|i| i < segments - 1)
        .collect();
    starts.shuffle(rng);
    let mut lens = vec![1usize];
    for s in starts {
        if s {
            lens.push(1);
        } else {
            *lens.last_mut().unwrap() += 1;
        }
    }
    lens
}

/// Undo span corruption: put each sentinel's span from `labels` back into
/// `inputs`. The inverse of [`SpanCorruption::corrupt`] (used by tests).
pub fn reconstruct(example: &Example, ids: &SpecialIds) -> Vec<u32> {
    let is_sentinel = |t: u32| ids.sentinels.contains(&t);
    let body = |v: &[u32]| v[..v.len() - 1].to_vec();
    let labels = body(&example.labels);
    let mut spans: Vec<Vec<u32>> = Vec::new();
    for &t in &labels {
        if is_sentinel(t) {
            spans.push(Vec::new());
        } else if let Some(s) = spans.last_mut() {
            s.push(t);
        }
    }
    let mut out = Vec::new();
    let mut k = 0;
    for t in body(&example.inputs) {
        if is_sentinel(t) {
            out.extend_from_slice(&spans[k]);
            k += 1;
        } else {
            out.push(t);
        }
    }
    out
}
