use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, attention_scale = sqrt, cross_attention = own_keys)]
pub struct Scaled;

fn main() {}
