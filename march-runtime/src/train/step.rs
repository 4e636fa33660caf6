//! One optimizer step, the same in `march train` and `march bench`:
//! zero the gradients, forward and backward every micro-batch, clip by the
//! global gradient norm, one AdamW update.

use crate::session::{HostBatch, Session};

/// Seconds one step spent in each of its phases.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// The forward pass and the loss.
    pub forward: f64,
    /// The backward pass (zero when only evaluating).
    pub backward: f64,
    /// The gradient norm and the AdamW update (zero when only evaluating).
    pub optimizer: f64,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepOutcome {
    /// Mean loss over the micro-batches.
    pub loss: f64,
    /// Global gradient norm of the mean gradient, before clipping.
    pub grad_norm: f64,
    pub phases: Phases,
}

/// Why a step did not update the weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StepError {
    /// The loss was NaN or infinite (nothing was updated).
    Loss(f64),
    /// The gradient norm was NaN or infinite (nothing was updated).
    GradNorm(f64),
}

/// One optimizer step over `micro` (each micro-batch with its dropout
/// seed) at learning rate `lr`, clipping the gradient norm to `clip`
/// (`0`: no clipping).
pub fn train_step(
    session: &mut dyn Session,
    micro: &[(HostBatch, u64)],
    lr: f64,
    clip: f64,
) -> Result<StepOutcome, StepError> {
    let mut phases = Phases::default();
    session.zero_grads();
    let mut loss_sum = 0.0;
    for (batch, seed) in micro {
        let pass = session.accumulate(batch, Some(*seed));
        loss_sum += pass.loss;
        phases.forward += pass.forward_s;
        phases.backward += pass.backward_s;
    }
    let loss = loss_sum / micro.len() as f64;
    if !loss.is_finite() {
        return Err(StepError::Loss(loss));
    }
    let t0 = std::time::Instant::now();
    let scale = 1.0 / micro.len() as f64;
    let norm = session.grad_norm() * scale;
    if !norm.is_finite() {
        return Err(StepError::GradNorm(norm));
    }
    let clip = if clip > 0.0 && norm > clip {
        clip / (norm + 1e-6)
    } else {
        1.0
    };
    session.update(lr, scale * clip);
    phases.optimizer = t0.elapsed().as_secs_f64();
    Ok(StepOutcome {
        loss,
        grad_norm: norm,
        phases,
    })
}
