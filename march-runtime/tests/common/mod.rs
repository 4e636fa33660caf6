//! What the runtime's integration tests share.

use march_runtime::arch::*;

/// A tiny architecture: 6-dim model, 2 heads of 3, no dropout.
pub const ARCH: Arch = Arch {
    name: "numerics",
    dim_model: 6,
    vocab: 7,
    max_len: 9,
    heads: PerLayer::All(2),
    dim_qkv: PerLayer::All(3),
    dim_ff: PerLayer::All(5),
    encoder_layers: 1,
    decoder_layers: 1,
    dropout: 0.0,
    budget: Budget {
        params: Some(1),
        ..Arch::DEFAULT.budget
    },
    ..Arch::DEFAULT
};
