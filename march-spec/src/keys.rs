//! The DSL's keys: what each takes, its default, and how it changes the
//! architecture, written once. The macro looks keys up here; the README's
//! table is checked against [`KEYS`] by a test.
//!
//! A per-layer list or a name that the macro must keep (`PerLayer::Each`,
//! the variant's name) is leaked to `'static`: keys are applied inside the
//! short-lived compiler process, where the architecture becomes a constant.

use crate::arch::*;
use crate::value::{Arg, At, Number, Op, Problem, Value};

/// One key of the DSL.
pub struct Key {
    pub name: &'static str,
    /// What it takes, for errors and the README (`an integer`, `` `mean` or `sum` ``).
    pub takes: &'static str,
    /// What it means.
    pub doc: &'static str,
    /// Whether `+=`, `-=`, `*=`, `/=` apply.
    pub relative: bool,
    /// `None` for `base`, which the macro resolves itself.
    apply: Option<fn(&mut Entry, &mut Arch)>,
    /// The value as DSL text, to hand a resolved base to derived variants;
    /// `None` where the key is not inherited or is written by other keys.
    write: fn(&Arch) -> Option<String>,
}

impl Key {
    /// The default value as DSL text (`None`: no default).
    pub fn default_text(&self) -> Option<String> {
        (self.write)(&Arch::DEFAULT)
    }
}

fn not_written(_: &Arch) -> Option<String> {
    None
}

macro_rules! key {
    ($name:literal, $takes:literal, $doc:literal, relative, $apply:expr, $write:expr) => {
        Key {
            name: $name,
            takes: $takes,
            doc: $doc,
            relative: true,
            apply: Some($apply),
            write: $write,
        }
    };
    ($name:literal, $takes:literal, $doc:literal, $apply:expr, $write:expr) => {
        Key {
            name: $name,
            takes: $takes,
            doc: $doc,
            relative: false,
            apply: Some($apply),
            write: $write,
        }
    };
}

fn some(s: impl ToString) -> Option<String> {
    Some(s.to_string())
}

/// Every key, in the order of the README's table.
pub static KEYS: &[Key] = &[
    Key {
        name: "base",
        takes: "the variant this one derives from, e.g. `base = Baseline`",
        doc: "the variant this one derives from (a path: `Baseline`, `march_models::Baseline`); its settings are the defaults of this one",
        relative: false,
        apply: None,
        write: not_written,
    },
    key!("dim_model", "an integer", "width of the residual stream", relative,
        |e, a| if let Some(v) = e.integer(a.dim_model) { a.dim_model = v },
        |a| some(a.dim_model)),
    key!("layers", "an integer: encoder and decoder layers alike", "encoder and decoder layers alike", relative,
        |e, a| {
            let (enc, dec) = (e.integer(a.encoder_layers), e.integer(a.decoder_layers));
            if let (Some(enc), Some(dec)) = (enc, dec) {
                (a.encoder_layers, a.decoder_layers) = (enc, dec);
            }
        },
        not_written),
    key!("encoder_layers", "an integer", "encoder layers", relative,
        |e, a| if let Some(v) = e.integer(a.encoder_layers) { a.encoder_layers = v },
        |a| some(a.encoder_layers)),
    key!("decoder_layers", "an integer", "decoder layers", relative,
        |e, a| if let Some(v) = e.integer(a.decoder_layers) { a.decoder_layers = v },
        |a| some(a.decoder_layers)),
    key!("heads", "an integer, or a per-layer list such as `[12, 8, 4]`",
        "attention heads of each layer; a list gives each layer its own (encoder and decoder alike); `heads *= [3/2, 1, 1/2]` scales per layer", relative,
        |e, a| if let Some(v) = e.per_layer(a.heads) { a.heads = v },
        |a| some(a.heads)),
    key!("dim_qkv", "an integer, or a per-layer list such as `[32, 64, 128]`",
        "dimension of each head's queries, keys and values; a list (or `dim_qkv *= [1/2, 1, 2]`) gives each layer its own", relative,
        |e, a| if let Some(v) = e.per_layer(a.dim_qkv) { a.dim_qkv = v },
        |a| some(a.dim_qkv)),
    key!("dim_ff", "an integer, or a per-layer list such as `[3072, 2048, 1024]`",
        "hidden width of the feed-forward; a list gives each layer its own", relative,
        |e, a| if let Some(v) = e.per_layer(a.dim_ff) { a.dim_ff = v },
        |a| some(a.dim_ff)),
    key!("vocab", "an integer", "vocabulary size (the tied embedding's rows)", relative,
        |e, a| if let Some(v) = e.integer(a.vocab) { a.vocab = v },
        |a| some(a.vocab)),
    key!("max_len", "an integer", "rows of the position table", relative,
        |e, a| if let Some(v) = e.integer(a.max_len) { a.max_len = v },
        |a| some(a.max_len)),
    key!("dropout", "a probability such as `0.1`", "dropout probability everywhere: input, attention probabilities, sub-layer outputs, feed-forward hidden",
        |e, a| if let Some(p) = e.probability("dropout", &e.value.clone(), At::value()) { a.dropout = p },
        |a| some(format!("{:?}", a.dropout))),
    key!("ffn", "`dense(relu|gelu|silu)`, `glu(relu|gelu|silu|sigmoid)`, `mixed(mean|sum[, branch_dropout = p])` or `none`",
        "the feed-forward: dense, a gated linear unit, the original's mixed activation `down(combine(sigmoid(up_slow x), relu(up_fast x)))` with the branch dropout on the sigmoid branch, or none (no feed-forward sub-layer, nor its norm)",
        |e, a| if let Some(f) = e.ffn() { a.ffn = f },
        |a| some(a.ffn)),
    key!("position", "`learned`, `none`, `t5_relative[(num_buckets = 32, max_distance = 128)]` or `rope[(theta = 10000)]`",
        "the position encoding: `learned` (a table `[max_len, dim_model]` joined to the inputs by `position_combine`, initialised by `position_init`), `none` (only the decoder's causal mask tells positions apart), `t5_relative` (T5's bucketed relative bias: per stack a table `[num_buckets, heads]`, N(0, dim_model^-0.5), added to every self-attention's logits; bidirectional buckets in the encoder, causal in the decoder; equal heads in every layer) or `rope` (rotary embeddings of queries and keys in every attention, `dim_qkv` even)",
        |e, a| if let Some(k) = e.position() { a.position.kind = k },
        |a| some(a.position.kind)),
    key!("position_combine", "`mean` or `sum`", "how the position table joins the embedding: `mean` (`(x + t) / 2`) or `sum` (`x + t`)",
        |e, a| if let Some(c) = e.choice::<Combine>(Combine::ALL, Combine::name) { a.position.combine = c },
        |a| some(a.position.combine.name())),
    key!("position_init", "`scaled` or `unit`", "initialisation of the position table: `scaled` (N(0, dim^-0.5)) or `unit` (N(0, 1))",
        |e, a| if let Some(i) = e.choice::<PositionInit>(PositionInit::ALL, PositionInit::name) { a.position.init = i },
        |a| some(a.position.init.name())),
    key!("self_attn_residual", "`true` or `false`", "whether self-attention adds its input back",
        |e, a| if let Some(b) = e.boolean() { a.residual.self_attn = b },
        |a| some(a.residual.self_attn)),
    key!("cross_attn_residual", "`true` or `false`", "whether cross-attention adds its input back",
        |e, a| if let Some(b) = e.boolean() { a.residual.cross_attn = b },
        |a| some(a.residual.cross_attn)),
    key!("ffn_residual", "`true` or `false`", "whether the feed-forward adds its input back",
        |e, a| if let Some(b) = e.boolean() { a.residual.ffn = b },
        |a| some(a.residual.ffn)),
    key!("cross_attention", "`reuse_encoder_kv`, `project_encoder_kv` or `own_kv`",
        "where cross-attention gets its keys and values: `reuse_encoder_kv` (decoder layer i reuses encoder layer i's, the original), `project_encoder_kv` (decoder layer i applies its own `w_k`, `w_v` `[heads·dim_qkv, heads·dim_qkv]` to encoder layer i's, the original before its NoKeyValueWeights experiment) or `own_kv` (its own `w_k`, `w_v` on the encoder output, T5)",
        |e, a| if let Some(c) = e.choice::<CrossAttention>(CrossAttention::ALL, CrossAttention::name) { a.cross_attention = c },
        |a| some(a.cross_attention.name())),
    key!("attention", "`softmax` or `uniform_encoder`",
        "`softmax`, or `uniform_encoder`: encoder self- and cross-attention uniform over the unpadded keys (encoder mixing without attention, an ablation; what the original's runs before its mask fix of 22 April 2023 trained)",
        |e, a| if let Some(k) = e.choice::<AttentionKind>(AttentionKind::ALL, AttentionKind::name) { a.attention = k },
        |a| some(a.attention.name())),
    key!("attention_scale", "`none` or `inv_sqrt_dim`",
        "scale of the attention logits: `none` (T5, the original) or `inv_sqrt_dim` (`q kᵀ / √dim_qkv`); `w_q` keeps T5's initialisation either way",
        |e, a| if let Some(s) = e.choice::<AttentionScale>(AttentionScale::ALL, AttentionScale::name) { a.attention_scale = s },
        |a| some(a.attention_scale.name())),
    key!("tie_embeddings", "`true` or `false`",
        "`true`: the output head is the input embedding, logits `(x · dim_model^-0.5) Eᵀ` (T5); `false`: a head of its own `[vocab, dim_model]`, N(0, 1), logits `x Wᵀ` (T5 v1.1)",
        |e, a| if let Some(b) = e.boolean() { a.tie_embeddings = b },
        |a| some(a.tie_embeddings)),
    key!("norm_gain", "`vector` or `scalar`",
        "the gain of every RMS norm: `vector` (`[dim_model]`, T5) or `scalar` (`[1]`, the original's until its commit 85b377a)",
        |e, a| if let Some(g) = e.choice::<NormGain>(NormGain::ALL, NormGain::name) { a.norm_gain = g },
        |a| some(a.norm_gain.name())),
    key!("init", "`paper` or `torch_default`",
        "how the attention and feed-forward matrices start: `paper` (N(0, σ²), T5's σ of each matrix) or `torch_default` (PyTorch's `nn.Linear` default, U(±1/√fan_in): what the original's README-era runs trained, their `init_weights()` never called)",
        |e, a| if let Some(i) = e.choice::<WeightInit>(WeightInit::ALL, WeightInit::name) { a.init = i },
        |a| some(a.init.name())),
    key!("decoder_norms", "`own` or `shared`",
        "`own`: every decoder sub-layer its own norm (T5); `shared`: the original's indexing at 97234f0 (norms `2i, 2i+1, 2i+2` of layer i): layer i+1's self-attention reads layer i's feed-forward norm, and `layers − 1` gains go unused",
        |e, a| if let Some(n) = e.choice::<DecoderNorms>(DecoderNorms::ALL, DecoderNorms::name) { a.decoder_norms = n },
        |a| some(a.decoder_norms.name())),
    key!("budget", "an integer number of parameters", "the parameter budget (required without `base`; inherited otherwise)",
        |e, a| if let Some(b) = e.integer(1) { a.budget.params = Some(b as u64) },
        |a| a.budget.params.map(|p| p.to_string())),
    key!("budget_on", "`total` or `live`", "which parameters the budget counts: `total` (the original's way) or `live`",
        |e, a| if let Some(on) = e.choice::<BudgetOn>(BudgetOn::ALL, BudgetOn::name) { a.budget.on = on },
        |a| some(a.budget.on.name())),
    key!("tolerance", "a percentage such as `1%`", "allowed deviation from the budget",
        |e, a| match e.value {
            Value::Percent(n) if n.as_f64() < 0.0 => e.problem(At::value(), "`tolerance` cannot be negative"),
            Value::Percent(n) => a.budget.tolerance_pct = n.as_f64(),
            _ => e.problem(At::value(), "`tolerance` takes a percentage: write e.g. `tolerance = 1%`"),
        },
        |a| some(format!("{:?}%", a.budget.tolerance_pct))),
    key!("budget_exempt", "a string giving the reason", "the reason to run outside the budget (not inherited)",
        |e, a| match &e.value {
            Value::Str(s) if !s.trim().is_empty() => a.budget.exempt = Some(leak(s.clone())),
            Value::Str(_) => e.problem(At::value(), "`budget_exempt` needs a reason: say why this variant may run outside its budget"),
            _ => e.wrong(),
        },
        not_written),
];

/// The key named `name`.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// The key nearest to a misspelt one.
pub fn nearest(name: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                let sub = prev[j] + usize::from(ca != *cb);
                cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }
    KEYS.iter()
        .map(|k| (distance(name, k.name), k.name))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3) || k.starts_with(name) || name.starts_with(k))
        .min()
        .map(|(_, k)| k)
}

/// The problem with an unknown key: the nearest key, or all of them.
pub fn unknown_key(name: &str) -> String {
    let hint = match nearest(name) {
        Some(k) => format!("; did you mean `{k}`?"),
        None => {
            let all: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
            format!("; the keys are: {}", all.join(", "))
        }
    };
    format!("unknown key `{name}`{hint}")
}

/// Apply `key op value` to `arch`; every problem is returned (and `arch`
/// keeps the old value of what could not be applied).
pub fn apply(arch: &mut Arch, key: &str, op: Op, value: &Value) -> Vec<Problem> {
    let Some(k) = self::key(key) else {
        return vec![Problem::new(At::Key, unknown_key(key))];
    };
    let Some(apply) = k.apply else {
        return vec![Problem::new(
            At::Key,
            format!("`{key}` is resolved by the macro"),
        )];
    };
    if op != Op::Set && !k.relative {
        return vec![Problem::new(
            At::Op,
            format!("`{key}` can only be set: write `{key} = ...`"),
        )];
    }
    let mut e = Entry {
        key: k,
        op,
        value: value.clone(),
        problems: Vec::new(),
    };
    apply(&mut e, arch);
    e.problems
}

/// The architecture as DSL entries that re-create it exactly (the budget
/// exemption is not inherited: each variant states its own).
pub fn to_dsl(arch: &Arch) -> String {
    KEYS.iter()
        .filter_map(|k| (k.write)(arch).map(|v| format!("{} = {v}", k.name)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A string that outlives the declaration (see the module's doc).
pub fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_list(v: Vec<usize>) -> &'static [usize] {
    Box::leak(v.into_boxed_slice())
}

/// One entry being applied: its key, operator and value, and its problems.
pub struct Entry {
    key: &'static Key,
    op: Op,
    value: Value,
    problems: Vec<Problem>,
}

impl Entry {
    fn problem(&mut self, at: At, message: impl Into<String>) {
        self.problems.push(Problem::new(at, message));
    }

    /// "`key` takes X, found Y" about the entry's value.
    fn wrong(&mut self) {
        self.wrong_at(&self.value.clone(), At::value());
    }

    fn wrong_at(&mut self, value: &Value, at: At) {
        let msg = format!(
            "`{}` takes {}, found {}",
            self.key.name,
            self.key.takes,
            value.kind()
        );
        self.problem(at, msg);
    }

    /// The entry's operator applied to the integer `current`, with the value
    /// (or the list item) `value` at `at`.
    fn integer_at(&mut self, op: Op, value: &Value, at: At, current: usize) -> Option<usize> {
        let key = self.key.name;
        let Value::Number(n) = *value else {
            self.wrong_at(value, at);
            return None;
        };
        let cur = current as i128;
        let result = match op {
            Op::Set => {
                if !n.is_whole() {
                    self.problem(at, format!("`{key}` must be a whole number"));
                    return None;
                }
                Number::whole(n.num / n.den)
            }
            Op::Add | Op::Sub => {
                if !n.is_whole() {
                    self.problem(at, format!("`{key} {}` takes a whole number", op.symbol()));
                    return None;
                }
                let d = n.num / n.den;
                Number::whole(if op == Op::Add { cur + d } else { cur - d })
            }
            Op::Mul => Number {
                num: cur * n.num,
                den: n.den,
            },
            Op::Div => {
                if n.num == 0 {
                    self.problem(at, "division by zero");
                    return None;
                }
                Number {
                    num: cur * n.den,
                    den: n.num,
                }
            }
        };
        // scaled values are rounded down, like Python's int()
        let v = result.num.div_euclid(result.den);
        if v <= 0 {
            if op == Op::Set {
                self.problem(at, format!("`{key}` must be at least 1"));
            } else {
                let sign = match op {
                    Op::Add => "+",
                    Op::Sub => "-",
                    Op::Mul => "×",
                    _ => "÷",
                };
                self.problem(
                    At::Op,
                    format!("`{key}` must be at least 1, but {current} {sign} {n} leaves {v}"),
                );
            }
            return None;
        }
        Some(v as usize)
    }

    /// The entry applied to the integer `current`.
    fn integer(&mut self, current: usize) -> Option<usize> {
        let value = self.value.clone();
        self.integer_at(self.op, &value, At::value(), current)
    }

    /// The entry applied to a per-layer dimension: one number for every
    /// layer, a list of one per layer, or a list of per-layer factors.
    fn per_layer(&mut self, current: PerLayer) -> Option<PerLayer> {
        let key = self.key.name;
        let value = self.value.clone();
        let out = match (self.op, &value) {
            (Op::Set, Value::List(items)) => {
                if items.is_empty() {
                    self.problem(At::value(), format!("`{key}` needs at least one entry"));
                    return None;
                }
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(self.integer_at(Op::Set, item, At::Value(vec![i]), 1)?);
                }
                out
            }
            (op, Value::List(items)) => {
                if !matches!(op, Op::Mul | Op::Div) {
                    self.problem(At::Op, format!("a per-layer list can only scale {key}: write `{key} *= [...]` or `{key} /= [...]`"));
                    return None;
                }
                let n = items.len();
                let base = match current {
                    PerLayer::All(h) => vec![h; n],
                    PerLayer::Each(v) if v.len() == n => v.to_vec(),
                    PerLayer::Each(v) => {
                        self.problem(
                            At::value(),
                            format!(
                                "the list has {n} entries but the base has {} per-layer {key}",
                                v.len()
                            ),
                        );
                        return None;
                    }
                };
                let mut out = Vec::new();
                for (i, (item, cur)) in items.iter().zip(base).enumerate() {
                    out.push(self.integer_at(op, item, At::Value(vec![i]), cur)?);
                }
                out
            }
            (op, _) => match current {
                PerLayer::All(h) => return Some(PerLayer::All(self.integer(h)?)),
                PerLayer::Each(_) if op == Op::Set => return Some(PerLayer::All(self.integer(1)?)),
                PerLayer::Each(v) => {
                    let mut out = Vec::new();
                    for &cur in v {
                        out.push(self.integer(cur)?);
                    }
                    out
                }
            },
        };
        // a list whose entries agree is one number (so that changing the
        // layer count of a derived variant keeps it valid)
        Some(if out.iter().all(|&h| h == out[0]) {
            PerLayer::All(out[0])
        } else {
            PerLayer::Each(leak_list(out))
        })
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong();
                None
            }
        }
    }

    /// A probability in [0, 1) named `what`, at `at`.
    fn probability(&mut self, what: &str, value: &Value, at: At) -> Option<f64> {
        let Value::Number(n) = *value else {
            self.wrong_at(value, at);
            return None;
        };
        let p = n.as_f64();
        if !(0.0..1.0).contains(&p) {
            self.problem(
                at,
                format!("`{what}` is a probability: it must be in [0, 1)"),
            );
            return None;
        }
        Some(p)
    }

    /// One of `options`, named in the DSL by `name`.
    fn choice<T: Copy>(&mut self, options: &[T], name: fn(T) -> &'static str) -> Option<T> {
        let value = self.value.clone();
        self.choice_at(&value, At::value(), self.key.name, options, name)
    }

    fn choice_at<T: Copy>(
        &mut self,
        value: &Value,
        at: At,
        what: &str,
        options: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        let Value::Name(written) = value else {
            self.wrong_at(value, at);
            return None;
        };
        if let Some(v) = options.iter().find(|&&o| name(o) == written) {
            return Some(*v);
        }
        let names: Vec<String> = options.iter().map(|&o| format!("`{}`", name(o))).collect();
        self.problem(
            at,
            format!(
                "unknown value for `{what}`: write one of {}",
                names.join(", ")
            ),
        );
        None
    }

    fn activation(&mut self, value: &Value, at: At, allow_sigmoid: bool) -> Option<Activation> {
        let options: Vec<Activation> = Activation::ALL
            .iter()
            .copied()
            .filter(|&a| allow_sigmoid || a != Activation::Sigmoid)
            .collect();
        if let Value::Name(n) = value {
            if let Some(a) = options.iter().find(|a| a.name() == n) {
                return Some(*a);
            }
        }
        let names: Vec<String> = options.iter().map(|a| format!("`{}`", a.name())).collect();
        self.problem(
            at,
            format!("unknown activation: write one of {}", names.join(", ")),
        );
        None
    }

    /// The options of a call-form value (`rope(theta = 500000)`): each named
    /// argument's name, value and place; a positional argument is a problem.
    fn options(&mut self, kind: &str, known: &[&str]) -> Vec<(String, Value, At)> {
        let Value::Call(_, args) = self.value.clone() else {
            return Vec::new();
        };
        let list = known
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        let mut out = Vec::new();
        for (i, Arg { name, value }) in args.into_iter().enumerate() {
            match name {
                Some(n) if known.contains(&n.as_str()) => out.push((n, value, At::Value(vec![i]))),
                Some(n) => self.problem(
                    At::ArgName(vec![i]),
                    format!("`{kind}(...)` has no option `{n}`; it has {list}"),
                ),
                None => self.problem(
                    At::Value(vec![i]),
                    format!(
                        "`{kind}(...)` takes named options: write e.g. `{kind}({} = ...)`",
                        known[0]
                    ),
                ),
            }
        }
        out
    }

    fn position(&mut self) -> Option<PositionKind> {
        let kind = match &self.value {
            Value::Name(n) | Value::Call(n, _) => n.clone(),
            _ => {
                self.wrong();
                return None;
            }
        };
        let call = matches!(self.value, Value::Call(..));
        match kind.as_str() {
            "learned" | "none" if call => {
                self.problem(
                    At::value(),
                    format!("`{kind}` takes no options: write `position = {kind}`"),
                );
                None
            }
            "learned" => Some(PositionKind::Learned),
            "none" => Some(PositionKind::None),
            "t5_relative" => {
                let PositionKind::T5Relative {
                    mut num_buckets,
                    mut max_distance,
                } = PositionKind::T5_RELATIVE
                else {
                    unreachable!()
                };
                let before = self.problems.len();
                for (name, value, at) in
                    self.options("t5_relative", &["num_buckets", "max_distance"])
                {
                    let Some(n) = self.integer_at(Op::Set, &value, at, 1) else {
                        continue;
                    };
                    if name == "num_buckets" {
                        num_buckets = n
                    } else {
                        max_distance = n
                    }
                }
                (self.problems.len() == before).then_some(PositionKind::T5Relative {
                    num_buckets,
                    max_distance,
                })
            }
            "rope" => {
                let PositionKind::Rope { mut theta } = PositionKind::ROPE else {
                    unreachable!()
                };
                let before = self.problems.len();
                for (_, value, at) in self.options("rope", &["theta"]) {
                    match value {
                        Value::Number(n) if n.as_f64() > 0.0 => theta = n.as_f64(),
                        _ => self.problem(
                            at,
                            "`theta` must be a positive number, e.g. `rope(theta = 10000)`",
                        ),
                    }
                }
                (self.problems.len() == before).then_some(PositionKind::Rope { theta })
            }
            other => {
                self.problem(
                    if call { At::CallName(Vec::new()) } else { At::value() },
                    format!("unknown position encoding `{other}`: write `learned`, `none`, `t5_relative` or `rope`"),
                );
                None
            }
        }
    }

    fn ffn(&mut self) -> Option<FeedForward> {
        if self.value == Value::Name("none".into()) {
            return Some(FeedForward::None);
        }
        let Value::Call(kind, args) = self.value.clone() else {
            self.wrong();
            return None;
        };
        let positional: Vec<(usize, &Value)> = args
            .iter()
            .enumerate()
            .filter(|(_, a)| a.name.is_none())
            .map(|(i, a)| (i, &a.value))
            .collect();
        let named: Vec<(usize, &str, &Value)> = args
            .iter()
            .enumerate()
            .filter_map(|(i, Arg { name, value })| name.as_deref().map(|n| (i, n, value)))
            .collect();
        match kind.as_str() {
            "dense" | "glu" => {
                for (i, n, _) in &named {
                    self.problem(
                        At::ArgName(vec![*i]),
                        format!("`{kind}(...)` has no option `{n}`"),
                    );
                }
                let [(i, v)] = positional[..] else {
                    self.problem(
                        At::value(),
                        format!("`{kind}(...)` takes one activation, e.g. `{kind}(relu)`"),
                    );
                    return None;
                };
                let act = self.activation(v, At::Value(vec![i]), kind == "glu")?;
                Some(if kind == "dense" {
                    FeedForward::Dense { activation: act }
                } else {
                    FeedForward::Glu { gate: act }
                })
            }
            "mixed" => {
                let [(i, v)] = positional[..] else {
                    self.problem(At::value(), "`mixed(...)` takes `mean` or `sum`, e.g. `mixed(sum, branch_dropout = 0.5)`");
                    return None;
                };
                let combine =
                    self.choice_at(v, At::Value(vec![i]), "mixed", Combine::ALL, Combine::name)?;
                let mut branch_dropout = 0.0;
                for (i, n, v) in named {
                    if n == "branch_dropout" {
                        branch_dropout =
                            self.probability("branch_dropout", v, At::Value(vec![i]))?;
                    } else {
                        self.problem(
                            At::ArgName(vec![i]),
                            format!("`mixed(...)` has no option `{n}`; it has `branch_dropout`"),
                        );
                    }
                }
                Some(FeedForward::MixedAct {
                    combine,
                    branch_dropout,
                })
            }
            other => {
                self.problem(
                    At::CallName(Vec::new()),
                    format!("unknown feed-forward kind `{other}`: write `dense(act)`, `glu(act)`, `mixed(mean|sum)` or `none`"),
                );
                None
            }
        }
    }
}
