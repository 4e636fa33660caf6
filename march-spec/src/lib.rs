//! march's architecture vocabulary, in one place and without dependencies.
//!
//! - [`keys`]: the DSL's keys — what each takes, its default, its meaning, and
//!   how it changes an [`Arch`] — and [`keys::to_dsl`], the resolved form a
//!   base hands to the variants derived from it.
//! - [`arch`]: the resolved architecture ([`Arch`]) and its value types.
//! - [`count`]: which parameters exist and which are live (the dead-weight
//!   rule), parameter counts and FLOPs.
//! - [`check`]: checks of a complete declaration and the budget check.
//!
//! `#[march_model]` parses a declaration into [`Value`]s, applies them here
//! and reports the [`Problem`]s with spans; `march_runtime::arch` re-exports
//! this crate for the model and the tools.

pub mod arch;
pub mod check;
pub mod count;
pub mod keys;
pub mod rust;
pub mod value;

pub use arch::*;
pub use count::{ParamTensor, Side, REF_CHUNK_TOKENS, REF_DECODER_LEN, REF_ENCODER_LEN};
pub use value::{Arg, At, Number, Op, Problem, Value};

/// Version of the resolved-base format (`__march_base(VERSION, "Name", entries)`).
pub const FORMAT_VERSION: u32 = 2;

impl Arch {
    /// The architecture once every entry is applied: its identity, and its
    /// parameter counts when its per-layer lists fit its layers (see
    /// [`check::check`]).
    pub fn finish(mut self, name: &str, base: Option<&str>, doc: &str, declared: &str) -> Arch {
        self.name = keys::leak(name.to_string());
        self.base = base.map(|b| keys::leak(b.to_string()));
        self.doc = keys::leak(doc.to_string());
        self.declared = keys::leak(declared.to_string());
        if check::lists_fit(&self) {
            self.params = self.count_params();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declare(base: Arch, entries: &[(&str, Op, Value)]) -> (Arch, Vec<Problem>) {
        let mut a = base;
        let mut problems = Vec::new();
        for (k, op, v) in entries {
            problems.extend(keys::apply(&mut a, k, *op, v));
        }
        (a.finish("Test", None, "", ""), problems)
    }

    fn n(x: i128) -> Value {
        Value::Number(Number::whole(x))
    }

    #[test]
    fn the_default_is_the_original_baseline() {
        let a = Arch::DEFAULT.finish("Baseline", None, "", "");
        assert_eq!(a.params.total, 36_340_224);
        // reuse_encoder_kv: the last encoder layer's w_q, w_o, ffn norm, ffn
        // and the final encoder norm are dead
        let m = 512u64;
        assert_eq!(a.params.dead(), 2 * m * 512 + m + 2 * m * 2048 + m);
    }

    #[test]
    fn relative_entries_and_lists() {
        let (a, p) = declare(
            Arch::DEFAULT,
            &[
                ("heads", Op::Mul, Value::List(vec![n(3), n(2), n(1)])),
                ("dim_ff", Op::Div, n(2)),
            ],
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(a.heads, PerLayer::Each(&[24, 16, 8]));
        assert_eq!(a.dim_ff, PerLayer::All(1024));
        let (_, p) = declare(Arch::DEFAULT, &[("heads", Op::Sub, n(8))]);
        assert_eq!(p[0].at, At::Op);
        assert_eq!(
            p[0].message,
            "`heads` must be at least 1, but 8 - 8 leaves 0"
        );
    }

    #[test]
    fn problems_point_into_the_value() {
        let (_, p) = declare(
            Arch::DEFAULT,
            &[(
                "ffn",
                Op::Set,
                Value::Call(
                    "mixed".into(),
                    vec![
                        Arg {
                            name: None,
                            value: Value::Name("sum".into()),
                        },
                        Arg {
                            name: Some("drop".into()),
                            value: n(1),
                        },
                    ],
                ),
            )],
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].at, At::ArgName(vec![1]));
        let mut a = Arch::DEFAULT;
        assert!(keys::apply(&mut a, "hedas", Op::Set, &n(1))[0]
            .message
            .contains("did you mean `heads`"));
    }

    #[test]
    fn the_dsl_form_recreates_the_architecture() {
        let (a, p) = declare(
            Arch::DEFAULT,
            &[
                ("heads", Op::Set, Value::List(vec![n(12), n(8), n(4)])),
                (
                    "ffn",
                    Op::Set,
                    Value::Call(
                        "glu".into(),
                        vec![Arg {
                            name: None,
                            value: Value::Name("silu".into()),
                        }],
                    ),
                ),
                ("dropout", Op::Set, Value::Number(Number { num: 1, den: 4 })),
                ("budget", Op::Set, n(1000)),
            ],
        );
        assert!(p.is_empty());
        let text = keys::to_dsl(&a);
        assert!(text.contains("heads = [12, 8, 4]"), "{text}");
        assert!(text.contains("ffn = glu(silu)"), "{text}");
        assert!(text.contains("dropout = 0.25"), "{text}");
        assert!(text.contains("budget = 1000"), "{text}");
        assert!(text.contains("tolerance = 1.0%"), "{text}");
    }

    #[test]
    fn position_kinds_and_norm_gains_are_counted() {
        let base = Arch::DEFAULT.finish("Baseline", None, "", "").params;
        let name = |n: &str| Value::Name(n.into());
        let (rel, p) = declare(Arch::DEFAULT, &[("position", Op::Set, name("t5_relative"))]);
        assert!(p.is_empty(), "{p:?}");
        // no table; a [32, 8] table per stack
        assert_eq!(rel.params.total, base.total - 1024 * 512 + 2 * 32 * 8);
        assert_eq!(rel.params.dead(), base.dead());
        let (rope, _) = declare(Arch::DEFAULT, &[("position", Op::Set, name("rope"))]);
        assert_eq!(rope.params.total, base.total - 1024 * 512);
        // 17 norms: 2 per encoder layer, 3 per decoder layer, one after each stack
        let (scalar, _) = declare(Arch::DEFAULT, &[("norm_gain", Op::Set, name("scalar"))]);
        assert_eq!(scalar.params.total, base.total - 17 * 511);
        // a one-layer encoder whose keys and values feed the decoder takes no
        // softmax of its own: its table is dead
        let (one, _) = declare(
            Arch::DEFAULT,
            &[
                ("layers", Op::Set, n(1)),
                ("position", Op::Set, name("t5_relative")),
            ],
        );
        assert_eq!(
            one.tensors()
                .iter()
                .find(|t| t.name == "relative_bias.encoder")
                .map(|t| t.live),
            Some(false)
        );
        // options round-trip through the DSL form
        let opts = Value::Call(
            "rope".into(),
            vec![Arg {
                name: Some("theta".into()),
                value: Value::Number(Number::whole(500_000)),
            }],
        );
        let (r, p) = declare(Arch::DEFAULT, &[("position", Op::Set, opts)]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(r.position.kind, PositionKind::Rope { theta: 500_000.0 });
        assert!(keys::to_dsl(&r).contains("position = rope(theta = 500000.0)"));
        assert!(keys::to_dsl(&rel).contains("position = t5_relative,"));
    }

    #[test]
    fn inconsistencies() {
        let (a, _) = declare(Arch::DEFAULT, &[("encoder_layers", Op::Add, n(1))]);
        let c = check::check(&a, true);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].message.contains("reuse_encoder_kv"),
            "{}",
            c[0].message
        );
        assert!(check::check(&Arch::DEFAULT, false)[0]
            .message
            .contains("budget"));
    }

    #[test]
    fn the_rust_expression_names_every_field() {
        let a = Arch::DEFAULT.finish("X", Some("Baseline"), "doc \"q\"", "heads = 4");
        let e = a.rust_expr();
        assert!(
            e.starts_with("::march_runtime::arch::Arch { name: \"X\", "),
            "{e}"
        );
        assert!(
            e.contains("heads: ::march_runtime::arch::PerLayer::All(8)"),
            "{e}"
        );
        assert!(e.contains("doc: \"doc \\\"q\\\"\""), "{e}");
        assert!(e.contains("dropout: 0.1f64"), "{e}");
        assert!(
            e.contains("params: ::march_runtime::arch::ParamCount { total: 36340224, "),
            "{e}"
        );
    }
}
