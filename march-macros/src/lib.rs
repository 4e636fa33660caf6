//! `#[march_model(...)]`: a variant declaration expanded into a statically
//! shaped dfdx encoder-decoder with a compile-time parameter budget.
//!
//! The implementation is split like thiserror's: [`ast`] parses the attribute
//! into spanned entries, [`valid`] applies them to the base and checks the
//! complete configuration (collecting every error), [`config`] counts the
//! parameters, and [`expand`] generates the items.
//!
//! A derived variant (`base = Baseline`) cannot see its base's attribute, so
//! every variant also emits a hidden `macro_rules!` callback, re-exported under
//! the variant's own name in the macro namespace, that replays its resolved
//! configuration: `#[march_model(base = Baseline, heads = 16)] struct X;`
//! expands to `Baseline! { (heads = 16) struct X; }`, which expands to
//! `#[march_model(__march_base(<Baseline resolved>), heads = 16)] struct X;`.
//! The macro then always sees a complete configuration and can report errors
//! with numbers. See the README's DSL reference for the keys.

mod ast;
mod config;
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
    let (validated, mut errs) = valid::validate(attr.into(), &item.ident);
    errors.append(&mut errs);

    let fail = |errors: Vec<syn::Error>| {
        let errors = errors.into_iter().map(|e| e.to_compile_error());
        // keep the struct so that code naming it does not add unrelated
        // errors, and name the base so that its import is not reported unused
        let base = validated.pending_base.as_ref().map(
            |b| quote!(const _: ::core::marker::PhantomData<#b> = ::core::marker::PhantomData;),
        );
        quote!(#item #base #(#errors)*).into()
    };
    if !errors.is_empty() {
        return fail(errors);
    }
    if validated.pending_base.is_some() {
        return expand::forward_to_base(&validated, &item).into();
    }
    expand::variant(&validated, &item).into()
}
