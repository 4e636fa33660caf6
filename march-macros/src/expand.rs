//! Expansion: a validated architecture into the variant's items — the
//! model's type (every dimension a const generic), `impl Variant` with the
//! architecture as a constant, the registry entry, and the callback that
//! replays the resolved architecture to derived variants.

use march_spec::{Arch, CrossAttention, FeedForward, Layer, FORMAT_VERSION};
use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ItemStruct;

use crate::valid::Validated;

fn runtime() -> TokenStream {
    quote!(::march_runtime)
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

/// A stack of layer types: a tuple of up to six, nested beyond.
fn stack(layers: Vec<TokenStream>) -> TokenStream {
    if layers.len() <= 6 {
        return quote!((#(#layers,)*));
    }
    let chunks: Vec<TokenStream> = layers.chunks(6).map(|c| stack(c.to_vec())).collect();
    stack(chunks)
}

fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

/// The feed-forward sub-layer's type for a layer.
fn ffn_type(arch: &Arch, l: Layer) -> TokenStream {
    let rt = runtime();
    let (m, ff) = (lit(arch.dim_model), lit(l.dim_ff));
    match arch.ffn {
        FeedForward::Dense { .. } => quote!(#rt::layers::DenseFfn<#m, #ff, E, D>),
        FeedForward::Glu { .. } => quote!(#rt::layers::GluFfn<#m, #ff, E, D>),
        FeedForward::MixedAct { .. } => quote!(#rt::layers::MixedActFfn<#m, #ff, E, D>),
        FeedForward::None => quote!(#rt::layers::NoFfn),
    }
}

/// The type of the feed-forward's norm: none without a feed-forward.
fn ffn_norm_type(arch: &Arch) -> TokenStream {
    let rt = runtime();
    let (m, g) = (lit(arch.dim_model), gain(arch));
    if arch.ffn.present() {
        quote!(#rt::layers::RmsNorm<#m, #g, E, D>)
    } else {
        quote!(#rt::layers::NoNorm)
    }
}

/// Elements of every norm's gain.
fn gain(arch: &Arch) -> Literal {
    lit(arch.norm_gain.size(arch.dim_model))
}

/// The relative position bias: T5's tables, or none.
fn relative_bias_type(arch: &Arch) -> TokenStream {
    let rt = runtime();
    match arch.position.relative_buckets() {
        0 => quote!(#rt::layers::NoRelativeBias),
        nb => {
            // every layer has the same heads (checked)
            let (m, nb, h) = (lit(arch.dim_model), lit(nb), lit(arch.heads.at(0)));
            quote!(#rt::layers::RelativeBias<#m, #nb, #h, E, D>)
        }
    }
}

fn model_type(arch: &Arch) -> TokenStream {
    let rt = runtime();
    // the learned position table's rows (none without one)
    let (v, m, l) = (
        lit(arch.vocab),
        lit(arch.dim_model),
        lit(arch.position.table_rows(arch.max_len)),
    );
    let g = gain(arch);
    let enc: Vec<TokenStream> = (0..arch.encoder_layers)
        .map(|i| {
            let layer = arch.encoder(i);
            let (h, dqk, inner) = (lit(layer.heads), lit(layer.dim_qkv), lit(layer.inner()));
            let (ffn, norm) = (ffn_type(arch, layer), ffn_norm_type(arch));
            quote!(#rt::model::EncoderLayer<#m, #g, #h, #dqk, #inner, #ffn, #norm, E, D>)
        })
        .collect();
    let dec: Vec<TokenStream> = (0..arch.decoder_layers)
        .map(|i| {
            let layer = arch.decoder(i);
            let (h, dqk, inner) = (lit(layer.heads), lit(layer.dim_qkv), lit(layer.inner()));
            let (ffn, norm) = (ffn_type(arch, layer), ffn_norm_type(arch));
            let cross = match arch.cross_attention {
                CrossAttention::ReuseEncoderKv => {
                    quote!(#rt::layers::CrossAttentionReuseKv<#m, #h, #dqk, #inner, E, D>)
                }
                CrossAttention::OwnKv => {
                    quote!(#rt::layers::CrossAttentionOwnKv<#m, #h, #dqk, #inner, E, D>)
                }
                CrossAttention::ProjectEncoderKv => {
                    quote!(#rt::layers::CrossAttentionProjectKv<#m, #h, #dqk, #inner, E, D>)
                }
            };
            quote!(#rt::model::DecoderLayer<#m, #g, #h, #dqk, #inner, #cross, #ffn, #norm, E, D>)
        })
        .collect();
    let (enc, dec) = (stack(enc), stack(dec));
    let head = if arch.tie_embeddings {
        quote!(#rt::layers::TiedHead)
    } else {
        quote!(#rt::layers::LmHead<#v, #m, E, D>)
    };
    let (g, rel) = (gain(arch), relative_bias_type(arch));
    quote!(#rt::model::EncoderDecoder<#v, #m, #g, #l, #rel, #enc, #dec, #head, E, D>)
}

/// The complete expansion of a resolved, valid variant.
pub fn variant(v: &Validated, item: &ItemStruct) -> TokenStream {
    let rt = runtime();
    let arch = &v.arch;
    let name = &item.ident;
    let vis = &item.vis;
    let arch_expr: TokenStream = arch
        .rust_expr()
        .parse()
        .expect("march-spec writes a Rust expression");
    let model = model_type(arch);
    let callback = format_ident!("__march_model_{}", name);
    let version = Literal::u32_unsuffixed(FORMAT_VERSION);
    let name_str = name.to_string();
    let resolved: TokenStream = march_spec::keys::to_dsl(arch)
        .parse()
        .expect("march-spec writes DSL entries");
    let flops = arch.flops_per_token();
    let span = name.span();
    let registration = quote_spanned! {span=>
        #rt::__private::inventory::submit! {
            #rt::registry::Entry::of::<#name>(&<#name as #rt::Variant>::ARCH)
        }
    };
    quote! {
        #item

        impl #rt::Variant for #name {
            const ARCH: #rt::arch::Arch = #arch_expr;
            type Model<E: #rt::layers::Float, D: #rt::ops::Ops<E>> = #model;
        }

        impl #name {
            /// Trainable parameters (total, and those that receive a gradient).
            pub const PARAMS: #rt::arch::ParamCount = <#name as #rt::Variant>::ARCH.params;
            /// Forward + backward FLOPs per corpus token on the reference workload
            /// (see `march_runtime::arch::Arch::flops_per_token`).
            pub const FLOPS_PER_TOKEN: u64 = #flops;
        }

        #registration

        #[doc(hidden)]
        #[allow(non_local_definitions)]
        #[macro_export]
        macro_rules! #callback {
            ( ( $($overrides:tt)* ) $($item:tt)* ) => {
                #[::march_runtime::march_model(__march_base(#version, #name_str, #resolved), $($overrides)*)]
                $($item)*
            };
        }
        #[doc(hidden)]
        #[allow(unused_imports)]
        #vis use #callback as #name;
    }
}
