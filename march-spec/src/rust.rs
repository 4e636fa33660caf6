//! Writing a value as the Rust expression that re-creates it, so that the
//! macro can emit `const ARCH: Arch = <expression>;` without spelling the
//! architecture's fields itself.
//!
//! [`names!`](crate::names) and [`record!`](crate::record) define an enum or a struct and its
//! [`ToRust`] together, from one list of variants or fields.

/// Where the generated code finds this crate's types.
pub const PATH: &str = "::march_runtime::arch::";

/// A value that can be written as a Rust constant expression.
pub trait ToRust {
    fn to_rust(&self, out: &mut String);
}

impl ToRust for usize {
    fn to_rust(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl ToRust for u64 {
    fn to_rust(&self, out: &mut String) {
        out.push_str(&self.to_string());
    }
}

impl ToRust for bool {
    fn to_rust(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl ToRust for f64 {
    fn to_rust(&self, out: &mut String) {
        // `{:?}` always writes a decimal point or an exponent: a float literal
        out.push_str(&format!("{self:?}f64"));
    }
}

impl ToRust for &'static str {
    fn to_rust(&self, out: &mut String) {
        out.push_str(&format!("{self:?}"));
    }
}

impl<T: ToRust> ToRust for Option<T> {
    fn to_rust(&self, out: &mut String) {
        match self {
            Some(v) => {
                out.push_str("::core::option::Option::Some(");
                v.to_rust(out);
                out.push(')');
            }
            None => out.push_str("::core::option::Option::None"),
        }
    }
}

impl<T: ToRust> ToRust for &'static [T] {
    fn to_rust(&self, out: &mut String) {
        out.push_str("&[");
        for v in self.iter() {
            v.to_rust(out);
            out.push_str(", ");
        }
        out.push(']');
    }
}

/// A field-less enum whose variants are DSL names: the enum, `ALL`, `name()`,
/// `from_name()` and its [`ToRust`].
#[macro_export]
#[doc(hidden)]
macro_rules! names {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),*
        }

        impl $name {
            /// Every value, in the order the DSL lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The value's name in the DSL.
            pub const fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),*
                }
            }

            /// The value a DSL name stands for.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }

        impl $crate::rust::ToRust for $name {
            fn to_rust(&self, out: &mut String) {
                out.push_str($crate::rust::PATH);
                out.push_str(match self {
                    $( $name::$variant => concat!(stringify!($name), "::", stringify!($variant)) ),*
                });
            }
        }
    };
}

/// A struct of public fields and its [`ToRust`].
#[macro_export]
#[doc(hidden)]
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty ),*
        }

        impl $crate::rust::ToRust for $name {
            fn to_rust(&self, out: &mut String) {
                out.push_str($crate::rust::PATH);
                out.push_str(concat!(stringify!($name), " { "));
                $(
                    out.push_str(concat!(stringify!($field), ": "));
                    $crate::rust::ToRust::to_rust(&self.$field, out);
                    out.push_str(", ");
                )*
                out.push('}');
            }
        }
    };
}
