//! AdamW (Loshchilov & Hutter, 2019) as PyTorch implements it, with what
//! dfdx's lacks: no weight decay on norm weights, parameters that got no
//! gradient this step left untouched (PyTorch skips `grad is None`), global
//! gradient-norm clipping, and a state that checkpoints.

use dfdx::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{f32s, simd};
use crate::layers::Float;
use crate::ops::{AdamWStep, Ops};
use crate::params::{for_each_grad_slice, Param, Params};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    /// Decay the norm weights too (the original under DeepSpeed, whose
    /// optimizer got every parameter); by default they are not decayed.
    #[serde(default)]
    pub decay_norms: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            betas: (0.9, 0.95),
            eps: 1e-8,
            weight_decay: 0.1,
            decay_norms: false,
        }
    }
}

/// Whether a parameter is decayed: everything but norm weights.
pub fn decays(name: &str) -> bool {
    !name.ends_with("norm.weight")
}

/// AdamW's state: the moments of each trainable tensor, in the model's
/// order, and the steps taken.
pub struct AdamW<E: Float, D: Ops<E>> {
    pub cfg: AdamWConfig,
    moments: Vec<Moments<E, D>>,
    /// Optimizer steps taken.
    pub t: u64,
}

/// The first and second moments of one parameter tensor.
struct Moments<E: Float, D: Ops<E>> {
    name: String,
    m: Box<dyn Param<E, D>>,
    v: Box<dyn Param<E, D>>,
}

/// Global L2 norm of all gradients of `model` (`&mut`: the gradient
/// buffers are borrowed, not copied; a parameter without a gradient gets a
/// zero one). Summed in a fixed order: the same on any number of threads.
pub fn grad_norm<E: Float, D: Ops<E>>(
    model: &(impl Params<E, D> + ?Sized),
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

impl<E: Float, D: Ops<E>> AdamW<E, D> {
    /// Zeroed moments for each trainable tensor of `model`.
    pub fn new(cfg: AdamWConfig, model: &(impl Params<E, D> + ?Sized)) -> Self {
        let mut moments = Vec::new();
        model.visit(&mut String::new(), &mut |name, p| {
            moments.push(Moments {
                name: name.to_string(),
                m: p.zeros_like(),
                v: p.zeros_like(),
            })
        });
        AdamW { cfg, moments, t: 0 }
    }

    /// Each trainable tensor's name with its first and second moments.
    pub fn moments(&self) -> impl Iterator<Item = (&str, &dyn Param<E, D>, &dyn Param<E, D>)> {
        self.moments.iter().map(|m| (m.name.as_str(), &*m.m, &*m.v))
    }

    /// [`AdamW::moments`], mutably (loading a checkpoint).
    pub fn moments_mut(
        &mut self,
    ) -> impl Iterator<Item = (&str, &mut dyn Param<E, D>, &mut dyn Param<E, D>)> {
        self.moments
            .iter_mut()
            .map(|m| (m.name.as_str(), &mut *m.m, &mut *m.v))
    }

    /// One update of `model` with `grads` scaled by `grad_scale` (gradient
    /// clipping and accumulation), at learning rate `lr`. Returns how many
    /// parameter tensors were updated; a tensor without a gradient is left
    /// alone, moments included (PyTorch skips `grad is None`). (`&mut`
    /// gradients: on the CPU their buffers are read in place.)
    pub fn step(
        &mut self,
        model: &mut (impl Params<E, D> + ?Sized),
        grads: &mut Gradients<E, D>,
        lr: f64,
        grad_scale: f64,
    ) -> usize {
        self.t += 1;
        let (b1, b2) = self.cfg.betas;
        let base = AdamWStep {
            beta1: b1,
            beta2: b2,
            eps: self.cfg.eps,
            grad_scale,
            bias_correction: (1.0 - b1.powi(self.t as i32), 1.0 - b2.powi(self.t as i32)),
            lr,
            decay: 0.0,
        };
        let decay = lr * self.cfg.weight_decay;
        let mut moments = self.moments.iter_mut();
        let mut updated = 0;
        model.visit_mut(&mut String::new(), &mut |name, p| {
            let m = moments
                .next()
                .filter(|m| m.name == name)
                .unwrap_or_else(|| panic!("AdamW's moments were made for another model ({name})"));
            let step = AdamWStep {
                decay: if self.cfg.decay_norms || decays(name) {
                    decay
                } else {
                    0.0
                },
                ..base
            };
            if p.adamw(&mut *m.m, &mut *m.v, grads, step) {
                updated += 1;
            }
        });
        updated
    }
}
