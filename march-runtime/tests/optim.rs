//! AdamW and the schedules against reference computations.

use dfdx::prelude::*;
use march_runtime::layers::Float;
use march_runtime::ops::Ops;
use march_runtime::optim::{decays, grad_norm, AdamW, AdamWConfig};
use march_runtime::params::{alloc_grads, zero_grads, Param, Params};
use march_runtime::train::schedule::Schedule;

/// A two-tensor "model": a weight and a norm weight.
#[derive(Debug, Clone)]
struct Two<E: Dtype, D: Storage<E>> {
    w: Tensor<Rank1<3>, E, D>,
    norm: Tensor<Rank1<2>, E, D>,
    unused: Tensor<Rank1<2>, E, D>,
}

impl<E: Float, D: Ops<E>> Params<E, D> for Two<E, D> {
    fn visit(&self, _: &mut String, f: &mut dyn FnMut(&str, &dyn Param<E, D>)) {
        f("w", &self.w);
        f("ffn_norm.weight", &self.norm);
        f("unused", &self.unused);
    }
    fn visit_mut(&mut self, _: &mut String, f: &mut dyn FnMut(&str, &mut dyn Param<E, D>)) {
        f("w", &mut self.w);
        f("ffn_norm.weight", &mut self.norm);
        f("unused", &mut self.unused);
    }
}

/// PyTorch's AdamW for one scalar parameter.
struct RefAdamW {
    m: f64,
    v: f64,
    t: i32,
}

impl RefAdamW {
    fn step(&mut self, p: f64, g: f64, lr: f64, cfg: &AdamWConfig, decay: bool) -> f64 {
        self.t += 1;
        let (b1, b2) = cfg.betas;
        let p = if decay {
            p * (1.0 - lr * cfg.weight_decay)
        } else {
            p
        };
        self.m = b1 * self.m + (1.0 - b1) * g;
        self.v = b2 * self.v + (1.0 - b2) * g * g;
        let m_hat = self.m / (1.0 - b1.powi(self.t));
        let v_hat = self.v / (1.0 - b2.powi(self.t));
        p - lr * m_hat / (v_hat.sqrt() + cfg.eps)
    }
}

/// Five AdamW steps on [`Two`] in `E` against [`RefAdamW`] in f64, to
/// `tol` (absolute, on parameters of order 1).
fn adamw_matches_the_reference_in<E: march_runtime::layers::Float>(tol: f64, decay_norms: bool)
where
    Cpu: march_runtime::ops::Ops<E>,
{
    let dev: Cpu = Default::default();
    let e = |x: f64| E::from_f64(x).unwrap();
    let f = |t: &Tensor<Rank1<3>, E, Cpu>| {
        t.as_vec()
            .iter()
            .map(|x| x.to_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let f2 = |t: &Tensor<Rank1<2>, E, Cpu>| {
        t.as_vec()
            .iter()
            .map(|x| x.to_f64().unwrap())
            .collect::<Vec<_>>()
    };
    let mut model = Two::<E, Cpu> {
        w: dev.tensor([e(0.5), e(-1.0), e(2.0)]),
        norm: dev.tensor([e(1.0), e(0.9)]),
        unused: dev.tensor([e(3.0), e(4.0)]),
    };
    let cfg = AdamWConfig {
        betas: (0.9, 0.95),
        eps: 1e-8,
        weight_decay: 0.1,
        decay_norms,
    };
    let mut opt = AdamW::new(cfg, &model);
    let mut refs: Vec<RefAdamW> = (0..5)
        .map(|_| RefAdamW {
            m: 0.0,
            v: 0.0,
            t: 0,
        })
        .collect();
    let mut want: Vec<f64> = [f(&model.w), f2(&model.norm)].concat();
    let mut grads = alloc_grads(&model);
    for step in 0..5 {
        zero_grads(&model, &mut grads);
        // loss = sum(w² · k) + sum(norm³): a different gradient each step
        let k = e(1.0 + step as f64);
        let loss = (model.w.clone().traced(grads).square() * k).sum::<Rank0, _>();
        let (loss, tape) = loss.split_tape();
        let l2 = model.norm.clone().put_tape(tape).powi(3).sum::<Rank0, _>();
        grads = (l2 + loss).backward();
        let g: Vec<f64> = [f(&grads.get(&model.w)), f2(&grads.get(&model.norm))].concat();
        let scale = 0.5; // e.g. two accumulated micro-batches
        let lr = 0.01 * (step + 1) as f64;
        let updated = opt.step(&mut model, &mut grads, lr, scale);
        assert_eq!(updated, 2, "the unused tensor is skipped");
        for g in [
            grads.get(&model.w).as_vec(),
            grads.get(&model.norm).as_vec(),
        ] {
            assert!(
                g.iter().all(|&x| x == e(0.0)),
                "consumed by the step: {g:?}"
            );
        }
        for (i, r) in refs.iter_mut().enumerate() {
            // want[3..5], the norm's values, are decayed only with decay_norms
            want[i] = r.step(want[i], g[i] * scale, lr, &cfg, i < 3 || decay_norms);
        }
        let got: Vec<f64> = [f(&model.w), f2(&model.norm)].concat();
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < tol, "step {step}: {got:?} vs {want:?}");
        }
        assert_eq!(
            f2(&model.unused),
            [3.0, 4.0],
            "no gradient: not even decayed"
        );
    }
    assert_eq!(opt.t, 5);
}

#[test]
fn adamw_matches_the_reference_and_skips_what_got_no_gradient() {
    // f64: the composition's arithmetic, to rounding
    adamw_matches_the_reference_in::<f64>(1e-12, false);
    // f32: the vectorised kernel, to float tolerance
    adamw_matches_the_reference_in::<f32>(1e-5, false);
    // every parameter decayed, norms too (the original under DeepSpeed)
    adamw_matches_the_reference_in::<f64>(1e-12, true);
    adamw_matches_the_reference_in::<f32>(1e-5, true);
    assert!(
        decays("encoder.0.ffn.up")
            && decays("embedding")
            && !decays("decoder.1.cross_attn_norm.weight")
    );
}

#[test]
fn grad_norm_is_the_global_l2_norm() {
    let dev: Cpu = Default::default();
    let model = Two::<f64, Cpu> {
        w: dev.tensor([1.0, 2.0, 3.0]),
        norm: dev.tensor([1.0, -1.0]),
        unused: dev.tensor([0.0, 0.0]),
    };
    let grads = alloc_grads(&model);
    let loss = model.w.clone().traced(grads).sum::<Rank0, _>() * 3.0;
    let mut grads = loss.backward();
    // d/dw = 3 for each of 3 entries; the others 0
    assert!((grad_norm(&model, &mut grads) - (27.0f64).sqrt()).abs() < 1e-12);
}

#[test]
fn schedules_follow_their_formulas() {
    let (base, warm, total) = (1e-3, 10, 110);
    for s in [Schedule::Constant, Schedule::Cosine, Schedule::InverseSqrt] {
        assert!(
            (s.lr(base, 5, warm, total) - 5e-4).abs() < 1e-15,
            "{s:?} warmup"
        );
        assert!(
            (s.lr(base, 10, warm, total) - base).abs() < 1e-15,
            "{s:?} end of warmup"
        );
    }
    assert_eq!(Schedule::Constant.lr(base, 100, warm, total), base);
    assert_eq!(Schedule::Constant.lr(base, 1, 0, total), base);
    // cosine: half-way is the mean of max and min (10% of base), the end is the min
    assert!((Schedule::Cosine.lr(base, 60, warm, total) - 0.55e-3).abs() < 1e-12);
    assert!((Schedule::Cosine.lr(base, 110, warm, total) - 1e-4).abs() < 1e-12);
    assert!((Schedule::InverseSqrt.lr(base, 40, warm, total) - base * 0.5).abs() < 1e-15);
}

/// One large tensor: 300,001 elements, several parallel blocks of the
/// gradient norm and a ragged end.
#[derive(Debug, Clone)]
struct Big<E: Dtype, D: Storage<E>> {
    w: Tensor<Rank1<300_001>, E, D>,
}

impl<E: Float, D: Ops<E>> Params<E, D> for Big<E, D> {
    fn visit(&self, _: &mut String, f: &mut dyn FnMut(&str, &dyn Param<E, D>)) {
        f("w", &self.w);
    }
    fn visit_mut(&mut self, _: &mut String, f: &mut dyn FnMut(&str, &mut dyn Param<E, D>)) {
        f("w", &mut self.w);
    }
}

#[test]
fn grad_norm_in_f32_sums_every_block() {
    let dev: Cpu = Default::default();
    let x: Vec<f32> = (0..300_001usize)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 250.0)
        .collect();
    let model = Big::<f32, Cpu> {
        w: dev.tensor_from_vec(x.clone(), (Const,)),
    };
    // ½ Σ w²: the gradient is w itself
    let loss = model.w.leaky_trace().square().sum::<Rank0, _>() * 0.5f32;
    let mut grads = loss.backward();
    let want = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
    let got = grad_norm(&model, &mut grads);
    assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
}
