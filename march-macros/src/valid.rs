//! Validation: apply a declaration's entries to its base (or to the defaults),
//! check every value and the complete configuration, and collect every error.

use proc_macro2::{Span, TokenStream};
use syn::{Ident, Path};

use crate::ast::{parse_entries, Arg, Entry, Number, OpKind, Value};
use crate::config::{
    Activation, AttentionKind, BudgetOn, Combine, Config, CrossAttention, FeedForward, Heads,
    PositionInit, FORMAT_VERSION,
};

/// Every key a declaration may use, with what it takes (for errors and docs).
pub const KEYS: &[(&str, &str)] = &[
    ("base", "the variant this one derives from, e.g. `base = Baseline`"),
    ("dim_model", "an integer"),
    ("layers", "an integer: encoder and decoder layers alike"),
    ("encoder_layers", "an integer"),
    ("decoder_layers", "an integer"),
    ("heads", "an integer, or a per-layer list such as `[12, 8, 4]`"),
    ("dim_qkv", "an integer"),
    ("dim_ff", "an integer"),
    ("vocab", "an integer"),
    ("max_len", "an integer"),
    ("dropout", "a probability such as `0.1`"),
    (
        "ffn",
        "`dense(relu|gelu|silu)`, `glu(relu|gelu|silu|sigmoid)` or `mixed(mean|sum[, branch_dropout = p])`",
    ),
    ("position_combine", "`mean` or `sum`"),
    ("position_init", "`scaled` or `unit`"),
    ("self_attn_residual", "`true` or `false`"),
    ("cross_attn_residual", "`true` or `false`"),
    ("ffn_residual", "`true` or `false`"),
    ("cross_attention", "`reuse_encoder_kv` or `own_kv`"),
    ("attention", "`softmax` or `uniform_encoder`"),
    ("budget", "an integer number of parameters"),
    ("budget_on", "`total` or `live`"),
    ("tolerance", "a percentage such as `1%`"),
    ("budget_exempt", "a string giving the reason"),
];

/// The outcome of validating one declaration.
pub struct Validated {
    pub config: Config,
    /// The base's path when the declaration names one and no resolved base
    /// has been supplied yet: the expansion must call the base first.
    pub pending_base: Option<Path>,
    /// The entries that are not `base`, as written, to forward to the base.
    pub overrides: Vec<TokenStream>,
    /// The declaration's own entries as text, for `march list`.
    pub declared: String,
    /// Where the budget was declared (for the budget error).
    pub budget_span: Option<Span>,
}

fn nearest(key: &str) -> Option<&'static str> {
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
        .map(|(k, _)| (distance(key, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 3) || k.starts_with(key) || key.starts_with(k))
        .min()
        .map(|(_, k)| k)
}

fn expected(key: &str) -> &'static str {
    KEYS.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, e)| *e)
        .unwrap_or("")
}

struct Checker {
    errors: Vec<syn::Error>,
}

impl Checker {
    fn err(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span, msg));
    }

    fn wrong(&mut self, key: &Ident, value: &Value) {
        self.err(
            value.span(),
            format!(
                "`{key}` takes {}, found {}",
                expected(&key.to_string()),
                value.kind()
            ),
        );
    }

    fn number(&mut self, key: &Ident, value: &Value) -> Option<Number> {
        match value {
            Value::Number(n, _) => Some(*n),
            _ => {
                self.wrong(key, value);
                None
            }
        }
    }

    /// Apply `op` with operand `value` to the integer `current`.
    fn integer(
        &mut self,
        key: &Ident,
        op: OpKind,
        op_span: Span,
        value: &Value,
        current: u64,
    ) -> Option<u64> {
        let n = self.number(key, value)?;
        let cur = current as i128;
        let result = match op {
            OpKind::Set => {
                if !n.is_whole() {
                    self.err(value.span(), format!("`{key}` must be a whole number"));
                    return None;
                }
                Number::whole(n.num / n.den)
            }
            OpKind::Add | OpKind::Sub => {
                if !n.is_whole() {
                    self.err(
                        value.span(),
                        format!("`{key} {}` takes a whole number", op.symbol()),
                    );
                    return None;
                }
                let d = n.num / n.den;
                Number::whole(if op == OpKind::Add { cur + d } else { cur - d })
            }
            OpKind::Mul => Number {
                num: cur * n.num,
                den: n.den,
            },
            OpKind::Div => {
                if n.num == 0 {
                    self.err(value.span(), "division by zero");
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
            let msg = match op {
                OpKind::Set => format!("`{key}` must be at least 1"),
                _ => {
                    let sign = match op {
                        OpKind::Add => "+",
                        OpKind::Sub => "-",
                        OpKind::Mul => "×",
                        _ => "÷",
                    };
                    format!(
                        "`{key}` must be at least 1, but {current} {sign} {} leaves {v}",
                        fmt_number(n)
                    )
                }
            };
            self.err(
                if op == OpKind::Set {
                    value.span()
                } else {
                    op_span
                },
                msg,
            );
            return None;
        }
        Some(v as u64)
    }

    fn choice<T: Copy>(&mut self, key: &Ident, value: &Value, options: &[(&str, T)]) -> Option<T> {
        if let Value::Path(p) = value {
            if let Some(ident) = p.get_ident() {
                if let Some((_, v)) = options.iter().find(|(name, _)| ident == name) {
                    return Some(*v);
                }
            }
            let names: Vec<String> = options.iter().map(|(n, _)| format!("`{n}`")).collect();
            self.err(
                value.span(),
                format!(
                    "unknown value for `{key}`: write one of {}",
                    names.join(", ")
                ),
            );
            return None;
        }
        self.wrong(key, value);
        None
    }

    fn boolean(&mut self, key: &Ident, value: &Value) -> Option<bool> {
        match value {
            Value::Bool(b) => Some(b.value),
            _ => {
                self.wrong(key, value);
                None
            }
        }
    }

    fn probability(&mut self, key: &str, value: &Value, span_key: &Ident) -> Option<f64> {
        let n = self.number(span_key, value)?;
        let p = n.as_f64();
        if !(0.0..1.0).contains(&p) {
            self.err(
                value.span(),
                format!("`{key}` is a probability: it must be in [0, 1)"),
            );
            return None;
        }
        Some(p)
    }

    fn activation(&mut self, value: &Value, allow_sigmoid: bool) -> Option<Activation> {
        let mut options = vec![
            ("relu", Activation::Relu),
            ("gelu", Activation::Gelu),
            ("silu", Activation::Silu),
        ];
        if allow_sigmoid {
            options.push(("sigmoid", Activation::Sigmoid));
        }
        if let Value::Path(p) = value {
            if let Some(i) = p.get_ident() {
                if let Some((_, a)) = options.iter().find(|(n, _)| i == n) {
                    return Some(*a);
                }
            }
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("`{n}`")).collect();
        self.err(
            value.span(),
            format!("unknown activation: write one of {}", names.join(", ")),
        );
        None
    }

    fn ffn(&mut self, key: &Ident, value: &Value) -> Option<FeedForward> {
        let Value::Call(kind, args, span) = value else {
            self.wrong(key, value);
            return None;
        };
        let positional: Vec<&Value> = args
            .iter()
            .filter_map(|a| match a {
                Arg::Positional(v) => Some(v),
                Arg::Named(..) => None,
            })
            .collect();
        let named: Vec<(&Ident, &Value)> = args
            .iter()
            .filter_map(|a| match a {
                Arg::Named(n, v) => Some((n, v)),
                Arg::Positional(_) => None,
            })
            .collect();
        let one = |c: &mut Checker, what: &str| -> Option<&Value> {
            if positional.len() != 1 {
                c.err(
                    *span,
                    format!("`{kind}(...)` takes one {what}, e.g. `{kind}(relu)`"),
                );
                return None;
            }
            Some(positional[0])
        };
        match kind.to_string().as_str() {
            "dense" | "glu" => {
                for (n, _) in &named {
                    self.err(n.span(), format!("`{kind}(...)` has no option `{n}`"));
                }
                let v = one(self, "activation")?;
                let act = self.activation(v, kind == "glu")?;
                Some(if kind == "dense" {
                    FeedForward::Dense { activation: act }
                } else {
                    FeedForward::Glu { gate: act }
                })
            }
            "mixed" => {
                let combine = if positional.len() == 1 {
                    self.choice(
                        kind,
                        positional[0],
                        &[("mean", Combine::Mean), ("sum", Combine::Sum)],
                    )?
                } else {
                    self.err(*span, "`mixed(...)` takes `mean` or `sum`, e.g. `mixed(sum, branch_dropout = 0.5)`");
                    return None;
                };
                let mut branch_dropout = 0.0;
                for (n, v) in named {
                    if n == "branch_dropout" {
                        branch_dropout = self.probability("branch_dropout", v, n)?;
                    } else {
                        self.err(
                            n.span(),
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
                self.err(
                    kind.span(),
                    format!("unknown feed-forward kind `{other}`: write `dense(act)`, `glu(act)` or `mixed(mean|sum)`"),
                );
                None
            }
        }
    }

    fn heads(
        &mut self,
        key: &Ident,
        op: OpKind,
        op_span: Span,
        value: &Value,
        current: &Heads,
    ) -> Option<Heads> {
        match (op, value) {
            (OpKind::Set, Value::List(items, _)) => {
                let mut out = Vec::new();
                for item in items {
                    out.push(self.integer(key, OpKind::Set, op_span, item, 1)?);
                }
                if out.is_empty() {
                    self.err(value.span(), "`heads` needs at least one entry");
                    return None;
                }
                Some(Heads::PerLayer(out))
            }
            (_, Value::List(items, span)) => {
                if !matches!(op, OpKind::Mul | OpKind::Div) {
                    self.err(op_span, "a per-layer list can only scale heads: write `heads *= [...]` or `heads /= [...]`");
                    return None;
                }
                let n = items.len();
                let base: Vec<u64> = match current {
                    Heads::Uniform(h) => vec![*h; n],
                    Heads::PerLayer(v) if v.len() == n => v.clone(),
                    Heads::PerLayer(v) => {
                        self.err(
                            *span,
                            format!(
                                "the list has {n} entries but the base has {} per-layer heads",
                                v.len()
                            ),
                        );
                        return None;
                    }
                };
                let mut out = Vec::new();
                for (item, cur) in items.iter().zip(base) {
                    out.push(self.integer(key, op, op_span, item, cur)?);
                }
                Some(Heads::PerLayer(out))
            }
            (_, _) => match current {
                Heads::Uniform(h) => {
                    Some(Heads::Uniform(self.integer(key, op, op_span, value, *h)?))
                }
                Heads::PerLayer(v) => {
                    if op == OpKind::Set {
                        return Some(Heads::Uniform(self.integer(key, op, op_span, value, 1)?));
                    }
                    let mut out = Vec::new();
                    for cur in v {
                        out.push(self.integer(key, op, op_span, value, *cur)?);
                    }
                    Some(Heads::PerLayer(out))
                }
            },
        }
    }
}

fn fmt_number(n: Number) -> String {
    if n.is_whole() {
        (n.num / n.den).to_string()
    } else {
        format!("{}/{}", n.num, n.den)
    }
}

/// Resolve and validate a declaration.
/// `name` is the struct's name, where errors about the whole declaration point.
pub fn validate(attr: TokenStream, name: &Ident) -> (Validated, Vec<syn::Error>) {
    let (entries, mut errors) = parse_entries(attr);
    let mut c = Checker { errors: Vec::new() };

    // the base: resolved (inside a base's callback) or pending
    let mut config = Config::default();
    let mut has_base = false;
    let mut pending_base = None;
    let mut seen: Vec<(String, Span)> = Vec::new();
    for e in &entries {
        let key = e.key.to_string();
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            let mut err = syn::Error::new(e.key.span(), format!("`{key}` is given twice"));
            err.combine(syn::Error::new(*first, format!("first `{key}` here")));
            c.errors.push(err);
            continue;
        }
        seen.push((key.clone(), e.key.span()));
        match (&e.value, key.as_str()) {
            (Value::Resolved(tokens, span), "__march_base") => {
                match resolve_base(tokens.clone()) {
                    Ok(cfg) => config = cfg,
                    Err(err) => c.err(*span, format!("march internal error: unreadable base ({err}); rebuild the base's crate with the same march version")),
                }
                has_base = true;
            }
            (Value::Path(p), "base") if e.op.kind == OpKind::Set => {
                pending_base = Some(p.clone());
                has_base = true;
            }
            (_, "base") => c.err(
                e.value.span(),
                "`base` takes the name of a variant, e.g. `base = Baseline`",
            ),
            _ => {}
        }
    }
    if pending_base.is_some() && entries.iter().any(|e| e.key == "__march_base") {
        // the callback passes the resolved base; a second `base` is a user error
        if let Some(e) = entries.iter().find(|e| e.key == "base") {
            c.err(e.key.span(), "`base` is given twice");
        }
        pending_base = None;
    }
    // a variant derives from its base's name, not from its exemption
    if entries.iter().any(|e| e.key == "__march_base") {
        config.budget_exempt = None;
    }

    let mut budget_span = None;
    for e in &entries {
        let key = e.key.to_string();
        if key == "base"
            || key == "__march_base"
            || seen.iter().filter(|(k, _)| *k == key).count() > 1
        {
            continue;
        }
        if let Some(span) = apply_entry(&mut c, &mut config, e) {
            budget_span = Some(span);
        }
    }

    if !has_base && config.budget.is_none() {
        c.err(
            name.span(),
            "a variant without `base` must state its parameter budget: add `budget = <parameters>` (or derive it with `base = SomeVariant`)",
        );
    }

    errors.append(&mut c.errors);
    let overrides: Vec<TokenStream> = entries
        .iter()
        .filter(|e| e.key != "base" && e.key != "__march_base")
        .map(|e| e.tokens.clone())
        .collect();
    // the declaration's own changes, as written (the exemption is listed apart)
    let declared = entries
        .iter()
        .filter(|e| {
            !matches!(
                e.key.to_string().as_str(),
                "base" | "__march_base" | "budget_exempt"
            )
        })
        .map(|e| {
            e.tokens
                .to_string()
                .replace(" / ", "/")
                .replace(" %", "%")
                .replace("( ", "(")
                .replace(" )", ")")
        })
        .collect::<Vec<_>>()
        .join(", ");
    if pending_base.is_none() {
        errors.extend(check_consistency(&config, name.span()));
    }
    let validated = Validated {
        config,
        pending_base,
        overrides,
        declared,
        budget_span,
    };
    (validated, errors)
}

/// Checks of the complete configuration, independent of how it was written.
fn check_consistency(cfg: &Config, name: Span) -> Vec<syn::Error> {
    let mut errors = Vec::new();
    let at = cfg.heads_span.unwrap_or(name);
    let layers_at = cfg.layers_span.unwrap_or(name);
    if let Heads::PerLayer(list) = &cfg.heads {
        let n = list.len() as u64;
        if cfg.encoder_layers != cfg.decoder_layers {
            errors.push(syn::Error::new(
                at,
                format!(
                    "a per-layer `heads` list applies to encoder and decoder alike, but there are {} encoder and {} decoder layers: make them equal or give one head count",
                    cfg.encoder_layers, cfg.decoder_layers
                ),
            ));
        } else if n != cfg.encoder_layers {
            errors.push(syn::Error::new(
                at,
                format!(
                    "`heads` lists {n} layers but the model has {} encoder and {} decoder layers: give one entry per layer, or one number",
                    cfg.encoder_layers, cfg.decoder_layers
                ),
            ));
        }
    }
    if cfg.cross_attention == CrossAttention::ReuseEncoderKv
        && cfg.encoder_layers != cfg.decoder_layers
    {
        errors.push(syn::Error::new(
            layers_at,
            format!(
                "`cross_attention = reuse_encoder_kv` pairs decoder layer i with encoder layer i, but there are {} encoder and {} decoder layers: make them equal or write `cross_attention = own_kv`",
                cfg.encoder_layers, cfg.decoder_layers
            ),
        ));
    }
    if cfg.max_len == 0 || cfg.vocab < 2 {
        errors.push(syn::Error::new(
            Span::call_site(),
            "`vocab` must be at least 2 and `max_len` at least 1",
        ));
    }
    errors
}

/// Parse a resolved base (the callback's `__march_base(version, "Name", key = value, ...)`).
fn resolve_base(tokens: TokenStream) -> Result<Config, String> {
    let mut it = tokens.into_iter();
    let version = it.next().map(|t| t.to_string()).unwrap_or_default();
    if version != FORMAT_VERSION.to_string() {
        return Err(format!("format {version}, expected {FORMAT_VERSION}"));
    }
    it.next(); // ,
    let name: syn::LitStr =
        syn::parse2(it.next().map(Into::into).ok_or("no name")?).map_err(|e| e.to_string())?;
    it.next(); // ,
    let rest: TokenStream = it.collect();
    let (entries, errors) = parse_entries(rest);
    if let Some(e) = errors.first() {
        return Err(e.to_string());
    }
    let mut cfg = Config {
        base_name: Some(name.value()),
        ..Config::default()
    };
    let mut c = Checker { errors: Vec::new() };
    apply_resolved(&mut c, &mut cfg, &entries);
    match c.errors.first() {
        Some(e) => Err(e.to_string()),
        None => Ok(cfg),
    }
}

fn apply_resolved(c: &mut Checker, cfg: &mut Config, entries: &[Entry]) {
    for e in entries {
        apply_entry(c, cfg, e);
    }
    // spans of a resolved base point into the base's expansion: errors about
    // the complete configuration point at the derived variant instead
    cfg.heads_span = None;
    cfg.layers_span = None;
}

/// Apply one `key op value` entry to `config`; returns the budget's span
/// when the entry states the budget.
fn apply_entry(c: &mut Checker, config: &mut Config, e: &Entry) -> Option<Span> {
    let key = e.key.to_string();
    let mut budget_span = None;
    let (op, op_span, v) = (e.op.kind, e.op.span, &e.value);
    let numeric = matches!(
        key.as_str(),
        "dim_model"
            | "layers"
            | "encoder_layers"
            | "decoder_layers"
            | "heads"
            | "dim_qkv"
            | "dim_ff"
            | "vocab"
            | "max_len"
    );
    if op != OpKind::Set && !numeric {
        c.err(
            op_span,
            format!("`{key}` can only be set: write `{key} = ...`"),
        );
        return None;
    }
    let k = &e.key;
    match key.as_str() {
        "dim_model" => {
            config.dim_model = c
                .integer(k, op, op_span, v, config.dim_model)
                .unwrap_or(config.dim_model)
        }
        "layers" => {
            config.layers_span = Some(v.span());
            let enc = c.integer(k, op, op_span, v, config.encoder_layers);
            let dec = c.integer(k, op, op_span, v, config.decoder_layers);
            if let (Some(a), Some(b)) = (enc, dec) {
                config.encoder_layers = a;
                config.decoder_layers = b;
            }
        }
        "encoder_layers" => {
            config.layers_span = Some(v.span());
            config.encoder_layers = c
                .integer(k, op, op_span, v, config.encoder_layers)
                .unwrap_or(config.encoder_layers);
        }
        "decoder_layers" => {
            config.layers_span = Some(v.span());
            config.decoder_layers = c
                .integer(k, op, op_span, v, config.decoder_layers)
                .unwrap_or(config.decoder_layers);
        }
        "heads" => {
            if let Some(h) = c.heads(k, op, op_span, v, &config.heads) {
                config.heads = h.normalized();
                config.heads_span = Some(v.span());
            }
        }
        "dim_qkv" => {
            config.dim_qkv = c
                .integer(k, op, op_span, v, config.dim_qkv)
                .unwrap_or(config.dim_qkv)
        }
        "dim_ff" => {
            config.dim_ff = c
                .integer(k, op, op_span, v, config.dim_ff)
                .unwrap_or(config.dim_ff)
        }
        "vocab" => {
            config.vocab = c
                .integer(k, op, op_span, v, config.vocab)
                .unwrap_or(config.vocab)
        }
        "max_len" => {
            config.max_len = c
                .integer(k, op, op_span, v, config.max_len)
                .unwrap_or(config.max_len)
        }
        "dropout" => config.dropout = c.probability("dropout", v, k).unwrap_or(config.dropout),
        "ffn" => config.ffn = c.ffn(k, v).unwrap_or(config.ffn),
        "position_combine" => {
            config.position_combine = c
                .choice(k, v, &[("mean", Combine::Mean), ("sum", Combine::Sum)])
                .unwrap_or(config.position_combine)
        }
        "position_init" => {
            config.position_init = c
                .choice(
                    k,
                    v,
                    &[
                        ("scaled", PositionInit::Scaled),
                        ("unit", PositionInit::Unit),
                    ],
                )
                .unwrap_or(config.position_init)
        }
        "self_attn_residual" => config.residual.0 = c.boolean(k, v).unwrap_or(config.residual.0),
        "cross_attn_residual" => config.residual.1 = c.boolean(k, v).unwrap_or(config.residual.1),
        "ffn_residual" => config.residual.2 = c.boolean(k, v).unwrap_or(config.residual.2),
        "cross_attention" => {
            config.cross_attention = c
                .choice(
                    k,
                    v,
                    &[
                        ("reuse_encoder_kv", CrossAttention::ReuseEncoderKv),
                        ("own_kv", CrossAttention::OwnKv),
                    ],
                )
                .unwrap_or(config.cross_attention)
        }
        "attention" => {
            config.attention = c
                .choice(
                    k,
                    v,
                    &[
                        ("softmax", AttentionKind::Softmax),
                        ("uniform_encoder", AttentionKind::UniformEncoder),
                    ],
                )
                .unwrap_or(config.attention)
        }
        "budget" => {
            budget_span = Some(v.span());
            if let Some(b) = c.integer(k, op, op_span, v, 1) {
                config.budget = Some(b);
            }
        }
        "budget_on" => {
            config.budget_on = c
                .choice(
                    k,
                    v,
                    &[("total", BudgetOn::Total), ("live", BudgetOn::Live)],
                )
                .unwrap_or(config.budget_on)
        }
        "tolerance" => match v {
            Value::Percent(n, span) => {
                let t = n.as_f64();
                if t < 0.0 {
                    c.err(*span, "`tolerance` cannot be negative");
                } else {
                    config.tolerance_pct = t;
                }
            }
            _ => c.err(
                v.span(),
                "`tolerance` takes a percentage: write e.g. `tolerance = 1%`",
            ),
        },
        "budget_exempt" => match v {
            Value::Str(s) if !s.value().trim().is_empty() => config.budget_exempt = Some(s.value()),
            Value::Str(s) => c.err(
                s.span(),
                "`budget_exempt` needs a reason: say why this variant may run outside its budget",
            ),
            _ => c.wrong(k, v),
        },
        _ => {
            let hint = match nearest(&key) {
                Some(k) => format!("; did you mean `{k}`?"),
                None => {
                    let all: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                    format!("; the keys are: {}", all.join(", "))
                }
            };
            c.err(e.key.span(), format!("unknown key `{key}`{hint}"));
        }
    }
    budget_span
}
