//! Span infilling (`march_runtime::sample`) against a scripted model: what
//! the decoder writes is known, so what `infill` returns is too.

mod common;

use std::path::Path;

use march_runtime::arch::Arch;
use march_runtime::checkpoint::TrainState;
use march_runtime::data::MarchTokenizer;
use march_runtime::params::ParamInfo;
use march_runtime::sample::{infill, Decoding};
use march_runtime::session::{HostBatch, Pass, Session};

static ARCH: Arch = Arch {
    vocab: 480,
    max_len: 64,
    ..common::ARCH
};

/// A "model" whose decoder writes `script`, whatever the input.
struct Scripted {
    script: Vec<u32>,
    eos: u32,
}

impl Session for Scripted {
    fn arch(&self) -> &'static Arch {
        &ARCH
    }
    fn decoder_logits(&self, batch: &HostBatch) -> Vec<f32> {
        let v = ARCH.vocab;
        let mut out = vec![0f32; batch.batch * batch.dec_len * v];
        for i in 0..batch.batch {
            for t in 0..batch.dec_len {
                let next = self.script.get(t).copied().unwrap_or(self.eos) as usize;
                out[(i * batch.dec_len + t) * v + next] = 1.0;
            }
        }
        out
    }
    fn num_trainable_params(&self) -> usize {
        unreachable!("infill only reads logits")
    }
    fn eval_loss(&self, _: &HostBatch) -> f64 {
        unreachable!()
    }
    fn zero_grads(&mut self) {
        unreachable!()
    }
    fn accumulate(&mut self, _: &HostBatch, _: Option<u64>) -> Pass {
        unreachable!()
    }
    fn grad_norm(&mut self) -> f64 {
        unreachable!()
    }
    fn update(&mut self, _: f64, _: f64) -> usize {
        unreachable!()
    }
    fn optimizer_steps(&self) -> u64 {
        unreachable!()
    }
    fn grad_magnitudes(&mut self) -> Vec<(ParamInfo, f64)> {
        unreachable!()
    }
    fn gradients(&mut self) -> Vec<(String, Vec<f32>)> {
        unreachable!()
    }
    fn save(&self, _: &Path, _: &TrainState) -> anyhow::Result<()> {
        unreachable!()
    }
    fn load(&mut self, _: &Path) -> anyhow::Result<TrainState> {
        unreachable!()
    }
    fn load_weights(&mut self, _: &Path) -> anyhow::Result<TrainState> {
        unreachable!()
    }
    fn fill_param(&mut self, _: &str, _: f32) -> bool {
        unreachable!()
    }
    fn non_finite_param(&self) -> Option<String> {
        unreachable!()
    }
}

fn tokenizer() -> MarchTokenizer {
    let docs: Vec<String> = (0..200)
        .map(|i| format!("the quick brown fox jumps over the lazy dog number {i}."))
        .collect();
    MarchTokenizer::train(&docs, ARCH.vocab).unwrap()
}

fn ids(tok: &MarchTokenizer, text: &str) -> Vec<u32> {
    tok.encode_all(&[text.to_string()]).unwrap().remove(0)
}

#[test]
fn the_spans_the_decoder_writes_are_put_back_in_place() {
    let tok = tokenizer();
    let (s0, s1, eos) = (
        tok.special.sentinels[0],
        tok.special.sentinels[1],
        tok.special.eos,
    );
    let mut script = vec![s0];
    script.extend(ids(&tok, "fox"));
    script.push(s1);
    script.extend(ids(&tok, "lazy"));
    script.push(eos);
    let model = Scripted { script, eos };
    let texts = vec![
        "the quick brown <extra_id_0> jumps over the <extra_id_1> dog.".to_string(),
        "a <extra_id_0> b".to_string(),
    ];
    let out = infill(&model, &tok, &texts, &Decoding::default()).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].spans,
        [(0, "fox".to_string()), (1, "lazy".to_string())]
    );
    assert_eq!(
        out[0].filled,
        "the quick brown [fox] jumps over the [lazy] dog."
    );
    // the second input has one sentinel: the other span has no place
    assert_eq!(out[1].filled, "a [fox] b");
    assert_eq!(*out[0].generated.last().unwrap(), eos);
}

#[test]
fn decoding_stops_at_max_tokens_and_top_1_sampling_is_greedy() {
    let tok = tokenizer();
    let s0 = tok.special.sentinels[0];
    // never writes `</s>`
    let mut script = vec![s0];
    script.extend(std::iter::repeat_n(ids(&tok, "fox")[0], 100));
    let model = Scripted {
        script,
        eos: tok.special.eos,
    };
    let texts = vec!["the <extra_id_0> jumps".to_string()];
    let greedy = Decoding {
        max_tokens: 5,
        ..Decoding::default()
    };
    let g = infill(&model, &tok, &texts, &greedy).unwrap();
    assert_eq!(g[0].generated.len(), 5);
    let sampled = Decoding {
        temperature: 0.7,
        top_k: 1,
        seed: 3,
        ..greedy
    };
    assert_eq!(infill(&model, &tok, &texts, &sampled).unwrap(), g);
}
