use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, heads = [12, 8])]
pub struct TwoOfThree;

#[march_model(base = Baseline, dim_ff = [4096, 2048, 1024], layers = 4)]
pub struct ListFfnLayers;

fn main() {}
