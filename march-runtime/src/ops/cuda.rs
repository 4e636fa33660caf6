//! CUDA runs dfdx's compositions (the trait's defaults): march's kernels are
//! CPU code.

use dfdx::prelude::*;

use super::Ops;
use crate::tensor::Float;

impl<E: Float> Ops<E> for Cuda where Cuda: Device<E> {}
