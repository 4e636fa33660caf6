//! Tokenizers: any Hugging Face `tokenizer.json`, or a byte-fallback BPE
//! trained on the corpus with the original's special tokens (`</s>` = 0,
//! `<extra_id_99>` … `<extra_id_0>` = 1 … 100) and the model's vocabulary.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tokenizers::models::bpe::BpeTrainerBuilder;
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::{AddedToken, Tokenizer};

use super::span_corruption::SpecialIds;

/// End of sequence, also the padding and decoder-start token.
pub const EOS: &str = "</s>";
/// Number of sentinel tokens a trained tokenizer gets.
pub const SENTINELS: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: cannot load tokenizer: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("{source_name}: the tokenizer has no `{token}` token; march needs `</s>` and the sentinels `<extra_id_0>`, `<extra_id_1>`, …")]
    MissingSpecial { source_name: String, token: String },
    #[error("training the tokenizer failed: {0}")]
    Train(String),
    #[error("{path}: cannot save tokenizer: {reason}")]
    Save { path: PathBuf, reason: String },
    #[error("tokenizing failed: {0}")]
    Encode(String),
}

/// A tokenizer with the ids span corruption needs.
pub struct MarchTokenizer {
    inner: Tokenizer,
    pub special: SpecialIds,
    /// Where it came from (a path, or `trained`).
    pub source: String,
}

fn sentinel(k: usize) -> String {
    format!("<extra_id_{k}>")
}

impl MarchTokenizer {
    fn wrap(mut inner: Tokenizer, source: String) -> Result<Self, TokenizerError> {
        // documents are packed, never padded or cut (a tokenizer.json may
        // carry either setting: the original's pads batches)
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| TokenizerError::Load {
                path: source.clone().into(),
                reason: e.to_string(),
            })?;
        let missing = |token: &str| TokenizerError::MissingSpecial {
            source_name: source.clone(),
            token: token.to_string(),
        };
        let eos = inner.token_to_id(EOS).ok_or_else(|| missing(EOS))?;
        let sentinels: Vec<u32> = (0..)
            .map_while(|k| inner.token_to_id(&sentinel(k)))
            .collect();
        if sentinels.is_empty() {
            return Err(missing("<extra_id_0>"));
        }
        Ok(MarchTokenizer {
            inner,
            special: SpecialIds { eos, sentinels },
            source,
        })
    }

    /// Load a Hugging Face `tokenizer.json`.
    ///
    /// (A file that is JSON but not a tokenizer is said to be so: the
    /// `tokenizers` crate's own error names a JSON position only.)
    pub fn load(path: &Path) -> Result<Self, TokenizerError> {
        let inner = Tokenizer::from_file(path).map_err(|e| TokenizerError::Load {
            path: path.into(),
            reason: load_failure(path, &e.to_string()),
        })?;
        Self::wrap(inner, path.display().to_string())
    }

    /// Train a byte-fallback BPE of exactly `vocab` tokens on `docs`: the
    /// special tokens at 0…100, the 256 byte tokens `<0x00>`…`<0xFF>` at
    /// 101…356, then the learned merges. A corpus too small to learn that many
    /// tokens is padded with `<unused_N>` tokens, so that the size always
    /// equals the model's vocabulary.
    pub fn train(docs: &[String], vocab: usize) -> Result<Self, TokenizerError> {
        let reserved = 1 + SENTINELS + 256;
        if vocab <= reserved + 64 {
            return Err(TokenizerError::Train(format!(
                "a vocabulary of {vocab} leaves no room for learned tokens (it needs more than {})",
                reserved + 64
            )));
        }
        let mut specials = vec![AddedToken::from(EOS, true)];
        specials.extend(
            (0..SENTINELS)
                .rev()
                .map(|k| AddedToken::from(sentinel(k), true)),
        );
        let trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab - 256)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(specials)
            .build();
        let mut trainer = TrainerWrapper::BpeTrainer(trainer);
        let mut tok = Tokenizer::new(tokenizers::models::bpe::BPE::default());
        tok.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::First, true)));
        tok.train(&mut trainer, docs.iter())
            .map_err(|e| TokenizerError::Train(e.to_string()))?;
        let json = tok
            .to_string(false)
            .map_err(|e| TokenizerError::Train(e.to_string()))?;
        let json = add_byte_fallback(&json, vocab).map_err(TokenizerError::Train)?;
        let inner: Tokenizer =
            json.parse()
                .map_err(|e: Box<dyn std::error::Error + Send + Sync>| {
                    TokenizerError::Train(e.to_string())
                })?;
        Self::wrap(inner, "trained".to_string())
    }

    /// The tokenizer as Hugging Face `tokenizer.json` text.
    pub fn to_json(&self) -> Result<String, TokenizerError> {
        self.inner
            .to_string(false)
            .map_err(|e| TokenizerError::Train(e.to_string()))
    }

    /// Write the tokenizer's JSON to `path` atomically (a temporary file
    /// renamed over it: a kill leaves the old file or the new one).
    pub fn save(&self, path: &Path) -> Result<(), TokenizerError> {
        let err = |reason: String| TokenizerError::Save {
            path: path.into(),
            reason,
        };
        let json = self
            .inner
            .to_string(false)
            .map_err(|e| err(e.to_string()))?;
        crate::files::write_atomic(path, json.as_bytes()).map_err(|e| err(format!("{e:#}")))
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of each document (no special tokens added), in parallel
    /// (rayon's pool). Each document's encoding (its tokens' strings and
    /// offsets, tens of bytes a token) is dropped as soon as its ids are
    /// out, so a batch of documents costs its ids, not its encodings.
    pub fn encode_all(&self, docs: &[String]) -> Result<Vec<Vec<u32>>, TokenizerError> {
        use rayon::prelude::*;
        docs.par_iter()
            .map(|d| {
                self.inner
                    .encode_fast(d.as_str(), false)
                    .map(|e| e.get_ids().to_vec())
                    .map_err(|e| TokenizerError::Encode(e.to_string()))
            })
            .collect()
    }

    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}

/// Insert the 256 byte tokens after the special tokens (shifting the learned
/// ones up), turn on byte fallback, pad to `vocab`, and set a decoder that
/// restores bytes and spaces.
fn add_byte_fallback(json: &str, vocab: usize) -> Result<String, String> {
    let mut t: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let specials = 1 + SENTINELS as u64;
    let model_vocab = t["model"]["vocab"]
        .as_object_mut()
        .ok_or("trained tokenizer has no vocab")?;
    let mut entries: Vec<(String, u64)> = model_vocab
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect();
    entries.sort_by_key(|(_, id)| *id);
    let mut new_vocab = serde_json::Map::new();
    for (token, id) in &entries {
        let id = if *id < specials { *id } else { id + 256 };
        new_vocab.insert(token.clone(), json!(id));
    }
    for b in 0..256u64 {
        new_vocab.insert(format!("<0x{b:02X}>"), json!(specials + b));
    }
    let mut next = new_vocab.len() as u64;
    while (next as usize) < vocab {
        new_vocab.insert(format!("<unused_{next}>"), json!(next));
        next += 1;
    }
    if new_vocab.len() > vocab {
        return Err(format!(
            "trained {} tokens for a vocabulary of {vocab}",
            new_vocab.len()
        ));
    }
    *model_vocab = new_vocab;
    t["model"]["byte_fallback"] = json!(true);
    // added (special) tokens keep their ids
    // as Llama's: ▁ back to spaces, bytes back to characters, drop the
    // space the pre-tokenizer prepended
    t["decoder"] = json!({
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}
        ]
    });
    serde_json::to_string(&t).map_err(|e| e.to_string())
}

/// Why `path` did not load as a tokenizer (`error`: the `tokenizers` crate's
/// message): unreadable, not JSON, or JSON of another kind.
fn load_failure(path: &Path, error: &str) -> String {
    match std::fs::read_to_string(path) {
        Err(e) => e.to_string(),
        Ok(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Err(e) => format!("not JSON ({e})"),
            Ok(_) => format!("JSON, but not a Hugging Face tokenizer.json ({error})"),
        },
    }
}
