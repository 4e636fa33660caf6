//! march: model-architecture experiments at a fixed parameter budget.
//!
//! The `march` binary is [`cli::main`]; a crate of a user's own variants
//! calls it from its own binary to get `train`, `sweep`, `report`, `bench`,
//! `list` and `show` for them and for the library's (`examples/my_experiments.rs`).

pub mod cli;

pub use march_models as models;
pub use march_runtime as runtime;
pub use march_runtime::{experiment, march_model};
