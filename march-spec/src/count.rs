//! Which parameters a variant has, which of them influence the loss, and
//! what its matrix products cost: the dead-weight rule, written once.
//!
//! The model skips what this module calls dead (through the predicates on
//! [`Arch`]), the macro counts with [`Arch::tensors`], and the FLOPs count
//! only the products of live weights.

use crate::arch::{Arch, AttentionKind, CrossAttention, DecoderNorms, PositionKind};

/// Which tokens a weight multiplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Encoder,
    Decoder,
    /// Not a product with the tokens (an embedding lookup, a norm's gain).
    None,
}

/// One trainable tensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamTensor {
    /// Where it sits, e.g. `encoder.2.self_attn.w_q`.
    pub name: String,
    pub numel: u64,
    /// Whether it influences the loss (and so receives a gradient).
    pub live: bool,
    /// The tokens it multiplies in a weight product.
    pub side: Side,
}

/// The reference workload of [`Arch::flops_per_token`]: span corruption of
/// 256-token chunks.
pub const REF_CHUNK_TOKENS: usize = 256;
/// Encoder length of the reference workload.
pub const REF_ENCODER_LEN: usize = 230;
/// Decoder length of the reference workload.
pub const REF_DECODER_LEN: usize = 52;

impl Arch {
    /// Encoder layer `i` only computes its keys and values: with
    /// `reuse_encoder_kv` or `project_encoder_kv`, decoder layer i reads
    /// encoder layer i's keys and values, so nothing reads the last encoder
    /// layer's output.
    pub const fn encoder_kv_only(&self, i: usize) -> bool {
        self.cross_attention.pairs_layers() && i + 1 == self.encoder_layers
    }

    /// Whether encoder self-attention and cross-attention use queries and
    /// keys (uniform attention only averages values).
    pub const fn encoder_side_softmax(&self) -> bool {
        matches!(self.attention, AttentionKind::Softmax)
    }

    /// Whether anything reads the final encoder output (and its norm).
    pub const fn reads_encoder_output(&self) -> bool {
        !self.cross_attention.pairs_layers()
    }

    /// Whether the encoder's relative bias table reaches the loss: some
    /// encoder layer's self-attention computes softmax logits.
    pub const fn encoder_bias_live(&self) -> bool {
        self.encoder_side_softmax() && (self.encoder_layers > 1 || !self.encoder_kv_only(0))
    }

    /// Decoder layer `i`'s self-attention reads the previous layer's
    /// feed-forward norm instead of its own (`decoder_norms = shared`).
    pub const fn reads_previous_ffn_norm(&self, i: usize) -> bool {
        matches!(self.decoder_norms, DecoderNorms::Shared) && i > 0 && self.ffn.present()
    }

    /// Every trainable tensor, in the model's order, with its liveness.
    pub fn tensors(&self) -> Vec<ParamTensor> {
        let m = self.dim_model as u64;
        // a norm's gain
        let g = self.norm_gain.size(self.dim_model) as u64;
        let softmax = self.encoder_side_softmax();
        let mut out = Vec::new();
        let mut add = |name: String, numel: u64, live: bool, side: Side| {
            out.push(ParamTensor {
                name,
                numel,
                live,
                side,
            })
        };
        add("embedding".into(), self.vocab as u64 * m, true, Side::None);
        if self.position.kind == PositionKind::Learned {
            add("position".into(), self.max_len as u64 * m, true, Side::None);
        }
        for i in 0..self.encoder_layers {
            let l = self.encoder(i);
            let (inner, ff) = (l.inner() as u64, (self.ffn.matrices() * l.dim_ff) as u64);
            let kv_only = self.encoder_kv_only(i);
            let p = |t: &str| format!("encoder.{i}.{t}");
            add(p("self_attn_norm"), g, true, Side::None);
            add(
                p("self_attn.w_q"),
                m * inner,
                softmax && !kv_only,
                Side::Encoder,
            );
            add(p("self_attn.w_k"), m * inner, softmax, Side::Encoder);
            add(p("self_attn.w_v"), m * inner, true, Side::Encoder);
            add(p("self_attn.w_o"), inner * m, !kv_only, Side::Encoder);
            if self.ffn.present() {
                add(p("ffn_norm"), g, !kv_only, Side::None);
                add(p("ffn"), ff * m, !kv_only, Side::Encoder);
            }
        }
        add(
            "encoder_norm".into(),
            g,
            self.reads_encoder_output(),
            Side::None,
        );
        for i in 0..self.decoder_layers {
            let l = self.decoder(i);
            let (inner, ff) = (l.inner() as u64, (self.ffn.matrices() * l.dim_ff) as u64);
            let p = |t: &str| format!("decoder.{i}.{t}");
            add(
                p("self_attn_norm"),
                g,
                !self.reads_previous_ffn_norm(i),
                Side::None,
            );
            for w in ["w_q", "w_k", "w_v", "w_o"] {
                add(p(&format!("self_attn.{w}")), m * inner, true, Side::Decoder);
            }
            // uniform cross-attention ignores the decoder side: it only
            // averages the encoder's values
            add(p("cross_attn_norm"), g, softmax, Side::None);
            add(p("cross_attn.w_q"), m * inner, softmax, Side::Decoder);
            match self.cross_attention {
                CrossAttention::OwnKv => {
                    add(p("cross_attn.w_k"), m * inner, softmax, Side::Encoder);
                    add(p("cross_attn.w_v"), m * inner, true, Side::Encoder);
                }
                CrossAttention::ProjectEncoderKv => {
                    add(p("cross_attn.w_k"), inner * inner, softmax, Side::Encoder);
                    add(p("cross_attn.w_v"), inner * inner, true, Side::Encoder);
                }
                CrossAttention::ReuseEncoderKv => {}
            }
            add(p("cross_attn.w_o"), inner * m, true, Side::Decoder);
            if self.ffn.present() {
                add(p("ffn_norm"), g, true, Side::None);
                add(p("ffn"), ff * m, true, Side::Decoder);
            }
        }
        add("decoder_norm".into(), g, true, Side::None);
        if !self.tie_embeddings {
            // its product is the output head's, counted with the tied one's
            add(
                "lm_head.weight".into(),
                self.vocab as u64 * m,
                true,
                Side::None,
            );
        }
        if let PositionKind::T5Relative { num_buckets, .. } = self.position.kind {
            // one table per stack; every layer has the same heads (checked)
            let n = (num_buckets * self.heads.at(0)) as u64;
            let enc = self.encoder_bias_live();
            add("relative_bias.encoder".into(), n, enc, Side::None);
            add("relative_bias.decoder".into(), n, true, Side::None);
        }
        out
    }

    /// Trainable parameters: all, and those that influence the loss.
    pub fn count_params(&self) -> crate::ParamCount {
        let t = self.tensors();
        crate::ParamCount {
            total: t.iter().map(|t| t.numel).sum(),
            live: t.iter().filter(|t| t.live).map(|t| t.numel).sum(),
        }
    }

    /// Forward + backward FLOPs of one example with `enc_len` encoder and
    /// `dec_len` decoder tokens.
    ///
    /// Matrix products only (norms, softmax and element-wise work are
    /// ignored): `6 · tokens · weights` for every product of a live weight (2
    /// forward, 4 backward; dead weights are not computed), and `12 · S_q ·
    /// S_k · heads·dim_qkv` for each attention (q·kᵀ and p·v; p·v alone when
    /// the probabilities are uniform), and the tied output head.
    pub fn flops_per_example(&self, enc_len: usize, dec_len: usize) -> u64 {
        let (se, sd) = (enc_len as u64, dec_len as u64);
        let mut flops: u64 = self
            .tensors()
            .iter()
            .filter(|t| t.live)
            .map(|t| match t.side {
                Side::Encoder => 6 * se * t.numel,
                Side::Decoder => 6 * sd * t.numel,
                Side::None => 0,
            })
            .sum();
        let products: u64 = if self.encoder_side_softmax() { 2 } else { 1 };
        for i in 0..self.encoder_layers {
            if !self.encoder_kv_only(i) {
                flops += 6 * products * se * se * self.encoder(i).inner() as u64;
            }
        }
        for i in 0..self.decoder_layers {
            let inner = self.decoder(i).inner() as u64;
            // causal self-attention is computed dense
            flops += 6 * 2 * sd * sd * inner;
            flops += 6 * products * sd * se * inner;
        }
        // the output head (tied or not)
        flops + 6 * sd * self.dim_model as u64 * self.vocab as u64
    }

    /// FLOPs per corpus token on the reference workload
    /// ([`REF_ENCODER_LEN`], [`REF_DECODER_LEN`] from a chunk of [`REF_CHUNK_TOKENS`]).
    pub fn flops_per_token(&self) -> u64 {
        self.flops_per_example(REF_ENCODER_LEN, REF_DECODER_LEN) / REF_CHUNK_TOKENS as u64
    }
}
