use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline)]
pub struct WithFields {
    heads: usize,
}

#[march_model(base = Baseline)]
pub fn not_a_struct() {}

fn main() {}
