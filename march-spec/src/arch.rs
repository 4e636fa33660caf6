//! The resolved description of a variant's architecture: every setting a
//! declaration can make, after its base and its own entries are applied.
//!
//! Shapes go into the model's type; everything that does not change a shape
//! (activations, residual flags, dropout, position combine, ...) is read from
//! the [`Arch`] at run time by the building blocks.

use std::fmt;

use crate::rust::ToRust;
use crate::{names, record};

names! {
    /// An element-wise activation function.
    pub enum Activation {
        Relu = "relu",
        /// The exact (erf) GELU, as PyTorch's `nn.GELU()`.
        Gelu = "gelu",
        /// `x * sigmoid(x)`.
        Silu = "silu",
        Sigmoid = "sigmoid",
    }
}

names! {
    /// How two branches are combined: `(a + b) / 2` or `a + b`.
    pub enum Combine {
        Mean = "mean",
        Sum = "sum",
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
    /// No feed-forward sub-layer (nor its norm): attention only (the
    /// original's NoFF).
    None,
}

impl FeedForward {
    /// Number of `[dim_model, dim_ff]`-sized matrices of this kind.
    pub const fn matrices(&self) -> usize {
        match self {
            FeedForward::Dense { .. } => 2,
            FeedForward::Glu { .. } | FeedForward::MixedAct { .. } => 3,
            FeedForward::None => 0,
        }
    }

    /// Whether the layers have a feed-forward sub-layer.
    pub const fn present(&self) -> bool {
        !matches!(self, FeedForward::None)
    }
}

impl fmt::Display for FeedForward {
    /// The DSL form: `dense(relu)`, `glu(gelu)`, `mixed(sum, branch_dropout = 0.5)`.
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
                        "mixed({}, branch_dropout = {branch_dropout:?})",
                        combine.name()
                    )
                } else {
                    write!(f, "mixed({})", combine.name())
                }
            }
            FeedForward::None => write!(f, "none"),
        }
    }
}

impl ToRust for FeedForward {
    fn to_rust(&self, out: &mut String) {
        out.push_str(crate::rust::PATH);
        match self {
            FeedForward::Dense { activation } => {
                out.push_str("FeedForward::Dense { activation: ");
                activation.to_rust(out);
            }
            FeedForward::Glu { gate } => {
                out.push_str("FeedForward::Glu { gate: ");
                gate.to_rust(out);
            }
            FeedForward::MixedAct {
                combine,
                branch_dropout,
            } => {
                out.push_str("FeedForward::MixedAct { combine: ");
                combine.to_rust(out);
                out.push_str(", branch_dropout: ");
                branch_dropout.to_rust(out);
            }
            FeedForward::None => {
                out.push_str("FeedForward::None");
                return;
            }
        }
        out.push_str(" }");
    }
}

names! {
    /// Initialisation of the learned position table.
    pub enum PositionInit {
        /// N(0, dim_model^-0.5), the original baseline.
        Scaled = "scaled",
        /// N(0, 1).
        Unit = "unit",
    }
}

/// How the model knows where a token is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PositionKind {
    /// A learned absolute table `[max_len, dim_model]` added to the
    /// encoder's and the decoder's inputs (the original).
    Learned,
    /// Nothing: only the decoder's causal mask tells positions apart.
    None,
    /// T5's relative position bias: a learned scalar per head and bucket of
    /// `key − query` added to the self-attention logits; bidirectional
    /// buckets in the encoder, causal in the decoder, one table per stack
    /// shared by its layers; cross-attention has none.
    T5Relative {
        num_buckets: usize,
        max_distance: usize,
    },
    /// Rotary embeddings (Su et al.): every attention rotates its queries and
    /// keys by their positions before `q kᵀ` (GPT-NeoX's halves, as the
    /// original's BaselineV2, cross-attention included).
    Rope { theta: f64 },
}

impl PositionKind {
    /// Hugging Face's T5 defaults.
    pub const T5_RELATIVE: PositionKind = PositionKind::T5Relative {
        num_buckets: 32,
        max_distance: 128,
    };
    /// RoFormer's base.
    pub const ROPE: PositionKind = PositionKind::Rope { theta: 10_000.0 };

    /// The kind's name in the DSL.
    pub const fn name(self) -> &'static str {
        match self {
            PositionKind::Learned => "learned",
            PositionKind::None => "none",
            PositionKind::T5Relative { .. } => "t5_relative",
            PositionKind::Rope { .. } => "rope",
        }
    }
}

impl fmt::Display for PositionKind {
    /// The DSL form: `learned`, `t5_relative`, `rope(theta = 500000)` (options
    /// only where they differ from the defaults).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PositionKind::T5Relative {
                num_buckets,
                max_distance,
            } if *self != PositionKind::T5_RELATIVE => write!(
                f,
                "t5_relative(num_buckets = {num_buckets}, max_distance = {max_distance})"
            ),
            PositionKind::Rope { theta } if *self != PositionKind::ROPE => {
                write!(f, "rope(theta = {theta:?})")
            }
            kind => f.write_str(kind.name()),
        }
    }
}

impl ToRust for PositionKind {
    fn to_rust(&self, out: &mut String) {
        out.push_str(crate::rust::PATH);
        match self {
            PositionKind::Learned => out.push_str("PositionKind::Learned"),
            PositionKind::None => out.push_str("PositionKind::None"),
            PositionKind::T5Relative {
                num_buckets,
                max_distance,
            } => {
                out.push_str("PositionKind::T5Relative { num_buckets: ");
                num_buckets.to_rust(out);
                out.push_str(", max_distance: ");
                max_distance.to_rust(out);
                out.push_str(" }");
            }
            PositionKind::Rope { theta } => {
                out.push_str("PositionKind::Rope { theta: ");
                theta.to_rust(out);
                out.push_str(" }");
            }
        }
    }
}

record! {
    /// The position encoding; `combine` and `init` are the learned table's.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Position {
        pub kind: PositionKind,
        pub combine: Combine,
        pub init: PositionInit,
    }
}

impl Position {
    /// Rows of the learned table: `max_len`, or none.
    pub const fn table_rows(&self, max_len: usize) -> usize {
        match self.kind {
            PositionKind::Learned => max_len,
            _ => 0,
        }
    }

    /// Buckets of the relative bias tables (0 without them).
    pub const fn relative_buckets(&self) -> usize {
        match self.kind {
            PositionKind::T5Relative { num_buckets, .. } => num_buckets,
            _ => 0,
        }
    }
}

names! {
    /// The learned gain of every RMS norm.
    pub enum NormGain {
        /// One gain per feature, `[dim_model]` (T5).
        Vector = "vector",
        /// One gain for all features, `[1]` (the original's RMSNorm until its
        /// commit 85b377a).
        Scalar = "scalar",
    }
}

impl NormGain {
    /// Elements of the gain of a norm over `dim_model` features.
    pub const fn size(self, dim_model: usize) -> usize {
        match self {
            NormGain::Vector => dim_model,
            NormGain::Scalar => 1,
        }
    }
}

names! {
    /// How the projection matrices (attention and feed-forward) start.
    pub enum WeightInit {
        /// N(0, σ²) with each matrix's σ from T5 / Mesh TensorFlow (the
        /// original's `init_weights()`).
        Paper = "paper",
        /// PyTorch's `nn.Linear` default, U(−1/√fan_in, 1/√fan_in): what the
        /// original's README-era runs trained, whose blocks' `init_weights()`
        /// was never called (until its commit 1fd3afe).
        TorchDefault = "torch_default",
    }
}

names! {
    /// Which norm each decoder sub-layer reads.
    pub enum DecoderNorms {
        /// Every sub-layer its own norm (T5).
        Own = "own",
        /// The original's indexing at 97234f0: decoder layer i reads norms
        /// `2i, 2i+1, 2i+2` of a list of `3·layers + 1`, so layer i+1's
        /// self-attention reads layer i's feed-forward norm and `layers − 1`
        /// gains are never used (here: layer i+1's own self-attention norm).
        Shared = "shared",
    }
}

names! {
    /// Where the decoder's cross-attention gets its keys and values.
    pub enum CrossAttention {
        /// Decoder layer i reuses the (key, value) tensors of encoder layer i's
        /// self-attention; cross-attention has only `w_q` and `w_o` (the original march).
        ReuseEncoderKv = "reuse_encoder_kv",
        /// Cross-attention projects the final encoder output with its own
        /// `w_k`, `w_v` (T5).
        OwnKv = "own_kv",
        /// Decoder layer i applies its own `w_k`, `w_v` (`[heads·dim_qkv,
        /// heads·dim_qkv]`) to encoder layer i's keys and values (the
        /// original's cross-attention before its NoKeyValueWeights experiment).
        ProjectEncoderKv = "project_encoder_kv",
    }
}

names! {
    /// How attention probabilities are computed.
    pub enum AttentionKind {
        /// `softmax(q kᵀ + mask)` (T5: no 1/√d scaling).
        Softmax = "softmax",
        /// Encoder self-attention and cross-attention are uniform over the
        /// (unpadded) keys: encoder mixing without attention, an ablation (and
        /// what the original march trained before its mask fix of 22 April
        /// 2023, when its mask added -1e9 to every real token). Decoder
        /// self-attention stays softmax.
        UniformEncoder = "uniform_encoder",
    }
}

names! {
    /// How attention logits are scaled before the softmax.
    pub enum AttentionScale {
        /// `q kᵀ` as it is (T5, the original march: the 1/√d is absorbed in
        /// `w_q`'s initialisation).
        None = "none",
        /// `q kᵀ / √dim_qkv` (Vaswani et al.; the original's FastTransformer
        /// and BaselineV2).
        InvSqrtDim = "inv_sqrt_dim",
    }
}

impl CrossAttention {
    /// Whether decoder layer i reads encoder layer i's keys and values
    /// (rather than the final encoder output).
    pub const fn pairs_layers(self) -> bool {
        !matches!(self, CrossAttention::OwnKv)
    }
}

impl AttentionScale {
    /// The factor on the logits of heads of dimension `dim_qkv`.
    pub fn factor(self, dim_qkv: usize) -> f64 {
        match self {
            AttentionScale::None => 1.0,
            AttentionScale::InvSqrtDim => 1.0 / (dim_qkv as f64).sqrt(),
        }
    }
}

record! {
    /// Which sub-layers add their input back (`x + dropout(f(norm(x)))`) and which
    /// replace it (`dropout(f(norm(x)))`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Residuals {
        pub self_attn: bool,
        pub cross_attn: bool,
        pub ffn: bool,
    }
}

names! {
    /// Which parameters a budget counts.
    pub enum BudgetOn {
        /// Every trainable parameter, whether or not it gets a gradient (the original's way).
        Total = "total",
        /// Only parameters that influence the loss.
        Live = "live",
    }
}

record! {
    /// The parameter budget a variant is checked against at compile time.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Budget {
        /// The budget; `None` only while a declaration without a base is resolved.
        pub params: Option<u64>,
        pub on: BudgetOn,
        /// Allowed deviation, in percent of `params`.
        pub tolerance_pct: f64,
        /// The declared reason for running a variant outside its budget.
        pub exempt: Option<&'static str>,
    }
}

record! {
    /// Trainable parameters: all of them, and those that receive a gradient.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ParamCount {
        pub total: u64,
        pub live: u64,
    }
}

impl ParamCount {
    pub const fn dead(&self) -> u64 {
        self.total - self.live
    }
}

/// A dimension of every layer: one number for all, or one per layer (the
/// same list for encoder and decoder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerLayer {
    All(usize),
    Each(&'static [usize]),
}

impl PerLayer {
    /// The value at layer `i`.
    pub const fn at(&self, i: usize) -> usize {
        match self {
            PerLayer::All(n) => *n,
            PerLayer::Each(list) => list[i],
        }
    }

    /// The values of `layers` layers.
    pub fn of(&self, layers: usize) -> Vec<usize> {
        (0..layers).map(|i| self.at(i)).collect()
    }
}

impl fmt::Display for PerLayer {
    /// The DSL form: `8` or `[12, 8, 4]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerLayer::All(n) => write!(f, "{n}"),
            PerLayer::Each(list) => write!(f, "{list:?}"),
        }
    }
}

impl ToRust for PerLayer {
    fn to_rust(&self, out: &mut String) {
        out.push_str(crate::rust::PATH);
        match self {
            PerLayer::All(n) => {
                out.push_str("PerLayer::All(");
                n.to_rust(out);
            }
            PerLayer::Each(list) => {
                out.push_str("PerLayer::Each(");
                list.to_rust(out);
            }
        }
        out.push(')');
    }
}

/// The dimensions of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    pub heads: usize,
    pub dim_qkv: usize,
    pub dim_ff: usize,
}

impl Layer {
    /// Width of the attention: `heads · dim_qkv`.
    pub const fn inner(&self) -> usize {
        self.heads * self.dim_qkv
    }
}

record! {
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
        pub encoder_layers: usize,
        pub decoder_layers: usize,
        /// Attention heads of each layer.
        pub heads: PerLayer,
        /// Dimension of each head's queries, keys and values.
        pub dim_qkv: PerLayer,
        /// Hidden width of each feed-forward.
        pub dim_ff: PerLayer,
        pub vocab: usize,
        pub max_len: usize,
        /// Dropout probability everywhere (input, attention probabilities, sub-layer outputs, FFN hidden).
        pub dropout: f64,
        pub ffn: FeedForward,
        pub position: Position,
        pub residual: Residuals,
        pub cross_attention: CrossAttention,
        pub attention: AttentionKind,
        pub attention_scale: AttentionScale,
        /// Whether the output head is the input embedding (scaled by
        /// `dim_model^-0.5`, T5) or a matrix of its own (T5 v1.1).
        pub tie_embeddings: bool,
        /// The gain of every RMS norm: a vector (T5) or a scalar.
        pub norm_gain: NormGain,
        /// How the projection matrices start.
        pub init: WeightInit,
        /// Which norm each decoder sub-layer reads.
        pub decoder_norms: DecoderNorms,
        pub params: ParamCount,
        pub budget: Budget,
    }
}

impl Arch {
    /// The defaults: the original march baseline (T5-style, 36,340,224
    /// parameters at vocab 30,000), without a budget.
    pub const DEFAULT: Arch = Arch {
        name: "",
        base: None,
        doc: "",
        declared: "",
        dim_model: 512,
        encoder_layers: 3,
        decoder_layers: 3,
        heads: PerLayer::All(8),
        dim_qkv: PerLayer::All(64),
        dim_ff: PerLayer::All(2048),
        vocab: 30_000,
        max_len: 1024,
        dropout: 0.1,
        ffn: FeedForward::Dense {
            activation: Activation::Relu,
        },
        position: Position {
            kind: PositionKind::Learned,
            combine: Combine::Mean,
            init: PositionInit::Scaled,
        },
        residual: Residuals {
            self_attn: true,
            cross_attn: true,
            ffn: true,
        },
        cross_attention: CrossAttention::ReuseEncoderKv,
        attention: AttentionKind::Softmax,
        attention_scale: AttentionScale::None,
        tie_embeddings: true,
        norm_gain: NormGain::Vector,
        init: WeightInit::Paper,
        decoder_norms: DecoderNorms::Own,
        params: ParamCount { total: 0, live: 0 },
        budget: Budget {
            params: None,
            on: BudgetOn::Total,
            tolerance_pct: 1.0,
            exempt: None,
        },
    };

    /// Encoder layer `i`.
    pub const fn encoder(&self, i: usize) -> Layer {
        self.layer(i)
    }

    /// Decoder layer `i`.
    pub const fn decoder(&self, i: usize) -> Layer {
        self.layer(i)
    }

    const fn layer(&self, i: usize) -> Layer {
        Layer {
            heads: self.heads.at(i),
            dim_qkv: self.dim_qkv.at(i),
            dim_ff: self.dim_ff.at(i),
        }
    }

    /// Heads of each encoder layer.
    pub fn encoder_heads(&self) -> Vec<usize> {
        self.heads.of(self.encoder_layers)
    }

    /// Heads of each decoder layer.
    pub fn decoder_heads(&self) -> Vec<usize> {
        self.heads.of(self.decoder_layers)
    }

    /// The budget in parameters (the count itself when none was stated).
    pub const fn budget_params(&self) -> u64 {
        match self.budget.params {
            Some(p) => p,
            None => self.budgeted_params(),
        }
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
        let budget = self.budget_params() as f64;
        (self.budgeted_params() as f64 - budget) / budget * 100.0
    }

    /// Heads as they are declared: one number when all layers agree, else the list.
    pub fn heads_summary(&self) -> String {
        self.heads.to_string()
    }

    /// The architecture as the Rust expression that re-creates it (for the
    /// macro's `const ARCH`).
    pub fn rust_expr(&self) -> String {
        let mut out = String::new();
        self.to_rust(&mut out);
        out
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
            self.encoder_layers, self.decoder_layers
        )?;
        writeln!(
            f,
            "heads            {} x dim_qkv {}",
            self.heads, self.dim_qkv
        )?;
        match self.ffn {
            FeedForward::None => writeln!(f, "ffn              none")?,
            ffn => writeln!(f, "ffn              {ffn} dim_ff {}", self.dim_ff)?,
        }
        match self.position.kind {
            PositionKind::Learned => writeln!(
                f,
                "position         learned, combine {}, init {}",
                self.position.combine.name(),
                self.position.init.name()
            )?,
            kind => writeln!(f, "position         {kind}")?,
        }
        writeln!(
            f,
            "residuals        self_attn {} cross_attn {} ffn {}",
            self.residual.self_attn, self.residual.cross_attn, self.residual.ffn
        )?;
        writeln!(
            f,
            "attention        {}, scale {}, cross {}",
            self.attention.name(),
            self.attention_scale.name(),
            self.cross_attention.name()
        )?;
        writeln!(
            f,
            "output head      {}",
            if self.tie_embeddings {
                "tied to the embedding"
            } else {
                "its own (untied)"
            }
        )?;
        writeln!(
            f,
            "norms            gain {}, decoder {}",
            self.norm_gain.name(),
            self.decoder_norms.name()
        )?;
        writeln!(f, "init             {}", self.init.name())?;
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
            thousands(self.budget_params()),
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
