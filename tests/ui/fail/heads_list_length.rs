use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, heads = [12, 8])]
pub struct TwoOfThree;

fn main() {}
