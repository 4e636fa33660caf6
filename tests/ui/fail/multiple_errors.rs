use march_models::Baseline;
use march_runtime::march_model;

// every error of one declaration is reported at once
#[march_model(base = Baseline, heads = 0, dim_qkv = "64", droput = 0.1, dropout = 1.5)]
pub struct Everything;

fn main() {}
