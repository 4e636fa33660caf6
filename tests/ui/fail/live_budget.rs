use march_models::Baseline;
use march_runtime::march_model;

// On live parameters the baseline itself is 7.22% under its budget.
#[march_model(base = Baseline, budget_on = live)]
pub struct LiveBaseline;

fn main() {}
