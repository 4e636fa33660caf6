//! Named access to a model's parameters (and their gradients): the visitors
//! behind the liveness test, fixtures and checkpoints.

use dfdx::nn::tensor_collection::{
    RecursiveWalker, TensorCollection, TensorOptions, TensorVisitor, ViewTensorMut, ViewTensorName,
    ViewTensorRef,
};
use dfdx::prelude::*;

use crate::layers::Float;
use crate::ops::Ops;

/// One parameter tensor: its path (`decoder.0.self_attn.w_q`) and element count.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    pub name: String,
    pub numel: usize,
}

/// Run `visitor` over `model`'s tensors (read-only views and their names).
fn walk<E: Dtype, D: Device<E>, M: TensorCollection<E, D>, V>(
    model: &M,
    visitor: &mut V,
    what: &str,
) where
    V: TensorVisitor<E, D, Viewer = (ViewTensorRef, ViewTensorName), E2 = E, D2 = D, Err = D::Err>,
{
    let walker = &mut RecursiveWalker {
        m: (model, String::new()),
        f: visitor,
    };
    if <M as TensorCollection<E, D>>::iter_tensors(walker).is_err() {
        panic!("{what} failed");
    }
}

/// Calls `f(name, values)` for every trainable tensor, in the module's order.
pub fn for_each_param<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &M,
    mut f: impl FnMut(&str, Vec<E>),
) {
    // the callback as a trait object: one walk per model type, not one per
    // closure (the walks are most of a variant's compile time)
    struct V<'a, E>(&'a mut dyn FnMut(&str, Vec<E>));
    impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for V<'_, E> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = D::Err;
        type E2 = E;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, E, D>,
            (t, name): (&Tensor<S, E, D>, String),
        ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
            if opts.do_gradient_update {
                (self.0)(&name, t.as_vec());
            }
            Ok(None)
        }
    }
    walk(model, &mut V(&mut f), "reading parameters");
}

/// Sets every trainable tensor to `f(name, numel)` where it returns values;
/// panics if a returned vector has the wrong length.
pub fn set_params<E: Dtype, D: Device<E>, M: TensorCollection<E, D>>(
    model: &mut M,
    mut f: impl FnMut(&str, usize) -> Option<Vec<E>>,
) {
    struct V<'a, E>(&'a mut dyn FnMut(&str, usize) -> Option<Vec<E>>);
    impl<E: Dtype, D: Device<E>> TensorVisitor<E, D> for V<'_, E> {
        type Viewer = (ViewTensorMut, ViewTensorName);
        type Err = D::Err;
        type E2 = E;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, E, D>,
            (t, name): (&mut Tensor<S, E, D>, String),
        ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
            let n = t.shape().num_elements();
            if opts.do_gradient_update {
                if let Some(values) = (self.0)(&name, n) {
                    assert_eq!(
                        values.len(),
                        n,
                        "{name}: {} values for {n} elements",
                        values.len()
                    );
                    t.copy_from(&values);
                }
            }
            Ok(None)
        }
    }
    let mut v = V(&mut f);
    let walker = &mut RecursiveWalker {
        m: (model, String::new()),
        f: &mut v,
    };
    let _ = <M as TensorCollection<E, D>>::iter_tensors(walker)
        .map_err(|_| ())
        .expect("writing parameters");
}

/// Every trainable tensor with the sum of absolute values of its gradient.
pub fn grad_magnitudes<E: Float, D: Ops<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
) -> Vec<(ParamInfo, f64)> {
    let mut out = Vec::new();
    for_each_grad_slice(model, grads, |name, g| {
        let mag = g.iter().map(|x| x.abs().to_f64().unwrap_or(f64::NAN)).sum();
        let info = ParamInfo {
            name: name.to_string(),
            numel: g.len(),
        };
        out.push((info, mag));
    });
    out
}

/// Calls `f(name, gradient)` for every trainable tensor, in the module's
/// order, without copying: the gradient buffers are borrowed on the CPU
/// ([`Ops::with_grad`]); other devices copy each to the host. A parameter
/// without a gradient gets a zero one.
pub fn for_each_grad_slice<E: Float, D: Ops<E>, M: TensorCollection<E, D>>(
    model: &M,
    grads: &mut Gradients<E, D>,
    mut f: impl FnMut(&str, &[E]),
) {
    struct V<'a, E: Float, D: Ops<E>>(&'a mut Gradients<E, D>, &'a mut dyn FnMut(&str, &[E]));
    impl<E: Float, D: Ops<E>> TensorVisitor<E, D> for V<'_, E, D> {
        type Viewer = (ViewTensorRef, ViewTensorName);
        type Err = D::Err;
        type E2 = E;
        type D2 = D;
        fn visit<S: Shape>(
            &mut self,
            opts: TensorOptions<S, E, D>,
            (t, name): (&Tensor<S, E, D>, String),
        ) -> Result<Option<Tensor<S, E, D>>, Self::Err> {
            if !opts.do_gradient_update {
                return Ok(None);
            }
            D::with_grad(self.0, t, &mut |g| (self.1)(&name, g))?;
            Ok(None)
        }
    }
    walk(model, &mut V(grads, &mut f), "reading gradients");
}
