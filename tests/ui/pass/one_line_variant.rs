use march_models::Baseline;
use march_runtime::{march_model, Variant};

/// Twice the heads at half the head dimension: one line.
#[march_model(base = Baseline, heads *= 2, dim_qkv /= 2)]
pub struct MyVariant;

/// A variant of a variant of this crate.
#[march_model(base = MyVariant, ffn = glu(silu), dim_ff = 1365)]
pub struct MyGluVariant;

fn main() {
    assert_eq!(MyVariant::PARAMS.total, 36_340_224);
    assert_eq!(<MyVariant as Variant>::ARCH.encoder_heads, [16, 16, 16]);
    assert_eq!(<MyVariant as Variant>::ARCH.base, Some("Baseline"));
    assert_eq!(MyGluVariant::PARAMS.total, 36_337_152);
    assert_eq!(<MyGluVariant as Variant>::ARCH.base, Some("MyVariant"));
}
