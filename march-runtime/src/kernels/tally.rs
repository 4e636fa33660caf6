//! A tally of the step's matrix products — every projection and the LM
//! head ([`linear`](super::linear)), forward and both gradients, and the
//! fused [`attention`](super::attention), forward and backward — by role
//! and shape, with the seconds each took: what `march bench --products`
//! prints, so that the step's products can be compared one by one with
//! the matmul ceiling. Off unless [`start`]ed; then one clock read on
//! either side of each product, and of each attention op as a whole (its
//! per-head products, tasks of a parallel loop, with the softmax and the
//! dropout between them).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Which of a projection's three products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `Y = X · W`.
    Forward,
    /// `dX += dY · Wᵀ`.
    InputGradient,
    /// `dW += Xᵀ · dY`.
    WeightGradient,
    /// The fused attention's forward, per head `S = Q·Kᵀ`, the softmax and
    /// the dropout, `O = P·V`: two products of `seq_q × dim · dim × seq_k`'s
    /// flops.
    AttentionForward,
    /// Its backward, per head `dP = dO·Vᵀ`, `dV += Pᵀ·dO`, the softmax's
    /// gradient, `dQ += dS·K`, `dK += dSᵀ·Q`: four such products.
    AttentionBackward,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Forward => "Y = X·W",
            Role::InputGradient => "dX += dY·Wᵀ",
            Role::WeightGradient => "dW += Xᵀ·dY",
            Role::AttentionForward => "attention",
            Role::AttentionBackward => "attention ∂",
        }
    }

    /// Whether it is the attention's (rated per head) rather than a
    /// projection's.
    pub fn attention(self) -> bool {
        matches!(self, Role::AttentionForward | Role::AttentionBackward)
    }

    /// How many products of the tallied shape one call makes (per head).
    pub fn products(self) -> usize {
        match self {
            Role::AttentionForward => 2,
            Role::AttentionBackward => 4,
            _ => 1,
        }
    }
}

/// One role and shape's products since [`start`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tallied {
    pub role: Role,
    /// `(m, k, n)` of the `m × k · k × n` product (for the attention:
    /// `(seq_q, dim_qkv, seq_k)`, the shape of `Q·Kᵀ`).
    pub mkn: (usize, usize, usize),
    /// How many of them one call computes: 1 for a projection, batch ×
    /// heads for the attention (its products are per head).
    pub heads: usize,
    pub calls: u64,
    pub seconds: f64,
}

impl Tallied {
    /// Floating-point operations over all its calls.
    pub fn flops(&self) -> f64 {
        let (m, k, n) = self.mkn;
        let per_call = 2.0 * (m * k * n * self.heads * self.role.products()) as f64;
        per_call * self.calls as f64
    }

    /// Its rate over all its calls.
    pub fn gflops(&self) -> f64 {
        self.flops() / self.seconds / 1e9
    }
}

type Key = (Role, usize, (usize, usize, usize));

static ON: AtomicBool = AtomicBool::new(false);
static TALLY: Mutex<BTreeMap<Key, (u64, f64)>> = Mutex::new(BTreeMap::new());

fn tally() -> std::sync::MutexGuard<'static, BTreeMap<Key, (u64, f64)>> {
    // a panic elsewhere while it was held leaves counts, not a broken map
    TALLY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Clears the tally and counts from now on.
pub fn start() {
    tally().clear();
    ON.store(true, Ordering::SeqCst);
}

/// Stops counting; what was counted since [`start`], slowest first.
pub fn stop() -> Vec<Tallied> {
    ON.store(false, Ordering::SeqCst);
    let mut out: Vec<Tallied> = std::mem::take(&mut *tally())
        .into_iter()
        .map(|((role, heads, mkn), (calls, seconds))| Tallied {
            role,
            mkn,
            heads,
            calls,
            seconds,
        })
        .collect();
    out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    out
}

/// Runs the product `f` of `role` and shape `mkn`, timed while counting.
pub(crate) fn timed<R>(role: Role, mkn: (usize, usize, usize), f: impl FnOnce() -> R) -> R {
    let timer = begin(role, 1, mkn);
    let r = f();
    timer.end();
    r
}

/// A clock started by [`begin`] for `heads` products of one role and shape
/// at once (the attention), read by [`Timer::end`]: the code it times stays
/// as it is, not moved into a closure.
pub(crate) struct Timer(Option<(Key, Instant)>);

/// Starts a [`Timer`]; one that records nothing unless counting.
pub(crate) fn begin(role: Role, heads: usize, mkn: (usize, usize, usize)) -> Timer {
    if !ON.load(Ordering::Relaxed) {
        return Timer(None);
    }
    Timer(Some(((role, heads, mkn), Instant::now())))
}

impl Timer {
    /// Adds the seconds since [`begin`] and one call to the tally.
    pub(crate) fn end(self) {
        let Some((key, t0)) = self.0 else { return };
        let dt = t0.elapsed().as_secs_f64();
        let mut t = tally();
        let e = t.entry(key).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += dt;
    }
}
