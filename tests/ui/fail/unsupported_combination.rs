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

// the shared decoder norm is the previous layer's feed-forward norm
#[march_model(base = Baseline, decoder_norms = shared, ffn = none, budget_exempt = "attention only")]
pub struct SharedNormsWithoutFeedForward;

fn main() {}
