//! A variant's complete configuration, its parameter counts, and the resolved
//! form a base hands to the variants derived from it.

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;

/// Version of the resolved-base token format (`__march_base(VERSION, ...)`).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Activation {
    Relu,
    Gelu,
    Silu,
    Sigmoid,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Combine {
    Mean,
    Sum,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum FeedForward {
    Dense {
        activation: Activation,
    },
    Glu {
        gate: Activation,
    },
    MixedAct {
        combine: Combine,
        branch_dropout: f64,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PositionInit {
    Scaled,
    Unit,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CrossAttention {
    ReuseEncoderKv,
    OwnKv,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AttentionKind {
    Softmax,
    UniformEncoder,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BudgetOn {
    Total,
    Live,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Heads {
    Uniform(u64),
    PerLayer(Vec<u64>),
}

impl Heads {
    /// A list whose entries agree is one number (so that changing the layer
    /// count of a derived variant keeps it valid).
    pub fn normalized(self) -> Heads {
        match self {
            Heads::PerLayer(v) if v.iter().all(|&h| h == v[0]) => Heads::Uniform(v[0]),
            h => h,
        }
    }

    /// Heads of each of `layers` layers.
    pub fn per_layer(&self, layers: u64) -> Vec<u64> {
        match self {
            Heads::Uniform(h) => vec![*h; layers as usize],
            Heads::PerLayer(v) => v.clone(),
        }
    }
}

/// Everything a variant declares, resolved. The defaults are the original
/// march baseline (T5-style, 36,340,224 parameters at vocab 30,000), without
/// a budget.
#[derive(Clone, Debug)]
pub struct Config {
    pub base_name: Option<String>,
    pub dim_model: u64,
    pub encoder_layers: u64,
    pub decoder_layers: u64,
    pub heads: Heads,
    pub heads_span: Option<Span>,
    pub layers_span: Option<Span>,
    pub dim_qkv: u64,
    pub dim_ff: u64,
    pub vocab: u64,
    pub max_len: u64,
    pub dropout: f64,
    pub ffn: FeedForward,
    pub position_combine: Combine,
    pub position_init: PositionInit,
    /// self-attention, cross-attention, feed-forward
    pub residual: (bool, bool, bool),
    pub cross_attention: CrossAttention,
    pub attention: AttentionKind,
    pub budget: Option<u64>,
    pub budget_on: BudgetOn,
    pub tolerance_pct: f64,
    pub budget_exempt: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_name: None,
            dim_model: 512,
            encoder_layers: 3,
            decoder_layers: 3,
            heads: Heads::Uniform(8),
            heads_span: None,
            layers_span: None,
            dim_qkv: 64,
            dim_ff: 2048,
            vocab: 30_000,
            max_len: 1024,
            dropout: 0.1,
            ffn: FeedForward::Dense {
                activation: Activation::Relu,
            },
            position_combine: Combine::Mean,
            position_init: PositionInit::Scaled,
            residual: (true, true, true),
            cross_attention: CrossAttention::ReuseEncoderKv,
            attention: AttentionKind::Softmax,
            budget: None,
            budget_on: BudgetOn::Total,
            tolerance_pct: 1.0,
            budget_exempt: None,
        }
    }
}

/// Trainable parameters: all, and those that influence the loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub live: u64,
}

impl Counts {
    fn add(&mut self, n: u64, live: bool) {
        self.total += n;
        if live {
            self.live += n;
        }
    }
}

impl Config {
    pub fn encoder_heads(&self) -> Vec<u64> {
        self.heads.per_layer(self.encoder_layers)
    }

    pub fn decoder_heads(&self) -> Vec<u64> {
        self.heads.per_layer(self.decoder_layers)
    }

    fn ffn_matrices(&self) -> u64 {
        match self.ffn {
            FeedForward::Dense { .. } => 2,
            FeedForward::Glu { .. } | FeedForward::MixedAct { .. } => 3,
        }
    }

    /// Parameter counts, per tensor, with which tensors receive a gradient.
    ///
    /// With `reuse_encoder_kv`, decoder layer i reads encoder layer i's keys
    /// and values, so nothing reads the last encoder layer's output: its
    /// `w_q`, `w_o`, feed-forward norm and feed-forward, and the final encoder
    /// norm, are dead. With uniform encoder attention, queries and keys of
    /// encoder self-attention and of cross-attention are never read, nor is
    /// the cross-attention's norm.
    pub fn counts(&self) -> Counts {
        let m = self.dim_model;
        let dqk = self.dim_qkv;
        let ff = self.ffn_matrices() * m * self.dim_ff;
        let reuse = self.cross_attention == CrossAttention::ReuseEncoderKv;
        let softmax = self.attention == AttentionKind::Softmax;
        let mut c = Counts { total: 0, live: 0 };
        c.add(self.vocab * m, true); // tied embedding
        c.add(self.max_len * m, true); // position table
        let enc = self.encoder_heads();
        for (i, h) in enc.iter().enumerate() {
            let inner = h * dqk;
            let kv_only = reuse && i + 1 == enc.len();
            c.add(m, true); // self_attn_norm
            c.add(m * inner, softmax && !kv_only); // w_q
            c.add(m * inner, softmax); // w_k
            c.add(m * inner, true); // w_v
            c.add(inner * m, !kv_only); // w_o
            c.add(m, !kv_only); // ffn_norm
            c.add(ff, !kv_only); // ffn
        }
        c.add(m, !reuse); // encoder_norm
        for h in self.decoder_heads() {
            let inner = h * dqk;
            c.add(m, true); // self_attn_norm
            c.add(4 * m * inner, true); // self_attn
                                        // uniform cross-attention ignores the decoder side: it only
                                        // averages the encoder's values
            c.add(m, softmax); // cross_attn_norm
            c.add(m * inner, softmax); // cross w_q
            if !reuse {
                c.add(m * inner, softmax); // cross w_k
                c.add(m * inner, true); // cross w_v
            }
            c.add(inner * m, true); // cross w_o
            c.add(m, true); // ffn_norm
            c.add(ff, true); // ffn
        }
        c.add(m, true); // decoder_norm
        c
    }

    /// The configuration as `key = value` entries that re-create it exactly
    /// (the budget exemption is not inherited: each variant states its own).
    pub fn resolved_tokens(&self, name: &str) -> TokenStream {
        fn int(n: u64) -> Literal {
            Literal::u64_unsuffixed(n)
        }
        fn float(x: f64) -> TokenStream {
            let s = format!("{x:?}");
            s.parse().expect("a float literal")
        }
        fn act(a: Activation) -> TokenStream {
            match a {
                Activation::Relu => quote!(relu),
                Activation::Gelu => quote!(gelu),
                Activation::Silu => quote!(silu),
                Activation::Sigmoid => quote!(sigmoid),
            }
        }
        fn combine(c: Combine) -> TokenStream {
            match c {
                Combine::Mean => quote!(mean),
                Combine::Sum => quote!(sum),
            }
        }
        let version = int(FORMAT_VERSION as u64);
        let (dm, el, dl, dq, df, v, ml) = (
            int(self.dim_model),
            int(self.encoder_layers),
            int(self.decoder_layers),
            int(self.dim_qkv),
            int(self.dim_ff),
            int(self.vocab),
            int(self.max_len),
        );
        let heads = match &self.heads {
            Heads::Uniform(h) => {
                let h = int(*h);
                quote!(#h)
            }
            Heads::PerLayer(list) => {
                let items = list.iter().map(|h| int(*h));
                quote!([#(#items),*])
            }
        };
        let dropout = float(self.dropout);
        let ffn = match self.ffn {
            FeedForward::Dense { activation } => {
                let a = act(activation);
                quote!(dense(#a))
            }
            FeedForward::Glu { gate } => {
                let a = act(gate);
                quote!(glu(#a))
            }
            FeedForward::MixedAct {
                combine: c,
                branch_dropout,
            } => {
                let c = combine(c);
                let p = float(branch_dropout);
                quote!(mixed(#c, branch_dropout = #p))
            }
        };
        let pc = combine(self.position_combine);
        let pi = match self.position_init {
            PositionInit::Scaled => quote!(scaled),
            PositionInit::Unit => quote!(unit),
        };
        let (r0, r1, r2) = self.residual;
        let cross = match self.cross_attention {
            CrossAttention::ReuseEncoderKv => quote!(reuse_encoder_kv),
            CrossAttention::OwnKv => quote!(own_kv),
        };
        let attn = match self.attention {
            AttentionKind::Softmax => quote!(softmax),
            AttentionKind::UniformEncoder => quote!(uniform_encoder),
        };
        let budget = self.budget.map(|b| {
            let b = int(b);
            quote!(budget = #b,)
        });
        let on = match self.budget_on {
            BudgetOn::Total => quote!(total),
            BudgetOn::Live => quote!(live),
        };
        let tol = float(self.tolerance_pct);
        quote! {
            #version, #name,
            dim_model = #dm, encoder_layers = #el, decoder_layers = #dl, heads = #heads,
            dim_qkv = #dq, dim_ff = #df, vocab = #v, max_len = #ml, dropout = #dropout,
            ffn = #ffn, position_combine = #pc, position_init = #pi,
            self_attn_residual = #r0, cross_attn_residual = #r1, ffn_residual = #r2,
            cross_attention = #cross, attention = #attn,
            #budget budget_on = #on, tolerance = #tol %
        }
    }
}
