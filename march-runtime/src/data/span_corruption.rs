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
//!
//! [`SpanFormat::April2023`] is the original's own format of April 2023
//! (`march/datasets/span_corrupt_utils.py`, 3a631b0 to 97234f0), which its
//! README-era runs trained on: the same spans, but the encoder input ends
//! with the last span's sentinel (no `</s>`) and the labels end with one
//! sentinel more instead of `</s>`.

use rand::seq::SliceRandom;
use rand::Rng;

/// How an example ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum SpanFormat {
    /// T5's (Hugging Face's `run_t5_mlm_flax`): inputs and labels end with `</s>`.
    #[default]
    #[serde(rename = "t5")]
    T5,
    /// The original's of April 2023: inputs end with the last span's
    /// sentinel, labels with one sentinel more (`<extra_id_n>` after n spans).
    #[serde(rename = "april_2023")]
    April2023,
}

impl SpanFormat {
    pub fn is_t5(&self) -> bool {
        *self == SpanFormat::T5
    }

    /// Sentinels an example with `spans` noise spans uses.
    pub fn sentinels(self, spans: usize) -> usize {
        match self {
            SpanFormat::T5 => spans,
            SpanFormat::April2023 => spans + 1,
        }
    }
}

impl std::str::FromStr for SpanFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "t5" => Ok(SpanFormat::T5),
            "april_2023" | "april-2023" => Ok(SpanFormat::April2023),
            other => Err(format!(
                "unknown span format `{other}`: t5, or april_2023 (the original's of April 2023)"
            )),
        }
    }
}

impl std::fmt::Display for SpanFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SpanFormat::T5 => "t5",
            SpanFormat::April2023 => "april_2023",
        })
    }
}

/// Noise settings. The original: density 0.15, mean span 3.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCorruption {
    pub noise_density: f64,
    pub mean_noise_span: f64,
    pub format: SpanFormat,
}

impl Default for SpanCorruption {
    fn default() -> Self {
        SpanCorruption {
            noise_density: 0.15,
            mean_noise_span: 3.0,
            format: SpanFormat::T5,
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
        let eos = match self.format {
            SpanFormat::T5 => 1,
            SpanFormat::April2023 => 0,
        };
        (length - noise + spans + eos, noise + spans + 1)
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
        let sentinel = |span: usize| {
            *ids.sentinels.get(span).unwrap_or_else(|| {
                panic!(
                    "a chunk of {} tokens needs more than {} sentinels",
                    chunk.len(),
                    ids.sentinels.len()
                )
            })
        };
        let mut span = 0;
        for (i, (&tok, &noise)) in chunk.iter().zip(&mask).enumerate() {
            let starts = noise && (i == 0 || !mask[i - 1]);
            if noise {
                if starts {
                    inputs.push(sentinel(span));
                    labels.push(sentinel(span));
                    span += 1;
                }
                labels.push(tok);
            } else {
                inputs.push(tok);
            }
        }
        match self.format {
            SpanFormat::T5 => {
                inputs.push(ids.eos);
                labels.push(ids.eos);
            }
            SpanFormat::April2023 => labels.push(sentinel(span)),
        }
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
    // without the closing `</s>` (T5) or the closing sentinel (April 2023)
    let body = |v: &[u32]| match v.last() {
        Some(&t) if t == ids.eos => v[..v.len() - 1].to_vec(),
        _ => v.to_vec(),
    };
    let mut labels = body(&example.labels);
    if example.inputs.last() != Some(&ids.eos) {
        labels.pop();
    }
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
