use march_models::Baseline;
use march_runtime::march_model;

// decoder layer i reads encoder layer i's keys and values
#[march_model(base = Baseline, encoder_layers = 4)]
pub struct UnpairedLayers;

#[march_model(base = Baseline, ffn = dense(relu, branch_dropout = 0.5))]
pub struct BranchDropoutWithoutBranches;

#[march_model(base = Baseline, ffn = dense(sigmoid))]
pub struct SigmoidDense;

#[march_model(base = Baseline, position_combine *= 2)]
pub struct ScaledChoice;

fn main() {}
