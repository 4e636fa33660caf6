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

/// Declares one experiment at both scales: `$name` derived from `Baseline`
/// and `$small` from `SmallBaseline` (or any other pair of bases), with the
/// same `#[march_model]` entries. Relative entries (`heads *= 2`,
/// `layers -= 1`) make one declaration fit both scales.
macro_rules! experiment {
    (
        $(#[doc = $doc:literal])*
        $name:ident, $small:ident from $base:ident, $small_base:ident:
        $($entries:tt)*
    ) => {
        $(#[doc = $doc])*
        #[::march_runtime::march_model(base = $base, $($entries)*)]
        pub struct $name;

        $(#[doc = $doc])*
        ///
        /// CPU scale.
        #[::march_runtime::march_model(base = $small_base, $($entries)*)]
        pub struct $small;
    };
}

mod baseline;
mod feed_forward;
mod heads;
mod original_masks;
mod position;
mod residual;

pub use baseline::{Baseline, SmallBaseline, SmallBaselineVocab30k};
pub use feed_forward::*;
pub use heads::*;
pub use original_masks::*;
pub use position::*;
pub use residual::*;

/// Makes sure the variants are linked into a binary that only reads the
/// registry (`march_runtime::variants()`).
pub fn link() {}
