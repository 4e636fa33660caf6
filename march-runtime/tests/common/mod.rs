//! What the runtime's integration tests share.

use march_runtime::arch::*;

const HEADS: [usize; 1] = [2];
/// A tiny architecture: 6-dim model, 2 heads of 3, no dropout.
pub const ARCH: Arch = Arch {
    name: "numerics",
    base: None,
    doc: "",
    declared: "",
    dim_model: 6,
    vocab: 7,
    max_len: 9,
    encoder_heads: &HEADS,
    decoder_heads: &HEADS,
    dim_qkv: 3,
    dim_ff: 5,
    ffn: FeedForward::Dense {
        activation: Activation::Relu,
    },
    position: Position {
        combine: Combine::Mean,
        init: PositionInit::Scaled,
    },
    residual: Residuals {
        self_attn: true,
        cross_attn: true,
        ffn: true,
    },
    cross_attention: CrossAttention::ReuseEncoderKv,
    attention: AttentionKind::Softmax,
    dropout: 0.0,
    params: ParamCount { total: 0, live: 0 },
    budget: Budget {
        params: 1,
        on: BudgetOn::Total,
        tolerance_pct: 1.0,
        exempt: None,
    },
};
