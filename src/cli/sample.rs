//! `march sample`: infill `<extra_id_N>` spans with a trained run's model.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use march_runtime::checkpoint;
use march_runtime::data::MarchTokenizer;
use march_runtime::registry::find_or_suggest;
use march_runtime::sample::{infill, Decoding};
use march_runtime::session::{DeviceKind, SessionOptions};

#[derive(clap::Args)]
pub struct SampleArgs {
    /// A run directory (`march train --out`).
    run: PathBuf,
    /// Texts with spans to fill, written `<extra_id_0>`, `<extra_id_1>`, …
    /// (e.g. "The <extra_id_0> of France is Paris.").
    texts: Vec<String>,
    /// Read texts from standard input, one per line, and infill each.
    #[arg(long)]
    interactive: bool,
    /// 0: greedy; otherwise sample from softmax(logits / temperature).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// With --temperature: sample among the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Tokens the decoder may write per text.
    #[arg(long, default_value_t = 32)]
    max_tokens: usize,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to run the model: cpu or cuda.
    #[arg(long, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: &SampleArgs) -> Result<()> {
    if args.texts.is_empty() && !args.interactive {
        bail!(
            "give texts with <extra_id_0> spans to fill, or --interactive to read them from stdin"
        );
    }
    if !(args.temperature >= 0.0 && args.temperature.is_finite()) || args.max_tokens == 0 {
        bail!("--temperature must be a number ≥ 0 and --max-tokens at least 1");
    }
    let variant = super::train::variant_of_run(&args.run)?;
    let entry = find_or_suggest(&variant)?;
    let ckpt = args.run.join(checkpoint::FILE);
    if !ckpt.exists() {
        bail!(
            "{}: no checkpoint yet (the run saves one every --checkpoint-every steps)",
            args.run.display()
        );
    }
    let tok = MarchTokenizer::load(&args.run.join("tokenizer.json"))?;
    let mut session = entry.session(&SessionOptions::probe(args.device, 0))?;
    let state = session
        .load_weights(&ckpt)
        .with_context(|| format!("loading {}", ckpt.display()))?;
    eprintln!(
        "{} after {} steps ({} tokens), {}",
        variant,
        state.step,
        march_runtime::arch::thousands(state.tokens),
        if args.temperature > 0.0 {
            format!(
                "temperature {}, top-k {}, seed {}",
                args.temperature, args.top_k, args.seed
            )
        } else {
            "greedy".into()
        }
    );
    let dec = Decoding {
        temperature: args.temperature,
        top_k: args.top_k,
        max_tokens: args.max_tokens,
        seed: args.seed,
    };
    let show = |texts: &[String]| -> Result<()> {
        for r in infill(session.as_ref(), &tok, texts, &dec)? {
            println!("{}", r.filled);
            for (k, span) in &r.spans {
                println!("  <extra_id_{k}> {span}");
            }
        }
        Ok(())
    };
    if !args.texts.is_empty() {
        show(&args.texts)?;
    }
    if args.interactive {
        for line in std::io::stdin().lock().lines() {
            let line = line.context("reading standard input")?;
            if !line.trim().is_empty() {
                show(&[line])?;
            }
        }
    }
    Ok(())
}
