//! Checkpoints in safetensors: the model (`model.<name>`), AdamW's moments
//! (`adam.m.<name>`, `adam.v.<name>`) and, in the metadata, the step, the
//! data position and the seed — everything a resumed run needs to continue
//! exactly (dropout and span corruption are pure functions of the seed and
//! the position, so there is no other RNG state).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use safetensors::tensor::{Dtype as SafeDtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};

use crate::data::DataPosition;
use crate::layers::{mix64, Float};
use crate::ops::Ops;
use crate::optim::AdamW;
use crate::params::{Param, Params};

pub const FILE: &str = "checkpoint.safetensors";

/// The checkpoint's metadata: the state, and a checksum of the tensors
/// (absent in checkpoints of older versions, which load unchecked).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateMeta {
    #[serde(flatten)]
    state: TrainState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tensors_checksum: Option<String>,
}

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

/// A tensor as the checkpoint stores it: `f32` little-endian bytes.
fn push<E: Float, D: Ops<E>>(
    out: &mut Vec<(String, Vec<u8>, usize)>,
    name: String,
    p: &dyn Param<E, D>,
) {
    let v = p.values();
    let bytes: Vec<u8> = v
        .iter()
        .flat_map(|x| x.to_f32().unwrap().to_le_bytes())
        .collect();
    out.push((name, bytes, v.len()));
}

/// A 64-bit checksum of named tensors' bytes, independent of their order
/// in the file: each name and each 8-byte word mixed in turn (SplitMix64's
/// finaliser), the tensors taken by name.
pub fn checksum<'a>(tensors: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> u64 {
    let mut all: Vec<(&str, &[u8])> = tensors.into_iter().collect();
    all.sort_by_key(|(n, _)| *n);
    let mut h: u64 = 0x6d61_7263_6821_0001;
    for (name, bytes) in all {
        h = mix64(h ^ crate::data::fnv1a(&[name.as_bytes()]));
        let words = bytes.chunks_exact(8);
        let tail = words.remainder();
        for w in words {
            h = mix64(h ^ u64::from_le_bytes(w.try_into().unwrap()));
        }
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        h = mix64(h ^ u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 3));
    }
    h
}

/// Write the checkpoint atomically: the previous one stays valid until the
/// new one is complete. Its metadata holds a [`checksum`] of the tensors,
/// checked on load.
pub fn save<E: Float, D: Ops<E>>(
    dir: &Path,
    model: &dyn Params<E, D>,
    opt: &AdamW<E, D>,
    state: &TrainState,
) -> Result<()> {
    let mut tensors = Vec::new();
    model.visit(&mut String::new(), &mut |name, p| {
        push(&mut tensors, format!("model.{name}"), p)
    });
    for (name, m, _) in opt.moments() {
        push(&mut tensors, format!("adam.m.{name}"), m);
    }
    for (name, _, v) in opt.moments() {
        push(&mut tensors, format!("adam.v.{name}"), v);
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, b, len)| Ok((n.clone(), TensorView::new(SafeDtype::F32, vec![*len], b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    let sum = checksum(tensors.iter().map(|(n, b, _)| (n.as_str(), b.as_slice())));
    // one metadata entry: safetensors writes its entries in a HashMap's
    // order, and the same run must give the same bytes
    let meta = HashMap::from([(
        "march.state".to_string(),
        serde_json::to_string(&StateMeta {
            state: state.clone(),
            tensors_checksum: Some(format!("{sum:016x}")),
        })?,
    )]);
    // written beside the last one, synced, then renamed over it: a kill or
    // a full disk leaves the last checkpoint whole (and no temporary)
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let written = safetensors::serialize_to_file(views, &Some(meta), &tmp)
        .map_err(|e| match e {
            // safetensors shows its I/O errors in Debug form
            safetensors::SafeTensorError::IoError(e) => crate::files::io_error(e),
            e => anyhow!("{e}"),
        })
        .and_then(|()| {
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(crate::files::io_error)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("writing the checkpoint {}", path.display())));
    }
    std::fs::rename(&tmp, &path)
        .map_err(crate::files::io_error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// Load a checkpoint into `model` and `opt`; returns its state.
pub fn load<E: Float, D: Ops<E>>(
    path: &Path,
    model: &mut dyn Params<E, D>,
    opt: &mut AdamW<E, D>,
) -> Result<TrainState> {
    load_into(path, model, Some(opt))
}

/// Load only the model's weights of a checkpoint (inference); returns its
/// state.
pub fn load_model<E: Float, D: Ops<E>>(
    path: &Path,
    model: &mut dyn Params<E, D>,
) -> Result<TrainState> {
    load_into(path, model, None)
}

fn load_into<E: Float, D: Ops<E>>(
    path: &Path,
    model: &mut dyn Params<E, D>,
    opt: Option<&mut AdamW<E, D>>,
) -> Result<TrainState> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{}: not a valid checkpoint ({e})", path.display()))?;
    let (_, meta) =
        SafeTensors::read_metadata(&bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let StateMeta {
        state,
        tensors_checksum,
    }: StateMeta = meta
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
    if let Some(want) = &tensors_checksum {
        let got = checksum(
            file.tensors()
                .iter()
                .map(|(n, t)| (n.as_str(), t.data()))
                .collect::<Vec<_>>(),
        );
        if format!("{got:016x}") != *want {
            bail!(
                "{}: the checkpoint is corrupt (its tensors' checksum is {got:016x}, the file says {want}); resume from a copy, or start the run again",
                path.display()
            );
        }
    }

    let mut missing = Vec::new();
    let mut fill = |key: String, p: &mut dyn Param<E, D>| match file.tensor(&key) {
        Ok(t) if t.dtype() == SafeDtype::F32 && t.data().len() == 4 * p.numel() => {
            let values: Vec<E> = t
                .data()
                .chunks_exact(4)
                .map(|b| E::from_f32(f32::from_le_bytes(b.try_into().unwrap())).unwrap())
                .collect();
            p.set_values(&values);
        }
        _ => missing.push(key),
    };
    model.visit_mut(&mut String::new(), &mut |name, p| {
        fill(format!("model.{name}"), p)
    });
    let mut opt = opt;
    if let Some(opt) = opt.as_deref_mut() {
        let mut vs = Vec::new();
        for (name, m, v) in opt.moments_mut() {
            fill(format!("adam.m.{name}"), m);
            vs.push((format!("adam.v.{name}"), v));
        }
        for (key, v) in vs {
            fill(key, v);
        }
    }
    if !missing.is_empty() {
        bail!(
            "{}: does not match this variant ({} tensors missing or of another shape, e.g. {})",
            path.display(),
            missing.len(),
            missing[0]
        );
    }
    if let Some(opt) = opt {
        opt.t = state.adam_t;
    }
    Ok(state)
}
