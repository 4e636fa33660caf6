//! The resolved description of a variant's architecture.
//!
//! `#[march_model]` resolves a declaration (its base plus its overrides) into one
//! [`Arch`] constant per variant. Shapes go into the model's type; everything that
//! does not change a shape (activations, residual flags, dropout, position
//! combine, ...) is read from the `Arch` at run time by the building blocks.

use std::fmt;

/// An element-wise activation function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// The exact (erf) GELU, as PyTorch's `nn.GELU()`.
    Gelu,
    /// `x * sigmoid(x)`.
    Silu,
    Sigmoid,
}

impl Activation {
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

/// How two branches are combined: `(a + b) / 2` or `a + b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    Mean,
    Sum,
}

impl Combine {
    pub const fn name(self) -> &'static str {
        match self {
            Combine::Mean => "mean",
            Combine::Sum => "sum",
        }
    }
}

/// The position-wise feed-forward sub-layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeedForward {
    /// `down(dropout(act(up(x))))`.
    Dense { activation: Activation },
    /// Gated linear unit: `down(dropout(act(gate(x)) * up(x)))`.
    Glu { gate: Activation },
    /// `down(dropout(combine(dropout_b(sigmoid(up_slow(x))), relu(up_fast(x)))))`,
    /// where `dropout_b` has probability `branch_dropout` (0 = none).
    MixedAct {
        combine: Combine,
        branch_dropout: f64,
    },
}

impl FeedForward {
    /// Number of `[dim_model, dim_ff]`-sized matrices of this kind.
    pub const fn matrices(&self) -> usize {
        match self {
            FeedForward::Dense { .. } => 2,
            FeedForward::Glu { .. } | FeedForward::MixedAct { .. } => 3,
        }
    }
}

impl fmt::Display for FeedForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedForward::Dense { activation } => write!(f, "dense({})", activation.name()),
            FeedForward::Glu { gate } => write!(f, "glu({})", gate.name()),
            FeedForward::MixedAct {
                combine,
                branch_dropout,
            } => {
                if *branch_dropout > 0.0 {
                    write!(
                        f,
                        "mixed({}, branch_dropout = {branch_dropout})",
                        combine.name()
                    )
                } else {
                    write!(f, "mixed({})", combine.name())
                }
            }
        }
    }
}

/// Initialisation of the learned position table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PositionInit {
    /// N(0, dim_model^-0.5), the original baseline.
    Scaled,
    /// N(0, 1).
    Unit,
}

impl PositionInit {
    pub const fn name(self) -> &'static str {
        match self {
            PositionInit::Scaled => "scaled",
            PositionInit::Unit => "unit",
        }
    }
}

/// The learned absolute position encoding, shared by encoder and decoder inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub combine: Combine,
    pub init: PositionInit,
}

/// Where the decoder's cross-attention gets its keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossAttention {
    /// Decoder layer i reuses the (key, value) tensors of encoder layer i's
    /// self-attention; cross-attention has only `w_q` and `w_o` (the original march).
    ReuseEncoderKv,
    /// Cross-attention projects the final encoder output with its own
    /// `w_k`, `w_v` (T5).
    OwnKv,
}

impl CrossAttention {
    pub const fn name(self) -> &'static str {
        match self {
            CrossAttention::ReuseEncoderKv => "reuse_encoder_kv",
            CrossAttention::OwnKv => "own_kv",
        }
    }
}

/// How attention probabilities are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionKind {
    /// `softmax(q kᵀ + mask)` (T5: no 1/√d scaling).
    Softmax,
    /// Encoder self-attention and cross-attention are uniform over the
    /// (unpadded) keys: what the original march actually trained, because its
    /// mask added -1e9 to every real token. Decoder self-attention stays softmax.
    UniformEncoder,
}

impl AttentionKind {
    pub const fn name(self) -> &'static str {
        match self {
            AttentionKind::Softmax => "softmax",
            AttentionKind::UniformEncoder => "uniform_encoder",
        }
    }
}

/// Which sub-layers add their input back (`x + dropout(f(norm(x)))`) and which
/// replace it (`dropout(f(norm(x)))`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Residuals {
    pub self_attn: bool,
    pub cross_attn: bool,
    pub ffn: bool,
}

/// Which parameters a budget counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetOn {
    /// Every trainable parameter, whether or not it gets a gradient (the original's way).
    Total,
    /// Only parameters that influence the loss.
    Live,
}

impl BudgetOn {
    pub const fn name(self) -> &'static str {
        match self {
            BudgetOn::Total => "total",
            BudgetOn::Live => "live",
        }
    }
}

/// The parameter budget a variant was checked against at compile time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub params: u64,
    pub on: BudgetOn,
    /// Allowed deviation, in percent of `params`.
    pub tolerance_pct: f64,
    /// The declared reason for running a variant outside its budget.
    pub exempt: Option<&'static str>,
}

/// Trainable parameters: all of them, and those that receive a gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCount {
    pub total: u64,
    pub live: u64,
}

impl ParamCount {
    pub const fn dead(&self) -> u64 {
        self.total - self.live
    }
}

/// `34764800` → `34,764,800`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The reference workload of [`Arch::flops_per_token`]: the throughput workload
/// of the issue tracker (span corruption of 256-token chunks).
pub const REF_CHUNK_TOKENS: usize = 256;
/// Encoder length of the reference workload.
pub const REF_ENCODER_LEN: usize = 230;
/// Decoder length of the reference workload.
pub const REF_DECODER_LEN: usize = 52;

/// A variant's complete, resolved architecture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arch {
    /// The variant's name (its struct's name).
    pub name: &'static str,
    /// The variant it was derived from, if any.
    pub base: Option<&'static str>,
    /// The struct's doc comment.
    pub doc: &'static str,
    /// The declaration's own keys, as written (what differs from the base).
    pub declared: &'static str,
    pub dim_model: usize,
    pub vocab: usize,
    pub max_len: usize,
    /// Heads of each encoder layer.
    pub encoder_heads: &'static [usize],
    /// Heads of each decoder layer.
    pub decoder_heads: &'static [usize],
    pub dim_qkv: usize,
    pub dim_ff: usize,
    pub ffn: FeedForward,
    pub position: Position,
    pub residual: Residuals,
    pub cross_attention: CrossAttention,
    pub attention: AttentionKind,
    /// Dropout probability everywhere (input, attention probabilities, sub-layer outputs, FFN hidden).
    pub dropout: f64,
    pub params: ParamCount,
    pub budget: Budget,
}

impl Arch {
    pub const fn encoder_layers(&self) -> usize {
        self.encoder_heads.len()
    }

    pub const fn decoder_layers(&self) -> usize {
        self.decoder_heads.len()
    }

    /// The parameters the budget is stated on.
    pub const fn budgeted_params(&self) -> u64 {
        match self.budget.on {
            BudgetOn::Total => self.params.total,
            BudgetOn::Live => self.params.live,
        }
    }

    /// Signed deviation from the budget, in percent.
    pub fn budget_deviation_pct(&self) -> f64 {
        (self.budgeted_params() as f64 - self.budget.params as f64) / self.budget.params as f64
            * 100.0
    }

    /// Forward + backward FLOPs of one example with `enc_len` encoder and
    /// `dec_len` decoder tokens.
    ///
    /// Matrix products only (norms, softmax and element-wise work are ignored),
    /// counted as `6 · tokens · weights` for the weight products (2 forward,
    /// 4 backward) and `12 · S_q · S_k · heads·dim_qkv` for each attention
    /// (q·kᵀ and p·v). Only work the model does is counted: in
    /// `reuse_encoder_kv` mode the last encoder layer computes only its keys
    /// and values, and uniform attention needs neither queries nor keys.
    pub const fn flops_per_example(&self, enc_len: usize, dec_len: usize) -> u64 {
        let m = self.dim_model as u64;
        let dqk = self.dim_qkv as u64;
        let ff = (self.dim_ff * self.ffn.matrices()) as u64 * m;
        let (se, sd) = (enc_len as u64, dec_len as u64);
        let reuse = matches!(self.cross_attention, CrossAttention::ReuseEncoderKv);
        let softmax = matches!(self.attention, AttentionKind::Softmax);
        // Attention products of one encoder-side attention: q·kᵀ and p·v, or
        // p·v alone when the probabilities are uniform.
        let products: u64 = if softmax { 2 } else { 1 };
        let mut flops: u64 = 0;
        let mut i = 0;
        while i < self.encoder_heads.len() {
            let inner = self.encoder_heads[i] as u64 * dqk;
            let kv_only = reuse && i + 1 == self.encoder_heads.len();
            // values always; keys unless attention is uniform
            let mut w = if softmax { 2 } else { 1 } * m * inner;
            if !kv_only {
                // queries (softmax only), output projection, feed-forward
                w += if softmax { 2 } else { 1 } * m * inner + ff;
                flops += 6 * products * se * se * inner;
            }
            flops += 6 * se * w;
            i += 1;
        }
        let mut i = 0;
        while i < self.decoder_heads.len() {
            let inner = self.decoder_heads[i] as u64 * dqk;
            // causal self-attention (computed dense), its projections, the
            // feed-forward, cross-attention's w_o and (softmax) w_q
            let w = 4 * m * inner + ff + if softmax { 2 } else { 1 } * m * inner;
            flops += 6 * sd * w;
            flops += 6 * 2 * sd * sd * inner;
            flops += 6 * products * sd * se * inner;
            if !reuse {
                // own values (and keys) projected from the encoder output
                flops += 6 * se * if softmax { 2 } else { 1 } * m * inner;
            }
            i += 1;
        }
        // tied LM head
        flops += 6 * sd * m * self.vocab as u64;
        flops
    }

    /// FLOPs per corpus token on the reference workload
    /// ([`REF_ENCODER_LEN`], [`REF_DECODER_LEN`] from a chunk of [`REF_CHUNK_TOKENS`]).
    pub const fn flops_per_token(&self) -> u64 {
        self.flops_per_example(REF_ENCODER_LEN, REF_DECODER_LEN) / REF_CHUNK_TOKENS as u64
    }

    /// Heads as they are declared: one number when all layers agree, else the list.
    pub fn heads_summary(&self) -> String {
        fn one(h: &[usize]) -> String {
            if h.iter().all(|&x| x == h[0]) {
                h[0].to_string()
            } else {
                format!("{h:?}")
            }
        }
        if self.encoder_heads == self.decoder_heads {
            one(self.encoder_heads)
        } else {
            format!(
                "enc {} / dec {}",
                one(self.encoder_heads),
                one(self.decoder_heads)
            )
        }
    }
}

impl fmt::Display for Arch {
    /// A multi-line description, for logs and run directories.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "variant          {}", self.name)?;
        if let Some(base) = self.base {
            writeln!(f, "base             {base} (+ {})", self.declared)?;
        }
        writeln!(f, "dim_model        {}", self.dim_model)?;
        writeln!(
            f,
            "layers           {} encoder + {} decoder",
            self.encoder_layers(),
            self.decoder_layers()
        )?;
        writeln!(
            f,
            "heads            {} x dim_qkv {}",
            self.heads_summary(),
            self.dim_qkv
        )?;
        writeln!(f, "ffn              {} dim_ff {}", self.ffn, self.dim_ff)?;
        writeln!(
            f,
            "position         learned, combine {}, init {}",
            self.position.combine.name(),
            self.position.init.name()
        )?;
        writeln!(
            f,
            "residuals        self_attn {} cross_attn {} ffn {}",
            self.residual.self_attn, self.residual.cross_attn, self.residual.ffn
        )?;
        writeln!(
            f,
            "attention        {}, cross {}",
            self.attention.name(),
            self.cross_attention.name()
        )?;
        writeln!(f, "dropout          {}", self.dropout)?;
        writeln!(f, "vocab / max_len  {} / {}", self.vocab, self.max_len)?;
        writeln!(
            f,
            "parameters       {} total, {} live ({} dead)",
            thousands(self.params.total),
            thousands(self.params.live),
            thousands(self.params.dead())
        )?;
        write!(
            f,
            "budget           {} on {} params, {:+.2}% (tolerance ±{}%){}",
            thousands(self.budget.params),
            self.budget.on.name(),
            self.budget_deviation_pct(),
            self.budget.tolerance_pct,
            match self.budget.exempt {
                Some(r) => format!(", exempt: {r}"),
                None => String::new(),
            }
        )
    }
}
