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

pub use march_spec::{Number, Op as OpKind};

/// One `key op value` of a declaration, with the tokens it was written as.
pub struct Entry {
    pub key: Ident,
    pub op: Op,
    pub value: Value,
    pub tokens: TokenStream,
}

#[derive(Clone, Copy)]
pub struct Op {
    pub kind: OpKind,
    pub span: Span,
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

impl Value {
    /// The value without its spans, as the vocabulary reads it.
    pub fn to_spec(&self) -> march_spec::Value {
        use march_spec::Value as V;
        match self {
            Value::Number(n, _) => V::Number(*n),
            Value::Percent(n, _) => V::Percent(*n),
            Value::Str(s) => V::Str(s.value()),
            Value::Bool(b) => V::Bool(b.value),
            Value::Path(p) => V::Name(path_text(p)),
            Value::Call(name, args, _) => V::Call(
                name.to_string(),
                args.iter()
                    .map(|a| match a {
                        Arg::Positional(v) => march_spec::Arg {
                            name: None,
                            value: v.to_spec(),
                        },
                        Arg::Named(n, v) => march_spec::Arg {
                            name: Some(n.to_string()),
                            value: v.to_spec(),
                        },
                    })
                    .collect(),
            ),
            Value::List(items, _) => V::List(items.iter().map(Value::to_spec).collect()),
            Value::Resolved(..) => V::Name("__march_base".into()),
        }
    }

    /// The value at `path` (list items and call arguments, outermost first).
    fn nested(&self, path: &[usize]) -> Option<&Value> {
        let Some((&i, rest)) = path.split_first() else {
            return Some(self);
        };
        match self {
            Value::List(items, _) => items.get(i)?.nested(rest),
            Value::Call(_, args, _) => match args.get(i)? {
                Arg::Positional(v) | Arg::Named(_, v) => v.nested(rest),
            },
            _ => None,
        }
    }
}

fn path_text(p: &Path) -> String {
    let segments: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
    let lead = if p.leading_colon.is_some() { "::" } else { "" };
    format!("{lead}{}", segments.join("::"))
}

impl Entry {
    /// Where in this entry `at` points.
    pub fn span_of(&self, at: &march_spec::At) -> Span {
        use march_spec::At;
        let whole = self.value.span();
        match at {
            At::Key => self.key.span(),
            At::Op => self.op.span,
            At::Value(path) => self.value.nested(path).map_or(whole, Value::span),
            At::CallName(path) => match self.value.nested(path) {
                Some(Value::Call(name, ..)) => name.span(),
                _ => whole,
            },
            At::ArgName(path) => {
                let Some((&last, outer)) = path.split_last() else {
                    return whole;
                };
                match self.value.nested(outer) {
                    Some(Value::Call(_, args, _)) => match args.get(last) {
                        Some(Arg::Named(n, _)) => n.span(),
                        _ => whole,
                    },
                    _ => whole,
                }
            }
        }
    }
}
