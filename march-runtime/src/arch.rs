//! The resolved description of a variant's architecture: `march-spec`'s
//! vocabulary, re-exported (see that crate for the keys, counts and checks).

pub use march_spec::*;
