use march_runtime::march_model;

#[march_model(dim_model = 256, layers = 2)]
pub struct FromScratch;

fn main() {}
