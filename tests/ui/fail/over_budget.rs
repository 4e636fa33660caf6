use march_models::Baseline;
use march_runtime::march_model;

/// 5% over the baseline's budget: does not compile.
#[march_model(base = Baseline, dim_ff = 2344)]
pub struct WiderFeedForward;

/// The same, budget restated: the error points at it.
#[march_model(base = Baseline, dim_ff = 2344, budget = 36_340_224)]
pub struct WiderFeedForwardRestated;

fn main() {}
