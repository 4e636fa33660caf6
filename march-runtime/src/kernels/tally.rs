//! A tally of the step's matrix products — every projection and the LM
//! head ([`linear`](super::linear)), forward and both gradients, and the
//! fused [`attention`](super::attention), forward and backward — by role
//! and shape, with the seconds each took: what `march bench --products`
//! prints, so that the step's products can be compared one by one with
//! the matmul ceiling. Off unless [`start`]ed; then one clock read on
//! either side of each product, and of each attention op as a whole (its
//! per-head products, tasks of a parallel loop, with the softmax and the
//! dropout between them).
//!
//! Started [`Repeats::Warm`], each projection product runs a second time
//! at once, on the same operands and into the same destination (restored
//! first where the product accumulates), timed apart: the same product
//! with its operands just touched, against the step's where they come from
//! a layer or a pass ago. The second result must equal the first bit for
//! bit (it panics otherwise); those steps' own times are not reported.

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
    /// Under [`Repeats::Warm`], the seconds of the repeats (a projection's
    /// only; 0 for the attention).
    pub warm_seconds: f64,
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

    /// Its repeats' rate, where it was repeated.
    pub fn warm_gflops(&self) -> Option<f64> {
        (self.warm_seconds > 0.0).then(|| self.flops() / self.warm_seconds / 1e9)
    }
}

/// Whether a tallied projection product runs once or a second time warm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeats {
    Once,
    Warm,
}

type Key = (Role, usize, (usize, usize, usize));
/// Calls, their seconds, the repeats' seconds.
type Counts = (u64, f64, f64);

static ON: AtomicBool = AtomicBool::new(false);
static WARM: AtomicBool = AtomicBool::new(false);
static TALLY: Mutex<BTreeMap<Key, Counts>> = Mutex::new(BTreeMap::new());

fn tally() -> std::sync::MutexGuard<'static, BTreeMap<Key, Counts>> {
    // a panic elsewhere while it was held leaves counts, not a broken map
    TALLY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Clears the tally and counts from now on, each projection product run
/// `repeats`.
pub fn start(repeats: Repeats) {
    tally().clear();
    WARM.store(repeats == Repeats::Warm, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
}

/// Stops counting; what was counted since [`start`], slowest first.
pub fn stop() -> Vec<Tallied> {
    ON.store(false, Ordering::SeqCst);
    WARM.store(false, Ordering::SeqCst);
    let mut out: Vec<Tallied> = std::mem::take(&mut *tally())
        .into_iter()
        .map(
            |((role, heads, mkn), (calls, seconds, warm_seconds))| Tallied {
                role,
                mkn,
                heads,
                calls,
                seconds,
                warm_seconds,
            },
        )
        .collect();
    out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    out
}

/// Runs the product `f` of `role` and shape `mkn` into `dst` (`len`
/// contiguous elements, added to where `accumulate`), timed while
/// counting, and under [`Repeats::Warm`] a second time, timed apart (see
/// the module's doc).
///
/// # Safety
/// `dst` is valid for reads and writes of `len` elements, and `f` writes
/// only there.
pub(crate) unsafe fn timed<E: Copy>(
    role: Role,
    mkn: (usize, usize, usize),
    (dst, len, accumulate): (*mut E, usize, bool),
    f: impl Fn(),
) {
    let timer = begin(role, 1, mkn);
    if !WARM.load(Ordering::Relaxed) || timer.0.is_none() {
        f();
        return timer.end();
    }
    // SAFETY (all below): `dst` holds `len` elements, by the contract
    let before = accumulate.then(|| unsafe { std::slice::from_raw_parts(dst, len) }.to_vec());
    f();
    let key = timer.end_key();
    let first = unsafe { std::slice::from_raw_parts(dst, len) }.to_vec();
    if let Some(before) = &before {
        unsafe { std::ptr::copy_nonoverlapping(before.as_ptr(), dst, len) };
    }
    let t0 = Instant::now();
    f();
    let dt = t0.elapsed().as_secs_f64();
    let bytes = |x: &[E]| unsafe {
        std::slice::from_raw_parts(x.as_ptr().cast::<u8>(), std::mem::size_of_val(x))
    };
    let again = unsafe { std::slice::from_raw_parts(dst, len) };
    assert!(
        bytes(&first) == bytes(again),
        "{} {mkn:?}: a repeat of the product gave other bits",
        role.name()
    );
    if let Some(key) = key {
        tally().entry(key).or_insert((0, 0.0, 0.0)).2 += dt;
    }
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
        self.end_key();
    }

    /// [`Timer::end`], returning the key it counted under, if counting.
    fn end_key(self) -> Option<Key> {
        let (key, t0) = self.0?;
        let dt = t0.elapsed().as_secs_f64();
        let mut t = tally();
        let e = t.entry(key).or_insert((0, 0.0, 0.0));
        e.0 += 1;
        e.1 += dt;
        Some(key)
    }
}
