//! The `#[observe]` attribute of `langfuse-otel`. Use it as `langfuse_otel::observe`; the
//! expansion only refers to `::langfuse_otel`, so callers need no other dependency.

#![forbid(unsafe_code)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitBool, LitStr, Pat, ReturnType, Type};

const TYPES: &[(&str, &str)] = &[
    ("span", "Span"),
    ("generation", "Generation"),
    ("agent", "Agent"),
    ("tool", "Tool"),
    ("chain", "Chain"),
    ("retriever", "Retriever"),
    ("evaluator", "Evaluator"),
    ("embedding", "Embedding"),
    ("guardrail", "Guardrail"),
];

struct Options {
    name: Option<LitStr>,
    as_type: Ident,
    capture_input: bool,
    capture_output: bool,
    skip: Vec<Ident>,
}

fn parse_options(attr: TokenStream) -> syn::Result<Options> {
    let mut o = Options {
        name: None,
        as_type: Ident::new("Span", Span::call_site()),
        capture_input: true,
        capture_output: true,
        skip: Vec::new(),
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            o.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("as_type") {
            let lit: LitStr = meta.value()?.parse()?;
            let v = lit.value();
            match TYPES.iter().find(|(k, _)| *k == v) {
                Some((_, variant)) => o.as_type = Ident::new(variant, lit.span()),
                None if v == "event" => {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`event` is not allowed: an event has no duration; use `Langfuse::create_event`",
                    ));
                }
                None => {
                    let names: Vec<&str> = TYPES.iter().map(|(k, _)| *k).collect();
                    return Err(syn::Error::new(
                        lit.span(),
                        format!("unknown as_type `{v}`; one of: {}", names.join(", ")),
                    ));
                }
            }
        } else if meta.path.is_ident("capture_input") {
            o.capture_input = meta.value()?.parse::<LitBool>()?.value;
        } else if meta.path.is_ident("capture_output") {
            o.capture_output = meta.value()?.parse::<LitBool>()?.value;
        } else if meta.path.is_ident("skip") {
            meta.parse_nested_meta(|inner| {
                match inner.path.get_ident() {
                    Some(id) => o.skip.push(id.clone()),
                    None => return Err(inner.error("expected a parameter name")),
                }
                Ok(())
            })?;
        } else {
            return Err(meta.error(
                "unknown option; expected name, as_type, capture_input, capture_output or skip(..)",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(o)
}

/// Whether the written return type is a `Result` (`Result<..>`, `io::Result<..>`, …).
fn is_result(ret: &ReturnType) -> bool {
    match ret {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn contains_impl_trait(ret: &ReturnType) -> bool {
    match ret {
        ReturnType::Type(_, ty) => quote!(#ty).to_string().contains("impl "),
        ReturnType::Default => false,
    }
}

/// Traces a function or method as a Langfuse observation (see `langfuse_otel::observe`).
#[proc_macro_attribute]
pub fn observe(attr: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attr, item) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(attr: TokenStream, item: TokenStream) -> syn::Result<TokenStream2> {
    let opts = parse_options(attr)?;
    let func: ItemFn = syn::parse(item)?;
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = func;
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&sig.ident.to_string(), sig.ident.span()));
    let as_type = &opts.as_type;

    // Input: arguments by parameter name, `self` and skipped ones left out.
    let mut params: Vec<Ident> = Vec::new();
    for (i, arg) in sig.inputs.iter().enumerate() {
        if let FnArg::Typed(pt) = arg {
            match &*pt.pat {
                Pat::Ident(pi) => params.push(pi.ident.clone()),
                other => {
                    if opts.capture_input {
                        return Err(syn::Error::new(
                            other.span(),
                            format!(
                                "argument {i} is a pattern: bind it to a name, or use capture_input = false"
                            ),
                        ));
                    }
                }
            }
        }
    }
    for s in &opts.skip {
        if !params.contains(s) {
            return Err(syn::Error::new(
                s.span(),
                format!("skip: no parameter named `{s}`"),
            ));
        }
    }
    let captured: Vec<&Ident> = params.iter().filter(|p| !opts.skip.contains(p)).collect();
    let keys: Vec<String> = captured
        .iter()
        .map(|p| p.to_string().trim_start_matches("r#").to_owned())
        .collect();
    let capture_input = opts.capture_input;
    let capture_output = opts.capture_output;

    let p = quote!(::langfuse_otel::__private);
    let input = if capture_input {
        quote! {
            if __lf_client.io_capture_enabled() {
                #[allow(unused_imports)]
                use #p::{CaptureFallback as _, CaptureSerialize as _};
                let mut __lf_input = #p::Map::new();
                #( __lf_input.insert(::std::string::String::from(#keys), (&#p::Capture(&#captured)).capture_value()); )*
                __lf_opts = __lf_opts.input(&__lf_input);
            }
        }
    } else {
        quote! {}
    };

    let result = format_ident!("__lf_result");
    let record = if is_result(&sig.output) {
        let out = if capture_output {
            quote! {
                if __lf_capture_output {
                    __lf_obs.update(::langfuse_otel::ObservationUpdate::new().output(&(&#p::Capture(__lf_ok)).capture_value()));
                }
            }
        } else {
            quote! { let _ = __lf_ok; }
        };
        quote! {
            #[allow(unused_imports)]
            use #p::{CaptureFallback as _, CaptureSerialize as _, ErrorDisplay as _, ErrorFallback as _};
            match &#result {
                ::core::result::Result::Ok(__lf_ok) => { #out }
                ::core::result::Result::Err(__lf_err) => {
                    let __lf_msg = (&#p::Capture(__lf_err)).error_message();
                    __lf_obs.record_error(#p::type_name_of(__lf_err), &__lf_msg);
                }
            }
        }
    } else if capture_output {
        quote! {
            #[allow(unused_imports)]
            use #p::{CaptureFallback as _, CaptureSerialize as _};
            if __lf_capture_output {
                __lf_obs.update(::langfuse_otel::ObservationUpdate::new().output(&(&#p::Capture(&#result)).capture_value()));
            }
        }
    } else {
        quote! {}
    };

    let ret_ty = match &sig.output {
        ReturnType::Type(_, ty) if !contains_impl_trait(&sig.output) => Some(quote!(#ty)),
        ReturnType::Default => Some(quote!(())),
        _ => None,
    };

    let body = if sig.asyncness.is_some() {
        let fut = match &ret_ty {
            Some(ty) => quote!(#p::typed_future::<#ty, _>(async move #block)),
            None => quote!(async move #block),
        };
        quote! {
            __lf_client.start_active_observation(__lf_opts, move |__lf_obs| async move {
                let #result = #fut.await;
                #record
                #result
            }).await
        }
    } else {
        let call = match &ret_ty {
            Some(ty) => quote!((move || -> #ty #block)()),
            None => quote!((move || #block)()),
        };
        quote! {
            __lf_client.start_active_observation_sync(__lf_opts, move |__lf_obs| {
                let #result = #call;
                #record
                #result
            })
        }
    };

    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __lf_client = #p::client();
            let __lf_capture_output: bool = #capture_output && __lf_client.io_capture_enabled();
            let _ = __lf_capture_output;
            #[allow(unused_mut)]
            let mut __lf_opts = ::langfuse_otel::ObservationOptions::new(#name, ::langfuse_otel::ObservationType::#as_type);
            #input
            #body
        }
    })
}
