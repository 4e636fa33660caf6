//! The boilerplate of a module — dfdx's `TensorCollection`, march's
//! [`Params`](crate::params::Params) and [`Build`](crate::params::Build), and
//! `InitParams` — generated from its field list, each field with its
//! initialisation.

/// Implements dfdx's `TensorCollection` and march's `Params` and `Build` for
/// a struct of tensors and sub-modules (generic over `E: Float, D: Ops<E>`,
/// its last two parameters), and with `init` first, march's `InitParams`
/// too.
///
/// ```ignore
/// module! {
///     init impl[const M: usize, const F: usize] DenseFfn<M, F> {
///         up: linear(inv_sqrt(M)),
///         down: linear(inv_sqrt(F)),
///     }
/// }
/// ```
///
/// Field kinds: `normal(std)` (a tensor drawn from N(0, std²)), `linear(std)`
/// (a projection matrix `[fan_in, fan_out]`: N(0, std²), or PyTorch's
/// default with `init = torch_default`; see `ParamInit::linear`), `ones` (a
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

        impl<$($gen)*, E: $crate::tensor::Float, D: $crate::ops::Ops<E>>
            $crate::params::Params<E, D> for $name<$($arg,)* E, D>
        $(where $($bound)*)?
        {
            fn visit(
                &self,
                path: &mut String,
                f: &mut dyn FnMut(&str, &dyn $crate::params::Param<E, D>),
            ) {
                $($crate::params::in_field(path, stringify!($field), module!(@is_module $kind), &mut |p| {
                    $crate::params::Params::visit(&self.$field, p, f)
                });)+
            }

            fn visit_mut(
                &mut self,
                path: &mut String,
                f: &mut dyn FnMut(&str, &mut dyn $crate::params::Param<E, D>),
            ) {
                $($crate::params::in_field(path, stringify!($field), module!(@is_module $kind), &mut |p| {
                    $crate::params::Params::visit_mut(&mut self.$field, p, f)
                });)+
            }
        }

        impl<$($gen)*, E: $crate::tensor::Float, D: $crate::ops::Ops<E>>
            $crate::params::Build<E, D> for $name<$($arg,)* E, D>
        $(where $($bound)*)?
        {
            fn build(dev: &D) -> Self {
                $name { $($field: module!(@build dev, $kind)),+ }
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
    (@is_module module) => {
        true
    };
    (@is_module $kind:ident) => {
        false
    };
    (@build $dev:ident, ones) => {
        $crate::params::ones($dev)
    };
    (@build $dev:ident, $kind:ident) => {
        $crate::params::Build::build($dev)
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
    (@init $s:ident, $init:ident, $field:ident: linear($std:expr)) => {
        $init.linear(&mut $s.$field, $std)
    };
}

pub(crate) use module;

/// A module without parameters (a unit struct): dfdx's `ZeroSizedModule`,
/// and march's `InitParams`, `Params` and `Build`, all empty.
macro_rules! no_params {
    ($($name:ident),+) => {$(
        impl ::dfdx::nn::ZeroSizedModule for $name {}

        impl<E: $crate::tensor::Float, D: $crate::ops::Ops<E>> $crate::layers::InitParams<E, D>
            for $name
        {
            fn init_params(&mut self, _: &mut $crate::layers::ParamInit) {}
        }

        impl<E: $crate::tensor::Float, D: $crate::ops::Ops<E>> $crate::params::Params<E, D>
            for $name
        {
            fn visit(&self, _: &mut String, _: &mut dyn FnMut(&str, &dyn $crate::params::Param<E, D>)) {}

            fn visit_mut(
                &mut self,
                _: &mut String,
                _: &mut dyn FnMut(&str, &mut dyn $crate::params::Param<E, D>),
            ) {
            }
        }

        impl<E: $crate::tensor::Float, D: $crate::ops::Ops<E>> $crate::params::Build<E, D>
            for $name
        {
            fn build(_: &D) -> Self {
                $name
            }
        }
    )+};
}

pub(crate) use no_params;
