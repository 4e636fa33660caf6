//! Learning-rate schedules.

use serde::{Deserialize, Serialize};

/// How the learning rate moves over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// `lr` throughout (after the warmup, if any) — the original.
    #[default]
    Constant,
    /// Linear warmup, then cosine decay to 10% of `lr` at the last step.
    Cosine,
    /// Linear warmup, then `lr · sqrt(warmup / step)`.
    InverseSqrt,
}

impl std::str::FromStr for Schedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine),
            "inverse_sqrt" | "inverse-sqrt" => Ok(Schedule::InverseSqrt),
            _ => Err(format!(
                "unknown schedule `{s}`: use constant, cosine or inverse_sqrt"
            )),
        }
    }
}

impl Schedule {
    /// Learning rate at optimizer step `step` (1-based) of `total`.
    pub fn lr(self, base: f64, step: u64, warmup: u64, total: u64) -> f64 {
        let step = step.max(1);
        if warmup > 0 && step <= warmup {
            return base * step as f64 / warmup as f64;
        }
        match self {
            Schedule::Constant => base,
            Schedule::Cosine => {
                let span = total.saturating_sub(warmup).max(1) as f64;
                let progress = ((step - warmup) as f64 / span).min(1.0);
                let min = 0.1 * base;
                min + 0.5 * (base - min) * (1.0 + (std::f64::consts::PI * progress).cos())
            }
            Schedule::InverseSqrt => base * (warmup.max(1) as f64 / step as f64).sqrt(),
        }
    }
}
