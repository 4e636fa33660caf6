use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, position = rope, dim_qkv = 63)]
pub struct OddRope;

#[march_model(base = Baseline, position = t5_relative, heads = [8, 4, 2])]
pub struct PerLayerRelative;

fn main() {}
