//! The heads experiments with encoder mixing without attention: an ablation.
//!
//! `attention = uniform_encoder` makes encoder self-attention and
//! cross-attention uniform over the encoder's (unpadded) tokens; the
//! decoder's causal self-attention is unchanged. Until its mask fix
//! (57502f7, 22 April 2023) the original march trained that way by
//! accident: it applied the Hugging Face attention mask (1 = real token) as
//! `logits + -1e9 * mask`, and −1e9 on every real token wipes the logits in
//! f32. The runs behind its README's findings started after the fix (see
//! `docs/reproduction.md`), so these are not how those findings were made;
//! the small-scale reproduction runs each heads experiment both ways. Declared at the CPU scale only, where the sweep
//! runs; an original-scale twin is one line (`base = ScalingHeads,
//! attention = uniform_encoder`).

use crate::baseline::SmallBaseline;
use crate::heads::{SmallLessHeadsMoreQKVDim, SmallMoreHeadsLessLayers, SmallScalingHeads};

/// `SmallBaseline` with uniform encoder attention.
#[::march_runtime::march_model(base = SmallBaseline, attention = uniform_encoder)]
pub struct SmallUniformBaseline;

/// `SmallMoreHeadsLessLayers` with uniform encoder attention.
#[::march_runtime::march_model(
    base = SmallMoreHeadsLessLayers,
    attention = uniform_encoder,
    budget_exempt = "the original ran it as 'same parameter budget' although it is not; kept as the original ran it",
)]
pub struct SmallUniformMoreHeadsLessLayers;

/// `SmallLessHeadsMoreQKVDim` with uniform encoder attention.
#[::march_runtime::march_model(base = SmallLessHeadsMoreQKVDim, attention = uniform_encoder)]
pub struct SmallUniformLessHeadsMoreQKVDim;

/// `SmallScalingHeads` with uniform encoder attention.
#[::march_runtime::march_model(base = SmallScalingHeads, attention = uniform_encoder)]
pub struct SmallUniformScalingHeads;
