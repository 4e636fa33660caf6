//! The CPU runs march's kernels, for `f32` and `f64` alike.

use dfdx::prelude::*;

use super::{AdamWStep, Flat, Matmul, Ops, Rows};
use crate::arch::{Activation, Combine};
use crate::kernels::{self, adamw, DropMask};
use crate::tensor::{AnyTape, Hidden};

/// The gradient buffer of `t`, allocated (zero) if it has none yet.
fn grad_slice_mut<'g, S: Shape, E: crate::tensor::Float>(
    grads: &'g mut Gradients<E, Cpu>,
    t: &Tensor<S, E, Cpu>,
) -> Result<&'g mut [E], <Cpu as HasErr>::Err>
where
    Cpu: Device<E>,
{
    let (ptr, n) = kernels::cpu_grad::<E>(grads.get_or_alloc_mut(t)?);
    // SAFETY: the buffer of `n` elements, borrowed from `grads` for 'g
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, n) })
}

macro_rules! cpu_ops {
    ($e:ty) => {
        impl Ops<$e> for Cpu {
            fn linear<const K: usize, const N: usize, T: Tape<$e, Self>>(
                x: Rows<K, $e, Self, T>,
                w: &Tensor<Rank2<K, N>, $e, Self>,
                precision: Matmul,
            ) -> Rows<N, $e, Self, T> {
                kernels::linear::linear(x, w, precision)
            }

            fn linear_transposed<const K: usize, const N: usize, T: Tape<$e, Self>>(
                x: Rows<K, $e, Self, T>,
                w: &Tensor<Rank2<N, K>, $e, Self>,
                precision: Matmul,
            ) -> Rows<N, $e, Self, T> {
                kernels::linear::linear_transposed(x, w, precision)
            }

            fn attention<const H: usize, const DQK: usize, T: AnyTape<$e, Self>>(
                q: Flat<$e, Self, T>,
                k: &Flat<$e, Self>,
                v: &Flat<$e, Self>,
                bias: &Flat<$e, Self>,
                head_bias: Option<&Flat<$e, Self>>,
                dropout: Option<DropMask>,
            ) -> Flat<$e, Self, T> {
                kernels::attention::fused_attention::<H, DQK, $e, T>(
                    q, k, v, bias, head_bias, dropout,
                )
            }

            fn rope<const H: usize, const DQK: usize, T: AnyTape<$e, Self>>(
                x: Flat<$e, Self, T>,
                theta: f64,
            ) -> Flat<$e, Self, T> {
                kernels::rope::rope::<H, DQK, $e, T>(x, theta)
            }

            fn rms_norm<const M: usize, const G: usize, T: AnyTape<$e, Self>>(
                x: Hidden<M, $e, Self, T>,
                w: &Tensor<Rank1<G>, $e, Self>,
                eps: f64,
            ) -> Hidden<M, $e, Self, T> {
                kernels::rms_norm::rms_norm(x, w, eps)
            }

            fn embed_positions<
                const V: usize,
                const M: usize,
                const L: usize,
                T: AnyTape<$e, Self>,
            >(
                embedding: &Tensor<Rank2<V, M>, $e, Self>,
                table: &Tensor<Rank2<L, M>, $e, Self>,
                ids: &Tensor<(usize, usize), usize, Self>,
                masks: [Option<DropMask>; 2],
                combine: Combine,
            ) -> Hidden<M, $e, Self, T> {
                kernels::embedding::embed_positions(embedding, table, ids, masks, combine)
            }

            fn glu_dropout<S: Shape, T: AnyTape<$e, Self>>(
                gate: Tensor<S, $e, Self, T>,
                up: Tensor<S, $e, Self, T>,
                act: Activation,
                mask: Option<DropMask>,
            ) -> Tensor<S, $e, Self, T> {
                kernels::glu::glu_dropout(gate, up, act, mask)
            }

            fn dropout<S: Shape, T: Tape<$e, Self>>(
                t: Tensor<S, $e, Self, T>,
                mask: DropMask,
            ) -> Tensor<S, $e, Self, T> {
                kernels::dropout::dropout(t, mask)
            }

            fn dropout_add<S: Shape, T: Tape<$e, Self>>(
                t: Tensor<S, $e, Self, T>,
                x: Tensor<S, $e, Self>,
                mask: DropMask,
            ) -> Tensor<S, $e, Self, T> {
                kernels::dropout::dropout_add(t, x, mask)
            }

            fn relu_dropout<S: Shape, T: Tape<$e, Self>>(
                t: Tensor<S, $e, Self, T>,
                mask: DropMask,
            ) -> Tensor<S, $e, Self, T> {
                kernels::dropout::relu_dropout(t, mask)
            }

            fn cross_entropy<const V: usize, T: AnyTape<$e, Self>>(
                logits: Tensor<(usize, usize, Const<V>), $e, Self, T>,
                labels: &[i64],
            ) -> Tensor<Rank0, $e, Self, T> {
                kernels::cross_entropy::fused_masked_cross_entropy(logits, labels)
            }

            fn adamw<S: Shape>(
                p: &mut Tensor<S, $e, Self>,
                m: &mut Tensor<S, $e, Self>,
                v: &mut Tensor<S, $e, Self>,
                grads: &mut Gradients<$e, Self>,
                step: AdamWStep,
            ) -> Result<bool, Self::Err> {
                let g = grad_slice_mut(grads, p)?;
                Ok(adamw::update(
                    kernels::view_mut(p),
                    kernels::view_mut(m),
                    kernels::view_mut(v),
                    g,
                    step,
                ))
            }

            fn with_grad<S: Shape>(
                grads: &mut Gradients<$e, Self>,
                t: &Tensor<S, $e, Self>,
                f: &mut dyn FnMut(&[$e]),
            ) -> Result<(), Self::Err> {
                f(grad_slice_mut(grads, t)?);
                Ok(())
            }
        }
    };
}

cpu_ops!(f32);
cpu_ops!(f64);
