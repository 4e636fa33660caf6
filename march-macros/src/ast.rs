//! Parsing: the attribute's tokens into spanned entries, nothing checked yet
//! beyond syntax.
//!
//! ```text
//! declaration := entry (, entry)* ,?
//! entry       := key op value
//! op          := = | += | -= | *= | /=
//! value       := number | number % | "string" | true | false | path
//!              | name ( arg, ... ) | [ value, ... ]
//! number      := literal | literal / literal
//! ```

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::parse::{Parse, ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{bracketed, parenthesized, Ident, LitBool, LitFloat, LitInt, LitStr, Path, Token};

/// One `key op value` of a declaration, with the tokens it was written as.
pub struct Entry {
    pub key: Ident,
    pub op: Op,
    pub value: Value,
    pub tokens: TokenStream,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Copy)]
pub struct Op {
    pub kind: OpKind,
    pub span: Span,
}

impl OpKind {
    pub fn symbol(self) -> &'static str {
        match self {
            OpKind::Set => "=",
            OpKind::Add => "+=",
            OpKind::Sub => "-=",
            OpKind::Mul => "*=",
            OpKind::Div => "/=",
        }
    }
}

/// An exact rational number, from `12`, `0.1`, `1.5` or `2/3`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    pub num: i128,
    pub den: i128,
}

impl Number {
    pub fn whole(n: i128) -> Self {
        Number { num: n, den: 1 }
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    pub fn is_whole(self) -> bool {
        self.num % self.den == 0
    }

    fn from_decimal(text: &str) -> Option<Self> {
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

pub enum Value {
    Number(Number, Span),
    /// `1%`
    Percent(Number, Span),
    Str(LitStr),
    Bool(LitBool),
    Path(Path),
    Call(Ident, Vec<Arg>, Span),
    List(Vec<Value>, Span),
    /// `__march_base(...)`: a base's resolved configuration (internal).
    Resolved(TokenStream, Span),
}

/// An argument of a call: `silu` or `branch_dropout = 0.5`.
pub enum Arg {
    Positional(Value),
    Named(Ident, Value),
}

impl Value {
    pub fn span(&self) -> Span {
        match self {
            Value::Number(_, s) | Value::Percent(_, s) => *s,
            Value::Str(s) => s.span(),
            Value::Bool(b) => b.span,
            Value::Path(p) => p.span(),
            Value::Call(_, _, s) | Value::List(_, s) | Value::Resolved(_, s) => *s,
        }
    }

    /// A short description of what was written, for "expected X, found Y".
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Number(..) => "a number",
            Value::Percent(..) => "a percentage",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Path(_) => "a name",
            Value::Call(..) => "a call",
            Value::List(..) => "a list",
            Value::Resolved(..) => "a resolved base",
        }
    }
}

fn parse_number(input: ParseStream) -> syn::Result<(Number, Span)> {
    fn literal(input: ParseStream) -> syn::Result<(Number, Span)> {
        if input.peek(LitInt) {
            let lit: LitInt = input.parse()?;
            let n: i128 = lit.base10_parse()?;
            Ok((Number::whole(n), lit.span()))
        } else {
            let lit: LitFloat = input.parse()?;
            if !lit.suffix().is_empty() {
                return Err(syn::Error::new(
                    lit.span(),
                    "write the number without a suffix",
                ));
            }
            let n = Number::from_decimal(lit.base10_digits()).ok_or_else(|| {
                syn::Error::new(
                    lit.span(),
                    "write the number as a plain decimal, e.g. `0.1`",
                )
            })?;
            Ok((n, lit.span()))
        }
    }
    let (a, span) = literal(input)?;
    if input.peek(Token![/]) && !input.peek(Token![/=]) {
        input.parse::<Token![/]>()?;
        let (b, bspan) = literal(input)?;
        if b.num == 0 {
            return Err(syn::Error::new(bspan, "division by zero"));
        }
        let span = span.join(bspan).unwrap_or(span);
        return Ok((
            Number {
                num: a.num * b.den,
                den: a.den * b.num,
            },
            span,
        ));
    }
    Ok((a, span))
}

impl Parse for Value {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(LitInt) || input.peek(LitFloat) {
            let (n, span) = parse_number(input)?;
            if input.peek(Token![%]) {
                let pct: Token![%] = input.parse()?;
                return Ok(Value::Percent(n, span.join(pct.span).unwrap_or(span)));
            }
            return Ok(Value::Number(n, span));
        }
        if input.peek(LitStr) {
            return Ok(Value::Str(input.parse()?));
        }
        if input.peek(LitBool) {
            return Ok(Value::Bool(input.parse()?));
        }
        if input.peek(syn::token::Bracket) {
            let content;
            let bracket = bracketed!(content in input);
            let items = content.parse_terminated(Value::parse, Token![,])?;
            return Ok(Value::List(
                items.into_iter().collect(),
                bracket.span.join(),
            ));
        }
        if input.peek(Ident) && input.peek2(syn::token::Paren) {
            let name: Ident = input.parse()?;
            let content;
            let paren = parenthesized!(content in input);
            let span = name.span().join(paren.span.join()).unwrap_or(name.span());
            if name == "__march_base" {
                return Ok(Value::Resolved(content.parse()?, span));
            }
            let args = content.parse_terminated(Arg::parse, Token![,])?;
            return Ok(Value::Call(name, args.into_iter().collect(), span));
        }
        if input.peek(Ident) || input.peek(Token![::]) || input.peek(Token![crate]) {
            return Ok(Value::Path(input.call(Path::parse_mod_style)?));
        }
        Err(input.error(
            "expected a value: a number, `1%`, a string, `true`/`false`, a name, `kind(args)` or `[list]`",
        ))
    }
}

impl Parse for Arg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.peek(Ident) && input.peek2(Token![=]) {
            let name: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            return Ok(Arg::Named(name, input.parse()?));
        }
        Ok(Arg::Positional(input.parse()?))
    }
}

fn parse_entry(tokens: TokenStream) -> syn::Result<Entry> {
    let raw = tokens.clone();
    let parser = |input: ParseStream| -> syn::Result<Entry> {
        let key: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if key == "__march_base" {
            let content;
            let paren = parenthesized!(content in input);
            let value = Value::Resolved(content.parse()?, paren.span.join());
            return Ok(Entry {
                op: Op {
                    kind: OpKind::Set,
                    span: key.span(),
                },
                key,
                value,
                tokens: TokenStream::new(),
            });
        }
        let lookahead = input.lookahead1();
        let kind = if lookahead.peek(Token![+=]) {
            input.parse::<Token![+=]>().map(|t| (OpKind::Add, t.span()))
        } else if lookahead.peek(Token![-=]) {
            input.parse::<Token![-=]>().map(|t| (OpKind::Sub, t.span()))
        } else if lookahead.peek(Token![*=]) {
            input.parse::<Token![*=]>().map(|t| (OpKind::Mul, t.span()))
        } else if lookahead.peek(Token![/=]) {
            input.parse::<Token![/=]>().map(|t| (OpKind::Div, t.span()))
        } else if lookahead.peek(Token![=]) {
            input.parse::<Token![=]>().map(|t| (OpKind::Set, t.span))
        } else {
            return Err(lookahead.error());
        }?;
        let value: Value = input.parse()?;
        if !input.is_empty() {
            return Err(input.error("expected `,` after the value"));
        }
        Ok(Entry {
            key,
            op: Op {
                kind: kind.0,
                span: kind.1,
            },
            value,
            tokens: raw,
        })
    };
    parser.parse2(tokens)
}

/// Split the attribute at its top-level commas and parse each entry. Every
/// malformed entry is reported, the others are kept.
pub fn parse_entries(attr: TokenStream) -> (Vec<Entry>, Vec<syn::Error>) {
    let mut chunks: Vec<TokenStream> = vec![TokenStream::new()];
    for tt in attr {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => chunks.push(TokenStream::new()),
            _ => chunks.last_mut().unwrap().extend([tt]),
        }
    }
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
        match parse_entry(chunk) {
            Ok(e) => entries.push(e),
            Err(e) => errors.push(e),
        }
    }
    (entries, errors)
}
