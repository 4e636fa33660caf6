use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, dim_qkv = 0)]
pub struct ZeroHeadDim;

#[march_model(base = Baseline, layers -= 3)]
pub struct NoLayers;

#[march_model(base = Baseline, heads /= 16)]
pub struct NoHeads;

fn main() {}
