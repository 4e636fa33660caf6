//! The two baselines every experiment derives from.

use march_runtime::march_model;

/// The original march baseline: T5-style encoder-decoder, 3+3 layers, 8 heads
/// of 64, ReLU feed-forward 2048, tied embedding, learned positions.
#[march_model(
    dim_model = 512,
    layers = 3,
    heads = 8,
    dim_qkv = 64,
    ffn = dense(relu),
    dim_ff = 2048,
    vocab = 30_000,
    max_len = 1024,
    dropout = 0.1,
    position_combine = mean,
    position_init = scaled,
    cross_attention = reuse_encoder_kv,
    budget = 36_340_224,
    tolerance = 1%,
)]
pub struct Baseline;

/// The CPU-scale baseline: the original's structure (3+3 layers, per-layer
/// K/V reuse) at dim 128, 4 heads of 32, feed-forward 512, vocab 8,192.
#[march_model(
    base = Baseline,
    dim_model = 128,
    heads = 4,
    dim_qkv = 32,
    dim_ff = 512,
    vocab = 8192,
    max_len = 512,
    budget = 2_394_240,
)]
pub struct SmallBaseline;

/// The CPU-scale baseline at the original tokenizer's vocabulary (30,000),
/// for runs with `--tokenizer march-tokenizer.json`.
#[march_model(base = SmallBaseline, vocab = 30_000, budget = 5_185_664)]
pub struct SmallBaselineVocab30k;
