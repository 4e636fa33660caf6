use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, heads = 16, dim_qkv = 32, heads = 4)]
pub struct Twice;

fn main() {}
