use march_models::Baseline;
use march_runtime::march_model;

#[march_model(base = Baseline, hedas = 16)]
pub struct Typo;

#[march_model(base = Baseline, colour = 3)]
pub struct Nonsense;

fn main() {}
