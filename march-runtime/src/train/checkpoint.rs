//! Checkpoints in safetensors: the model (`model.<name>`), AdamW's moments
//! (`adam.m.<name>`, `adam.v.<name>`) and, in the metadata, the step, the
//! data position and the seed — everything a resumed run needs to continue
//! exactly (dropout and span corruption are pure functions of the seed and
//! the position, so there is no other RNG state).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use dfdx::nn::tensor_collection::TensorCollection;
use dfdx::prelude::*;
use safetensors::tensor::{Dtype as SafeDtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use super::optim::AdamW;
use crate::data::DataPosition;
use crate::layers::Float;
use crate::params::{for_each_param, set_params};

pub const FILE: &str = "checkpoint.safetensors";

/// The training state besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub variant: String,
    /// Optimizer steps done.
    pub step: u64,
    /// Corpus tokens seen.
    pub tokens: u64,
    pub position: DataPosition,
    pub seed: u64,
    pub adam_t: u64,
}

fn collect<E: Float, D: Device<E>, M: TensorCollection<E, D>>(
    prefix: &str,
    m: &M,
    out: &mut Vec<(String, Vec<u8>, usize)>,
) {
    for_each_param(m, |name, v| {
        let bytes: Vec<u8> = v
            .iter()
            .flat_map(|x| x.to_f32().unwrap().to_le_bytes())
            .collect();
        out.push((format!("{prefix}{name}"), bytes, v.len()));
    });
}

/// Write the checkpoint atomically: the previous one stays valid until the
/// new one is complete.
pub fn save<E: Float, D: Device<E>, M: TensorCollection<E, D>>(
    dir: &Path,
    model: &M,
    opt: &AdamW<M>,
    state: &TrainState,
) -> Result<()> {
    let mut tensors = Vec::new();
    collect("model.", model, &mut tensors);
    collect("adam.m.", &opt.m, &mut tensors);
    collect("adam.v.", &opt.v, &mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, b, len)| Ok((n.clone(), TensorView::new(SafeDtype::F32, vec![*len], b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let mut meta = HashMap::new();
    meta.insert("march.state".to_string(), serde_json::to_string(state)?);
    let tmp = dir.join(format!("{FILE}.tmp"));
    safetensors::serialize_to_file(views, &Some(meta), &tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(FILE))
        .with_context(|| format!("replacing {}", dir.join(FILE).display()))?;
    Ok(())
}

/// Load a checkpoint into `model` and `opt`; returns its state.
pub fn load<E: Float, D: Device<E>, M: TensorCollection<E, D>>(
    path: &Path,
    model: &mut M,
    opt: &mut AdamW<M>,
) -> Result<TrainState> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a valid checkpoint ({e})", path.display()))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let state: TrainState = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("march.state"))
        .ok_or_else(|| {
            anyhow!(
                "{}: no march training state in the metadata",
                path.display()
            )
        })
        .and_then(|s| {
            serde_json::from_str(s)
                .map_err(|e| anyhow!("{}: bad training state: {e}", path.display()))
        })?;
    let mut missing = Vec::new();
    let mut fill = |prefix: &str, m: &mut M| {
        set_params(m, |name, n| {
            let key = format!("{prefix}{name}");
            match file.tensor(&key) {
                Ok(t) if t.dtype() == SafeDtype::F32 && t.data().len() == 4 * n => Some(
                    t.data()
                        .chunks_exact(4)
                        .map(|b| E::from_f32(f32::from_le_bytes(b.try_into().unwrap())).unwrap())
                        .collect(),
                ),
                _ => {
                    missing.push(key);
                    None
                }
            }
        })
    };
    fill("model.", model);
    fill("adam.m.", &mut opt.m);
    fill("adam.v.", &mut opt.v);
    if !missing.is_empty() {
        bail!(
            "{}: does not match this variant ({} tensors missing or of another shape, e.g. {})",
            path.display(),
            missing.len(),
            missing[0]
        );
    }
    opt.t = state.adam_t;
    Ok(state)
}
