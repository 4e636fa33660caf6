use march_runtime::march_model;

#[march_model(base = Basline, heads = 16)]
pub struct MisspelledBase;

fn main() {}
