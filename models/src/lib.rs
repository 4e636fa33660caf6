//! The march variant library: every experiment of the original march project,
//! declared once with `#[march_model]` and instantiated at two scales:
//!
//! - the original scale (`Baseline`, 36,340,224 parameters at vocab 30,000),
//! - the CPU scale (`SmallBaseline`, 2,394,240 parameters at vocab 8,192),
//!   for minutes-long runs on two cores.
//!
//! A variant states only what differs from its base; the building blocks are
//! code in `march-runtime`, a variant is data. Every variant registers itself:
//! `march list` shows them all.

// `experiment!` (march-runtime's) in every module of the library
#[macro_use]
extern crate march_runtime;

mod as_run;
mod baseline;
mod cross_attention;
mod feed_forward;
mod heads;
mod original_masks;
mod position;
mod recipes;
mod residual;

pub use as_run::*;
pub use baseline::{Baseline, SmallBaseline, SmallBaselineVocab30k};
pub use cross_attention::*;
pub use feed_forward::*;
pub use heads::*;
pub use original_masks::*;
pub use position::*;
pub use recipes::*;
pub use residual::*;

/// Makes sure the variants are linked into a binary that only reads the
/// registry (`march_runtime::variants()`).
pub fn link() {}
