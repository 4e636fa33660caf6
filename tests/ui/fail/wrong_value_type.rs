use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, heads = "16", self_attn_residual = 1, ffn = relu, tolerance = 2)]
pub struct WrongTypes;

fn main() {}
