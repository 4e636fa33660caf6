use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, position = rope(theta = 0), norm_gain = matrix)]
pub struct BadRope;

#[march_model(base = Baseline, position = t5_relative(buckets = 32))]
pub struct BadOption;

#[march_model(base = Baseline, position = sinusoidal)]
pub struct UnknownPosition;

#[march_model(base = Baseline, position = t5_relative(num_buckets = 6, max_distance = 3))]
pub struct TooFewBuckets;

fn main() {}
