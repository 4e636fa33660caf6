//! The heads experiments as the original march actually trained them.
//!
//! The original applied the Hugging Face attention mask (1 = real token) as
//! `logits + -1e9 * mask`: every real token got −1e9, which in f32 wipes the
//! logits, so encoder self-attention and cross-attention were exactly
//! uniform over the encoder's tokens (the decoder's causal self-attention
//! was unaffected). `attention = uniform_encoder` reproduces that; the
//! small-scale reproduction (`docs/reproduction.md`) runs each heads
//! experiment both ways. Declared at the CPU scale only, where the sweep
//! runs; an original-scale twin is one line (`base = ScalingHeads,
//! attention = uniform_encoder`).

use crate::baseline::SmallBaseline;
use crate::heads::{SmallLessHeadsMoreQKVDim, SmallMoreHeadsLessLayers, SmallScalingHeads};

/// `SmallBaseline` with the original's uniform encoder attention.
#[::march_runtime::march_model(base = SmallBaseline, attention = uniform_encoder)]
pub struct SmallUniformBaseline;

/// `SmallMoreHeadsLessLayers` with the original's uniform encoder attention.
#[::march_runtime::march_model(
    base = SmallMoreHeadsLessLayers,
    attention = uniform_encoder,
    budget_exempt = "the original ran it as 'same parameter budget' although it is not; kept as the original ran it",
)]
pub struct SmallUniformMoreHeadsLessLayers;

/// `SmallLessHeadsMoreQKVDim` with the original's uniform encoder attention.
#[::march_runtime::march_model(base = SmallLessHeadsMoreQKVDim, attention = uniform_encoder)]
pub struct SmallUniformLessHeadsMoreQKVDim;

/// `SmallScalingHeads` with the original's uniform encoder attention.
#[::march_runtime::march_model(base = SmallScalingHeads, attention = uniform_encoder)]
pub struct SmallUniformScalingHeads;
