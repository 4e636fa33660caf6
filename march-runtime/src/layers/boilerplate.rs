//! The dfdx boilerplate of a module — `TensorCollection` and `InitParams` —
//! generated from its field list, each field with its initialisation.

/// Implements dfdx's `TensorCollection` for a struct of tensors and
/// sub-modules (generic over `E: Float, D: Ops<E>`, its last two
/// parameters), and with `init` first, march's `InitParams` too.
///
/// ```ignore
/// module! {
///     init impl[const M: usize, const F: usize] DenseFfn<M, F> {
///         up: normal(inv_sqrt(M)),
///         down: normal(inv_sqrt(F)),
///     }
/// }
/// ```
///
/// Field kinds: `normal(std)` (a tensor drawn from N(0, std²)), `ones` (a
/// tensor of ones), `tensor` (a tensor initialised by the module's owner;
/// not with `init`), `module` (a sub-module, with its own `InitParams`).
/// `where [...]` bounds the impls; `to <...>` gives the parameters of the
/// module's `To<E2, D2>` type (default: the struct's own), e.g. `F::To<E2,
/// D2>` for a sub-module parameter `F`. Field names are the tensor names of
/// checkpoints.
macro_rules! module {
    (
        init impl[$($gen:tt)*] $name:ident<$($arg:ident),*>
        $(where [$($bound:tt)*])?
        { $($fields:tt)+ }
    ) => {
        module! {
            init impl[$($gen)*] $name<$($arg),*> $(where [$($bound)*])? to <$($arg),*>
            { $($fields)+ }
        }
    };
    (
        impl[$($gen:tt)*] $name:ident<$($arg:ident),*>
        $(where [$($bound:tt)*])?
        { $($fields:tt)+ }
    ) => {
        module! {
            impl[$($gen)*] $name<$($arg),*> $(where [$($bound)*])? to <$($arg),*>
            { $($fields)+ }
        }
    };
    (
        impl[$($gen:tt)*] $name:ident<$($arg:ident),*>
        $(where [$($bound:tt)*])?
        to <$($to:ty),*>
        {
            $($field:ident: $kind:ident $(($std:expr))?),+ $(,)?
        }
    ) => {
        impl<$($gen)*, E: $crate::tensor::Float, D: $crate::ops::Ops<E>>
            ::dfdx::nn::tensor_collection::TensorCollection<E, D> for $name<$($arg,)* E, D>
        $(where $($bound)*)?
        {
            type To<E2: ::dfdx::prelude::Dtype, D2: ::dfdx::prelude::Device<E2>> =
                $name<$($to,)* E2, D2>;

            fn iter_tensors<Visitor: ::dfdx::nn::tensor_collection::ModuleVisitor<Self, E, D>>(
                visitor: &mut Visitor,
            ) -> Result<Option<Self::To<Visitor::E2, Visitor::D2>>, Visitor::Err> {
                // nested pairs: dfdx's field tuples stop at six
                visitor.visit_fields(
                    module!(@fields $($field: $kind),+),
                    |module!(@pattern $($field),+)| $name { $($field),+ },
                )
            }
        }
    };
    (
        init impl[$($gen:tt)*] $name:ident<$($arg:ident),*>
        $(where [$($bound:tt)*])?
        to <$($to:ty),*>
        {
            $($field:ident: $kind:ident $(($std:expr))?),+ $(,)?
        }
    ) => {
        module! {
            impl[$($gen)*] $name<$($arg),*> $(where [$($bound)*])? to <$($to),*>
            { $($field: $kind $(($std))?),+ }
        }

        impl<$($gen)*, E: $crate::tensor::Float, D: $crate::ops::Ops<E>>
            $crate::layers::InitParams<E, D> for $name<$($arg,)* E, D>
        $(where $($bound)*)?
        {
            fn init_params(&mut self, init: &mut $crate::layers::ParamInit) {
                $(module!(@init self, init, $field: $kind $(($std))?);)+
            }
        }
    };
    (@fields $field:ident: $kind:ident) => {
        module!(@visit $field: $kind)
    };
    (@fields $field:ident: $kind:ident, $($rest:ident: $rkind:ident),+) => {
        (module!(@visit $field: $kind), module!(@fields $($rest: $rkind),+))
    };
    (@pattern $field:ident) => {
        $field
    };
    (@pattern $field:ident, $($rest:ident),+) => {
        ($field, module!(@pattern $($rest),+))
    };
    (@visit $field:ident: module) => {
        Self::module(stringify!($field), |s| &s.$field, |s| &mut s.$field)
    };
    (@visit $field:ident: ones) => {
        Self::tensor(
            stringify!($field),
            |s| &s.$field,
            |s| &mut s.$field,
            module!(@trained ::dfdx::nn::tensor_collection::TensorOptions::reset_to_ones()),
        )
    };
    (@visit $field:ident: $kind:ident) => {
        Self::tensor(
            stringify!($field),
            |s| &s.$field,
            |s| &mut s.$field,
            module!(@trained ::dfdx::nn::tensor_collection::TensorOptions::reset_to_zeros()),
        )
    };
    // a tensor of no elements (the position table of `position = none`) is
    // not a parameter: no gradient, no optimizer state, not in checkpoints
    (@trained $options:expr) => {{
        let mut options = $options;
        options.do_gradient_update = ::dfdx::shapes::Shape::num_elements(&options.shape) > 0;
        options
    }};
    (@init $s:ident, $init:ident, $field:ident: module) => {
        $crate::layers::InitParams::init_params(&mut $s.$field, $init)
    };
    (@init $s:ident, $init:ident, $field:ident: ones) => {
        $init.ones(&mut $s.$field)
    };
    (@init $s:ident, $init:ident, $field:ident: normal($std:expr)) => {
        $init.normal(&mut $s.$field, $std)
    };
}

pub(crate) use module;
