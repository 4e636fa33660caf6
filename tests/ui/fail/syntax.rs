use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, heads 16, dim_qkv = 32)]
pub struct MissingEquals;

#[march_model(base = Baseline, heads = 16 32)]
pub struct TwoValues;

fn main() {}
