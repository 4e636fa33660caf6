//! `#[march_model(...)]`: a variant declaration expanded into a statically
//! shaped dfdx encoder-decoder with a compile-time parameter budget.
//!
//! The implementation is split like thiserror's: `ast` parses the attribute
//! into spanned entries, `valid` applies them to the base through the
//! vocabulary of `march-spec` (which owns every key, its values, the counts
//! and the checks) and turns its problems into spanned errors, and `expand`
//! generates the items. The macro does not spell the vocabulary itself.
//!
//! A derived variant (`base = Baseline`) cannot see its base's attribute, so
//! every variant also emits a hidden `macro_rules!` callback, re-exported under
//! the variant's own name in the macro namespace, that replays its resolved
//! architecture: `#[march_model(base = Baseline, heads = 16)] struct X;`
//! expands to `Baseline! { (heads = 16) struct X; }`, which expands to
//! `#[march_model(__march_base(<Baseline resolved>), heads = 16)] struct X;`.
//! The macro then always sees a complete configuration and can report errors
//! with numbers. See the README's DSL reference for the keys.

mod ast;
mod expand;
mod valid;

use proc_macro::TokenStream;
use quote::quote;
use syn::ItemStruct;

#[proc_macro_attribute]
pub fn march_model(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<ItemStruct>(item) {
        Ok(item) => item,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "#[march_model] goes on a unit struct, e.g. `pub struct MyVariant;`",
            )
            .to_compile_error()
            .into()
        }
    };
    let mut errors = Vec::new();
    if !matches!(item.fields, syn::Fields::Unit) {
        errors.push(syn::Error::new_spanned(
            &item.fields,
            "a march variant is a unit struct: remove the fields (`pub struct MyVariant;`)",
        ));
    }
    if !item.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a march variant cannot be generic: its dimensions are declared in the attribute",
        ));
    }
    let (validated, mut errs) = valid::validate(attr.into(), &item.ident, &doc_of(&item));
    errors.append(&mut errs);

    if !errors.is_empty() {
        let errors = errors.into_iter().map(|e| e.to_compile_error());
        // keep the struct so that code naming it does not add unrelated
        // errors, and name the base so that its import is not reported unused
        let base = validated.pending_base.as_ref().map(
            |b| quote!(const _: ::core::marker::PhantomData<#b> = ::core::marker::PhantomData;),
        );
        return quote!(#item #base #(#errors)*).into();
    }
    if validated.pending_base.is_some() {
        return expand::forward_to_base(&validated, &item).into();
    }
    expand::variant(&validated, &item).into()
}

/// The struct's doc comment, one line.
fn doc_of(item: &ItemStruct) -> String {
    let mut lines = Vec::new();
    for attr in &item.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                lines.push(s.value().trim().to_string());
            }
        }
    }
    lines.join(" ").trim().to_string()
}
