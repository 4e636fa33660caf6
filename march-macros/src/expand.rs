//! Expansion: a validated configuration into the variant's items.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemStruct;

use crate::config::{
    Activation, AttentionKind, BudgetOn, Combine, Config, Counts, CrossAttention, FeedForward,
    PositionInit,
};
use crate::valid::Validated;

/// `34764800` → `34,764,800`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The derived variant: hand the declaration to its base's callback, which
/// calls `#[march_model]` again with the base's resolved configuration.
pub fn forward_to_base(v: &Validated, item: &ItemStruct) -> TokenStream {
    let base = v.pending_base.as_ref().expect("a pending base");
    let overrides = &v.overrides;
    quote! {
        #base! { ( #(#overrides),* ) #item }
    }
}

/// The budget check: `None` when the variant is within its budget (or exempt).
pub fn budget_error(
    cfg: &Config,
    counts: Counts,
    name: &syn::Ident,
    at: Option<Span>,
) -> Option<syn::Error> {
    let budget = cfg.budget?;
    let (count, what) = match cfg.budget_on {
        BudgetOn::Total => (counts.total, "parameters"),
        BudgetOn::Live => (counts.live, "live parameters"),
    };
    let deviation = (count as f64 - budget as f64) / budget as f64 * 100.0;
    if deviation.abs() <= cfg.tolerance_pct || cfg.budget_exempt.is_some() {
        return None;
    }
    let direction = if deviation > 0.0 { "over" } else { "under" };
    let msg = format!(
        "`{name}` has {} {what}, {:.2}% {direction} its budget of {} (tolerance ±{}%); \
         change the declaration, widen it with `tolerance = {:.1}%`, or declare \
         `budget_exempt = \"<reason>\"` to run it anyway",
        thousands(count),
        deviation.abs(),
        thousands(budget),
        cfg.tolerance_pct,
        (deviation.abs() * 10.0).ceil() / 10.0,
    );
    Some(syn::Error::new(at.unwrap_or_else(|| name.span()), msg))
}

fn runtime() -> TokenStream {
    quote!(::march_runtime)
}

/// A stack of layer types: a tuple of up to six, nested beyond.
fn stack(layers: Vec<TokenStream>) -> TokenStream {
    if layers.len() <= 6 {
        return quote!((#(#layers,)*));
    }
    let chunks: Vec<TokenStream> = layers.chunks(6).map(|c| stack(c.to_vec())).collect();
    stack(chunks)
}

fn model_type(cfg: &Config) -> TokenStream {
    let rt = runtime();
    let lit = |n: u64| Literal::usize_unsuffixed(n as usize);
    let (v, m, l, dqk, ff) = (
        lit(cfg.vocab),
        lit(cfg.dim_model),
        lit(cfg.max_len),
        lit(cfg.dim_qkv),
        lit(cfg.dim_ff),
    );
    let ffn = match cfg.ffn {
        FeedForward::Dense { .. } => quote!(#rt::layers::DenseFfn<#m, #ff, E, D>),
        FeedForward::Glu { .. } => quote!(#rt::layers::GluFfn<#m, #ff, E, D>),
        FeedForward::MixedAct { .. } => quote!(#rt::layers::MixedActFfn<#m, #ff, E, D>),
    };
    let enc: Vec<TokenStream> = cfg
        .encoder_heads()
        .into_iter()
        .map(|h| {
            let (hh, i) = (lit(h), lit(h * cfg.dim_qkv));
            quote!(#rt::model::EncoderLayer<#m, #hh, #dqk, #i, #ffn, E, D>)
        })
        .collect();
    let dec: Vec<TokenStream> = cfg
        .decoder_heads()
        .into_iter()
        .map(|h| {
            let (hh, i) = (lit(h), lit(h * cfg.dim_qkv));
            let cross = match cfg.cross_attention {
                CrossAttention::ReuseEncoderKv => {
                    quote!(#rt::layers::CrossAttentionReuseKv<#m, #hh, #dqk, #i, E, D>)
                }
                CrossAttention::OwnKv => {
                    quote!(#rt::layers::CrossAttentionOwnKv<#m, #hh, #dqk, #i, E, D>)
                }
            };
            quote!(#rt::model::DecoderLayer<#m, #hh, #dqk, #i, #cross, #ffn, E, D>)
        })
        .collect();
    let (enc, dec) = (stack(enc), stack(dec));
    quote!(#rt::model::EncoderDecoder<#v, #m, #l, #enc, #dec, E, D>)
}

fn arch_expr(
    cfg: &Config,
    v: &Validated,
    name: &syn::Ident,
    doc: &str,
    counts: Counts,
) -> TokenStream {
    let rt = runtime();
    let a = quote!(#rt::arch);
    let lit = |n: u64| Literal::usize_unsuffixed(n as usize);
    let name_str = name.to_string();
    let base = match &cfg.base_name {
        Some(b) => quote!(::core::option::Option::Some(#b)),
        None => quote!(::core::option::Option::None),
    };
    let declared = &v.declared;
    let enc_heads = cfg.encoder_heads().into_iter().map(lit);
    let dec_heads = cfg.decoder_heads().into_iter().map(lit);
    let act = |x: Activation| match x {
        Activation::Relu => quote!(#a::Activation::Relu),
        Activation::Gelu => quote!(#a::Activation::Gelu),
        Activation::Silu => quote!(#a::Activation::Silu),
        Activation::Sigmoid => quote!(#a::Activation::Sigmoid),
    };
    let combine = |c: Combine| match c {
        Combine::Mean => quote!(#a::Combine::Mean),
        Combine::Sum => quote!(#a::Combine::Sum),
    };
    let ffn = match cfg.ffn {
        FeedForward::Dense { activation } => {
            let x = act(activation);
            quote!(#a::FeedForward::Dense { activation: #x })
        }
        FeedForward::Glu { gate } => {
            let x = act(gate);
            quote!(#a::FeedForward::Glu { gate: #x })
        }
        FeedForward::MixedAct {
            combine: c,
            branch_dropout,
        } => {
            let c = combine(c);
            quote!(#a::FeedForward::MixedAct { combine: #c, branch_dropout: #branch_dropout })
        }
    };
    let pc = combine(cfg.position_combine);
    let pi = match cfg.position_init {
        PositionInit::Scaled => quote!(#a::PositionInit::Scaled),
        PositionInit::Unit => quote!(#a::PositionInit::Unit),
    };
    let (r0, r1, r2) = cfg.residual;
    let cross = match cfg.cross_attention {
        CrossAttention::ReuseEncoderKv => quote!(#a::CrossAttention::ReuseEncoderKv),
        CrossAttention::OwnKv => quote!(#a::CrossAttention::OwnKv),
    };
    let attn = match cfg.attention {
        AttentionKind::Softmax => quote!(#a::AttentionKind::Softmax),
        AttentionKind::UniformEncoder => quote!(#a::AttentionKind::UniformEncoder),
    };
    let on = match cfg.budget_on {
        BudgetOn::Total => quote!(#a::BudgetOn::Total),
        BudgetOn::Live => quote!(#a::BudgetOn::Live),
    };
    let exempt = match &cfg.budget_exempt {
        Some(r) => quote!(::core::option::Option::Some(#r)),
        None => quote!(::core::option::Option::None),
    };
    let (total, live) = (counts.total, counts.live);
    let budget = cfg.budget.unwrap_or(counts.total);
    let (dm, v_, ml, dq, df, dropout, tol) = (
        lit(cfg.dim_model),
        lit(cfg.vocab),
        lit(cfg.max_len),
        lit(cfg.dim_qkv),
        lit(cfg.dim_ff),
        cfg.dropout,
        cfg.tolerance_pct,
    );
    quote! {
        #a::Arch {
            name: #name_str,
            base: #base,
            doc: #doc,
            declared: #declared,
            dim_model: #dm,
            vocab: #v_,
            max_len: #ml,
            encoder_heads: &[#(#enc_heads),*],
            decoder_heads: &[#(#dec_heads),*],
            dim_qkv: #dq,
            dim_ff: #df,
            ffn: #ffn,
            position: #a::Position { combine: #pc, init: #pi },
            residual: #a::Residuals { self_attn: #r0, cross_attn: #r1, ffn: #r2 },
            cross_attention: #cross,
            attention: #attn,
            dropout: #dropout,
            params: #a::ParamCount { total: #total, live: #live },
            budget: #a::Budget { params: #budget, on: #on, tolerance_pct: #tol, exempt: #exempt },
        }
    }
}

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

/// The complete expansion of a resolved, valid variant.
pub fn variant(v: &Validated, item: &ItemStruct) -> TokenStream {
    let rt = runtime();
    let cfg = &v.config;
    let name = &item.ident;
    let vis = &item.vis;
    let counts = cfg.counts();
    let doc = doc_of(item);
    let arch = arch_expr(cfg, v, name, &doc, counts);
    let model = model_type(cfg);
    let callback = format_ident!("__march_model_{}", name);
    let resolved = cfg.resolved_tokens(&name.to_string());
    let budget_check = budget_error(cfg, counts, name, v.budget_span).map(|e| e.to_compile_error());
    let span = name.span();
    let registration = quote_spanned! {span=>
        #rt::__private::inventory::submit! {
            #rt::registry::Entry::of::<#name>(&<#name as #rt::Variant>::ARCH)
        }
    };
    quote! {
        #item

        impl #rt::Variant for #name {
            const ARCH: #rt::arch::Arch = #arch;
            type Model<E: #rt::layers::Float, D: #rt::__private::dfdx::tensor_ops::Device<E>> = #model;
        }

        impl #name {
            /// Trainable parameters (total, and those that receive a gradient).
            pub const PARAMS: #rt::arch::ParamCount = <#name as #rt::Variant>::ARCH.params;
            /// Forward + backward FLOPs per corpus token on the reference workload
            /// (see `march_runtime::arch::Arch::flops_per_token`).
            pub const FLOPS_PER_TOKEN: u64 = <#name as #rt::Variant>::ARCH.flops_per_token();
        }

        #registration

        #budget_check

        #[doc(hidden)]
        #[allow(non_local_definitions)]
        #[macro_export]
        macro_rules! #callback {
            ( ( $($overrides:tt)* ) $($item:tt)* ) => {
                #[::march_runtime::march_model(__march_base(#resolved), $($overrides)*)]
                $($item)*
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        #vis use #callback as #name;
    }
}
