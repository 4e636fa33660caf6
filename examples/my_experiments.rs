//! A researcher's own variants in their own crate, with march's whole
//! command line for them and for the library's.
//!
//! In a crate of your own, depend on `march`, `march-runtime` and
//! `march-models` (see the README, "Adding a variant"); this example is
//! that crate's `src/main.rs`:
//!
//! ```text
//! cargo run --release --example my_experiments -- list
//! cargo run --release --example my_experiments -- train MySmallSwiGLUMoreHeads --preset smoke
//! ```

use march::{experiment, march_model};
use march_models::{Baseline, SmallBaseline};

/// SwiGLU with twice the heads at half the head dimension: the baseline's
/// budget, a question the library does not ask.
#[march_model(
    base = SmallBaseline,
    ffn = glu(silu),
    dim_ff *= 2/3,
    heads *= 2,
    dim_qkv /= 2,
)]
pub struct MySmallSwiGLUMoreHeads;

experiment! {
    /// Four heads of 128 in every layer with a ReLU GLU: both scales at once.
    MyReGLUFewerHeads, MySmallReGLUFewerHeads from Baseline, SmallBaseline:
    ffn = glu(relu),
    dim_ff *= 2/3,
    heads /= 2,
    dim_qkv *= 2,
}

fn main() -> std::process::ExitCode {
    march::cli::main()
}
