//! AdamW (Loshchilov & Hutter, 2019) as PyTorch implements it, with what
//! dfdx's lacks: no weight decay on norm weights, parameters that got no
//! gradient this step left untouched (PyTorch skips `grad is None`), global
//! gradient-norm clipping, and a state that checkpoints.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
};
use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{f32s, simd};
use crate::layers::Float;
use crate::ops::{AdamWStep, Ops};
use crate::params::{for_each_grad_slice, set_params};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            betas: (0.9, 0.95),
            eps: 1e-8,
            weight_decay: 0.1,
        }
    }
}

/// Whether a parameter is decayed: everything but norm weights.
pub fn decays(name: &str) -> bool {
    !name.ends_with("norm.weight")
}

/// AdamW's moments: two copies of the model's parameters.
pub struct AdamW<M> {
    pub cfg: AdamWConfig,
    pub m: M,
    pub v: M,
    /// Optimizer steps taken.
    pub t: u64,
}

/// Global L2 norm of all gradients of `model` (`&mut`: the gradient
/// buffers are borrowed, not copied; a parameter without a gradient gets a
/// zero one). Summed in a fixed order: the same on any number of threads.
pub fn grad_norm<E: Float, D: Ops<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> f64 {
    const CHUNK: usize = 1 << 16;
    let mut sq = 0.0;
    for_each_grad_slice(model, grads, |_, g| {
        sq += match f32s(g) {
            Some(g) => g
                .par_chunks(CHUNK)
                .map(simd::sum_squares_f64)
                .collect::<Vec<_>>()
                .iter()
                .sum::<f64>(),
            None => g.iter().map(|x| x.to_f64().unwrap().powi(2)).sum::<f64>(),
        };
    });
    sq.sqrt()
}

impl<M> AdamW<M> {
    /// Zeroed moments shaped like `model` (built with `build`).
    pub fn new<E: Float, D: Ops<E>>(cfg: AdamWConfig, build: impl Fn() -> M) -> Self
    where
        M: TensorCollection<E, D>,
    {
        let zero = || {
            let mut s = build();
            set_params(&mut s, |_, n| Some(vec![E::zero(); n]));
            s
        };
        AdamW {
            cfg,
            m: zero(),
            v: zero(),
            t: 0,
        }
    }

    /// One update of `model` with `grads` scaled by `grad_scale` (gradient
    /// clipping and accumulation), at learning rate `lr`. Returns how many
    /// parameter tensors were updated. (`&mut` gradients: on the CPU their
    /// buffers are read in place.)
    pub fn step<E: Float, D: Ops<E>>(
        &mut self,
        model: &mut M,
        grads: &mut Gradients<E, D>,
        lr: f64,
        grad_scale: f64,
    ) -> usize
    where
        M: TensorCollection<E, D>,
    {
        self.t += 1;
        let mut visitor = Update {
            grads,
            cfg: self.cfg,
            lr,
            grad_scale,
            t: self.t,
            updated: 0,
        };
        let walker = &mut RecursiveWalker {
            m: (model, &mut self.m, &mut self.v, String::new()),
            f: &mut visitor,
        };
        let _ = <M as TensorCollection<E, D>>::iter_tensors(walker)
            .map_err(|_| ())
            .expect("optimizer step");
        visitor.updated
    }
}

struct Update<'a, E: Float, D: Ops<E>> {
    grads: &'a mut Gradients<E, D>,
    cfg: AdamWConfig,
    lr: f64,
    grad_scale: f64,
    t: u64,
    updated: usize,
}

impl<E: Float, D: Ops<E>> TensorVisitor<E, D> for Update<'_, E, D> {
    type Viewer = (ViewTensorMut, ViewTensorMut, ViewTensorMut, ViewTensorName);
    type Err = D::Err;
    type E2 = E;
    type D2 = D;

    fn visit<S: Shape>(
        &mut self,
        opts: TensorOptions<S, E, D>,
        (p, m, v, name): (
            &mut Tensor<S, E, D>,
            &mut Tensor<S, E, D>,
            &mut Tensor<S, E, D>,
            String,
        ),
    ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
        if !opts.do_gradient_update {
            return Ok(None);
        }
        let (b1, b2) = self.cfg.betas;
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        let decay = if decays(&name) {
            self.lr * self.cfg.weight_decay
        } else {
            0.0
        };
        let step = AdamWStep {
            beta1: b1,
            beta2: b2,
            eps: self.cfg.eps,
            grad_scale: self.grad_scale,
            bias_correction: (bc1, bc2),
            lr: self.lr,
            decay,
        };
        // a parameter that got no gradient is left alone (moments included)
        if D::adamw(p, m, v, self.grads, step)? {
            self.updated += 1;
        }
        Ok(None)
    }
}
