//! The tensor types every part of the runtime shares: element types,
//! tapes, hidden states. (Low in the module graph: `kernels` and `layers`
//! both build on it.)

use dfdx::prelude::*;

/// A batch of sequences of `M`-dimensional vectors: `[batch, seq, M]`.
pub type Hidden<const M: usize, E, D, T = NoneTape> = Tensor<(usize, usize, Const<M>), E, D, T>;

/// The tapes a forward pass can run with: `NoneTape` (inference) or
/// `OwnedTape` (training). Both merge with themselves and with `NoneTape`.
pub trait AnyTape<E: Dtype, D: Device<E>>:
    Tape<E, D> + Merge<NoneTape> + Merge<Self> + Default
{
}
impl<E: Dtype, D: Device<E>, T: Tape<E, D> + Merge<NoneTape> + Merge<T> + Default> AnyTape<E, D>
    for T
{
}

/// The element types the blocks are written for (f32 for training, f64 for the
/// reference tests).
pub trait Float: Dtype + num_traits::Float {}
impl<E: Dtype + num_traits::Float> Float for E {}
