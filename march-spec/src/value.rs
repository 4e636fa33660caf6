//! What a declaration's entry holds, without the Rust syntax around it: the
//! macro parses tokens into these values (keeping their spans apart) and the
//! keys of [`crate::keys`] read them.

use std::fmt;

/// An exact rational number, from `12`, `0.1`, `1.5` or `2/3`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub num: i128,
    pub den: i128,
}

impl Number {
    pub const fn whole(n: i128) -> Self {
        Number { num: n, den: 1 }
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    pub fn is_whole(self) -> bool {
        self.num % self.den == 0
    }

    /// A decimal literal's digits (`0.125`, `30_000`); `None` for exponents.
    pub fn from_decimal(text: &str) -> Option<Self> {
        let text = text.replace('_', "");
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        if frac.contains(['e', 'E']) || int.contains(['e', 'E']) {
            return None;
        }
        let den = 10i128.checked_pow(frac.len() as u32)?;
        let digits: i128 = format!("{int}{frac}").parse().ok()?;
        Some(Number { num: digits, den })
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_whole() {
            write!(f, "{}", self.num / self.den)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

/// The operator of an entry: `=`, or one relative to the base.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Set => "=",
            Op::Add => "+=",
            Op::Sub => "-=",
            Op::Mul => "*=",
            Op::Div => "/=",
        }
    }
}

/// A value as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Number(Number),
    /// `1%`
    Percent(Number),
    Str(String),
    Bool(bool),
    /// `relu`, `Baseline`, `march_models::Baseline`
    Name(String),
    /// `glu(silu)`, `mixed(sum, branch_dropout = 0.5)`
    Call(String, Vec<Arg>),
    /// `[12, 8, 4]`
    List(Vec<Value>),
}

/// An argument of a call: `silu`, or `branch_dropout = 0.5`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<String>,
    pub value: Value,
}

impl Value {
    /// A short description of what was written, for "takes X, found Y".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Number(..) => "a number",
            Value::Percent(..) => "a percentage",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Name(_) => "a name",
            Value::Call(..) => "a call",
            Value::List(..) => "a list",
        }
    }
}

/// Where in an entry a problem is: the macro turns it into a span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum At {
    /// The entry's key.
    Key,
    /// The entry's operator.
    Op,
    /// A value: the entry's own (empty path), or one nested in it (the
    /// indices of list items and call arguments, outermost first).
    Value(Vec<usize>),
    /// The name of a call (`mixed` in `mixed(sum)`), at that path.
    CallName(Vec<usize>),
    /// The name of a named argument (`branch_dropout = ...`), at that path.
    ArgName(Vec<usize>),
}

impl At {
    /// The entry's whole value.
    pub fn value() -> At {
        At::Value(Vec::new())
    }
}

/// A message about an entry, and where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub at: At,
}

impl Problem {
    pub fn new(at: At, message: impl Into<String>) -> Self {
        Problem {
            message: message.into(),
            at,
        }
    }

    /// A problem with the entry's whole value.
    pub fn value(message: impl Into<String>) -> Self {
        Problem::new(At::value(), message)
    }
}
