//! Training any registered variant the same way.

pub mod config;
pub mod data;
pub mod evaluate;
pub mod metrics;
pub(crate) mod progress;
pub mod run_dir;
pub mod schedule;
pub mod step;
pub mod tensorboard;
pub mod trainer;

pub use config::TrainConfig;
pub use progress::Interrupted;
pub use step::{train_step, Phases, StepOutcome};
pub use trainer::{run, DeviceKind, Report, RunOptions};
