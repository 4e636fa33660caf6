//! Validation: apply a declaration's entries to its base (or to the
//! defaults) through the vocabulary of `march-spec`, check the complete
//! architecture, and turn every problem into an error at its token.

use march_spec::check::{budget_error, check};
use march_spec::keys;
use march_spec::{Arch, FORMAT_VERSION};
use proc_macro2::{Span, TokenStream};
use syn::{Ident, Path};

use crate::ast::{parse_entries, Entry, OpKind, Value};

/// The outcome of validating one declaration.
pub struct Validated {
    /// The resolved architecture (complete when there is no pending base).
    pub arch: Arch,
    /// The base's path when the declaration names one and no resolved base
    /// has been supplied yet: the expansion must call the base first.
    pub pending_base: Option<Path>,
    /// The entries that are not `base`, as written, to forward to the base.
    pub overrides: Vec<TokenStream>,
}

/// Resolve and validate a declaration of the struct `name` (where errors
/// about the whole declaration point) with doc comment `doc`.
pub fn validate(attr: TokenStream, name: &Ident, doc: &str) -> (Validated, Vec<syn::Error>) {
    let (entries, mut errors) = parse_entries(attr);

    let mut arch = Arch::DEFAULT;
    let mut base_name = None;
    let mut has_base = false;
    let mut pending_base = None;
    let mut seen: Vec<(String, Span)> = Vec::new();
    let mut applied = Vec::new();
    for e in &entries {
        let key = e.key.to_string();
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            let mut err = syn::Error::new(e.key.span(), format!("`{key}` is given twice"));
            err.combine(syn::Error::new(*first, format!("first `{key}` here")));
            errors.push(err);
            continue;
        }
        seen.push((key.clone(), e.key.span()));
        match (&e.value, key.as_str()) {
            (Value::Resolved(tokens, span), "__march_base") => {
                match resolve_base(tokens.clone()) {
                    Ok((base, name)) => {
                        arch = base;
                        base_name = Some(name);
                    }
                    Err(err) => errors.push(syn::Error::new(*span, format!("march internal error: unreadable base ({err}); rebuild the base's crate with the same march version"))),
                }
                has_base = true;
            }
            (Value::Path(p), "base") if e.op.kind == OpKind::Set => {
                pending_base = Some(p.clone());
                has_base = true;
            }
            (_, "base") => errors.push(syn::Error::new(
                e.value.span(),
                "`base` takes the name of a variant, e.g. `base = Baseline`",
            )),
            _ => applied.push(e),
        }
    }
    if pending_base.is_some() && base_name.is_some() {
        // the callback passes the resolved base; a second `base` is a user error
        if let Some(e) = entries.iter().find(|e| e.key == "base") {
            errors.push(syn::Error::new(e.key.span(), "`base` is given twice"));
        }
        pending_base = None;
    }

    for e in &applied {
        for p in keys::apply(&mut arch, &e.key.to_string(), e.op.kind, &e.value.to_spec()) {
            errors.push(syn::Error::new(e.span_of(&p.at), p.message));
        }
    }

    let overrides: Vec<TokenStream> = entries
        .iter()
        .filter(|e| e.key != "base" && e.key != "__march_base")
        .map(|e| e.tokens.clone())
        .collect();
    if pending_base.is_none() {
        arch = arch.finish(
            &name.to_string(),
            base_name.as_deref(),
            doc,
            &declared(&entries),
        );
        // an inconsistency points at the last entry that wrote one of its keys
        let span_of = |keys: &[&str]| {
            applied
                .iter()
                .rev()
                .find(|e| keys.iter().any(|k| e.key == k))
                .map_or(name.span(), |e| e.value.span())
        };
        for c in check(&arch, has_base) {
            errors.push(syn::Error::new(span_of(c.keys), c.message));
        }
        if errors.is_empty() {
            if let Some(msg) = budget_error(&arch) {
                let at = applied
                    .iter()
                    .find(|e| e.key == "budget")
                    .map_or(name.span(), |e| e.value.span());
                errors.push(syn::Error::new(at, msg));
            }
        }
    }
    let validated = Validated {
        arch,
        pending_base,
        overrides,
    };
    (validated, errors)
}

/// The declaration's own changes, as written, for `march list` (the budget
/// exemption is listed apart).
fn declared(entries: &[Entry]) -> String {
    entries
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
        .join(", ")
}

/// Parse a resolved base (the callback's `__march_base(VERSION, "Name", key = value, ...)`).
fn resolve_base(tokens: TokenStream) -> Result<(Arch, String), String> {
    let mut it = tokens.into_iter();
    let version = it.next().map(|t| t.to_string()).unwrap_or_default();
    if version != FORMAT_VERSION.to_string() {
        return Err(format!("format {version}, expected {FORMAT_VERSION}"));
    }
    it.next(); // ,
    let name: syn::LitStr =
        syn::parse2(it.next().map(Into::into).ok_or("no name")?).map_err(|e| e.to_string())?;
    it.next(); // ,
    let (entries, errors) = parse_entries(it.collect());
    if let Some(e) = errors.first() {
        return Err(e.to_string());
    }
    let mut arch = Arch::DEFAULT;
    for e in &entries {
        if let Some(p) =
            keys::apply(&mut arch, &e.key.to_string(), e.op.kind, &e.value.to_spec()).first()
        {
            return Err(p.message.clone());
        }
    }
    Ok((arch, name.value()))
}
