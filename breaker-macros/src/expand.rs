//! Expansion: the user's signature is kept (only parameter bindings move inside), the body
//! becomes an inner `async` block run under the breaker's permit.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, PatIdent, ReturnType, Type};

use crate::validate::{Settings, Spanned as Valued, Store};

/// How one parameter reaches the body and the fallback.
struct Param {
    /// The name the outer function binds it to.
    outer: TokenStream,
    /// The `let` that moves it into the body, for owned values (so the body's future owns it,
    /// as the original's did, and stays `Send` exactly when the original was).
    rebind: Option<TokenStream>,
    /// The copy kept for the fallback, for owned values when there is a fallback.
    keep: Option<(Ident, Span)>,
    /// For a `&mut` parameter moved into an `async move` body: a reborrow to move instead.
    reborrow: Option<TokenStream>,
}

pub(crate) fn expand(s: &Settings, mut func: ItemFn) -> TokenStream {
    let rt = quote!(::breaker_runtime::__private);
    let has_fallback = s.fallback.is_some();
    let fn_name = func.sig.ident.clone();
    let ret: Type = match &func.sig.output {
        ReturnType::Type(_, t) => (**t).clone(),
        ReturnType::Default => syn::parse_quote!(()),
    };
    let is_method = is_method(&func, s);

    let mut params = Vec::new();
    for (i, input) in func.sig.inputs.iter_mut().enumerate() {
        params.push(param(i, input, has_fallback));
    }

    let config = config(s);
    let explicit = s.name.is_some();
    let (site_name, get_breaker) = match (&s.name, is_method) {
        (Some(n), _) => (
            quote!(::core::option::Option::Some(#n)),
            quote!(__BREAKER_SITE.get()),
        ),
        (None, false) => (
            quote!(::core::option::Option::Some(::core::concat!(
                ::core::module_path!(),
                "::",
                ::core::stringify!(#fn_name)
            ))),
            quote!(__BREAKER_SITE.get()),
        ),
        (None, true) => (
            quote!(::core::option::Option::None),
            quote!(__BREAKER_SITE.get_for(
                ::core::any::type_name::<Self>(),
                ::core::stringify!(#fn_name)
            )),
        ),
    };
    let register = site_name_is_static(s, is_method).then(|| {
        quote! {
            #[#rt::linkme::distributed_slice(#rt::SITES)]
            #[linkme(crate = #rt::linkme)]
            static __BREAKER_SITE_REF: &#rt::Site = &__BREAKER_SITE;
        }
    });

    // `impl Trait` cannot be named inside the body: leave the return type to inference there.
    let ret_has_impl = mentions(quote!(#ret), "impl");
    let ret_tf = if ret_has_impl {
        quote!(_)
    } else {
        quote!(#ret)
    };
    let ret_span = match &func.sig.output {
        ReturnType::Type(_, t) => t.span(),
        ReturnType::Default => func.sig.ident.span(),
    };
    let classify = match &s.failure_if {
        Some(p) if ret_has_impl => (quote!(), quote!(::core::option::Option::Some(#p))),
        Some(p) => {
            let check = quote_spanned! {p.span()=>
                #[allow(clippy::type_complexity)]
                let __breaker_failure_if: fn(&<#ret as ::breaker_runtime::__private::BreakerResult>::Error) -> bool = #p;
            };
            (
                check,
                quote!(::core::option::Option::Some(__breaker_failure_if)),
            )
        }
        None => (quote!(), quote!(::core::option::Option::None)),
    };
    let (classify_check, classify_arg) = classify;
    // Describes a failure for alerts (`Display`, else `Debug`, else the type's name), called
    // only on failures.
    // The return type is re-spanned to the attribute: if it is not a `Result`, rustc reports
    // the failed bound here with the same span and message as the check below, so once.
    let describe = if ret_has_impl {
        quote!(#rt::describe_opaque)
    } else {
        let ret_here = respan(quote!(#ret), Span::call_site());
        quote!(#rt::describer!(<#ret_here as #rt::BreakerResult>::Error))
    };

    let rebinds = params.iter().filter_map(|p| p.rebind.as_ref());
    let keeps = params.iter().filter_map(|p| {
        p.keep.as_ref().map(|(name, span)| {
            let outer = &p.outer;
            quote_spanned!(*span=> let #name = ::breaker_runtime::__private::clone_arg(&#outer);)
        })
    });
    let stmts = &func.block.stmts;
    let fake_return = (!ret_has_impl).then(|| {
        quote! {
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::let_with_type_underscore,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let __breaker_fake_return: #ret = loop {};
                return __breaker_fake_return;
            }
        }
    });
    // An owned receiver is moved into the body (`async move`), as the original future owned it,
    // so the future is `Send` exactly when the original was; `&mut` parameters are then
    // reborrowed for the body so the fallback can still use them. Otherwise the block captures
    // what it uses by the least it needs, and owned parameters are moved in by the rebinds.
    let owned_receiver = func.sig.inputs.iter().any(
        |i| matches!(i, FnArg::Receiver(r) if r.reference.is_none() && !matches!(*r.ty, Type::Reference(_))),
    );
    let body = if owned_receiver {
        let reborrows = params.iter().filter_map(|p| p.reborrow.as_ref());
        quote! {{
            #(#reborrows)*
            async move {
                #(#rebinds)*
                #fake_return
                #(#stmts)*
            }
        }}
    } else {
        quote! {
            async {
                #(#rebinds)*
                #fake_return
                #(#stmts)*
            }
        }
    };

    // Every check of the return type names it in a turbofish, so rustc reports a failed bound
    // once, on the return type as written.
    let settle = quote! {
        __breaker_permit.settle::<#ret_tf>(&__breaker_result, #classify_arg, __breaker_started, __breaker_describe)
    };
    let Outcomes {
        swapped_slot,
        swapped_arm,
        swapped_stmt,
        on_reject,
        on_result,
        on_timeout,
    } = match &s.fallback {
        Some(fb) => with_fallback(fb, &params, &ret_tf, &settle, &admission_wait(s)),
        None => without_fallback(&ret_tf, &settle),
    };
    // Without a fallback, `reject::<#ret>` checks this too.
    let assert_result = (has_fallback && !ret_has_impl)
        .then(|| quote_spanned!(ret_span=> #rt::assert_result::<#ret>();));

    // The breaker's logic is written into the function itself rather than awaited through a
    // helper future: nested futures moving the permit and the result between their state
    // machines cost ~25 ns per call in store-forwarding stalls (measured).
    // Without a declared `timeout` the body is awaited as it is: no timer slot in the future
    // (a `Sleep` is 112 bytes, moved wherever the future is moved).
    // An injected delay (QA faults) runs inside the timeout when there is one; without one it
    // is slept out in the admission wait.
    let call = if s.timeout.is_some() {
        quote! {
            match #rt::MaybeTimeout::new(#body, &mut __breaker_permit).await {
                ::core::option::Option::Some(__breaker_result) => { #on_result }
                ::core::option::Option::None => #on_timeout,
            }
        }
    } else {
        quote! {
            let __breaker_result = #rt::Guarded::new(#body).await;
            #on_result
        }
    };
    let require_redis = s
        .store
        .as_ref()
        .filter(|st| st.value == Store::Redis)
        .map(|st| {
            let span = st.span;
            quote_spanned!(span=> #rt::require_redis!();)
        });
    let fallback_name = match &s.fallback {
        Some(fb) => {
            let text = quote!(#fb).to_string().replace(' ', "");
            quote!(::core::option::Option::Some(#text))
        }
        None => quote!(::core::option::Option::None),
    };
    // Without a fallback, a rejection that is not a wait for a fleet probe lease (an OPEN
    // breaker's) returns at once, without building and polling the wait's future (about a
    // nanosecond of an OPEN rejection). With one, the fallback's call is not written twice.
    // Without a `timeout`, an injected delay is slept out in the admission wait, the one await
    // before the body (the body's future carries no slot for it); with one, it runs inside the
    // timeout.
    let wait = admission_wait(s);
    // The timeout borrows the permit: in shadow mode its deadline turns it unjudged.
    let permit_mut = s.timeout.is_some().then(|| quote!(mut));
    let direct_reject_arm = (!has_fallback).then(|| {
        quote! {
            ::core::result::Result::Err(__breaker_rejected) if !__breaker_rejected.is_await() => { #on_reject }
        }
    });
    let new_body = quote! {{
        #require_redis
        static __BREAKER_SITE: #rt::Site = #rt::Site::new(#site_name, #explicit, #config, #fallback_name);
        #register
        #assert_result
        #classify_check
        let __breaker_describe = #describe;
        let __breaker = #get_breaker;
        #swapped_slot
        let #permit_mut __breaker_permit = '__breaker_admitted: {
            let __breaker_rejected = match __breaker.admit() {
                ::core::result::Result::Ok(__breaker_permit) => break '__breaker_admitted __breaker_permit,
                #swapped_arm
                #direct_reject_arm
                ::core::result::Result::Err(__breaker_rejected) => __breaker_rejected,
            };
            #swapped_stmt
            // HALF_OPEN across a fleet: the call may wait one store round trip to learn
            // whether it is the probe; a call held by an injected `delay` (QA) waits here
            // without a `timeout` (with one, inside it). Any other rejection is answered at
            // once. Awaited outside the match on `admit()`, so the match's value is not kept
            // in the future across the wait.
            match __breaker.#wait(__breaker_rejected).await {
                ::core::result::Result::Ok(__breaker_permit) => __breaker_permit,
                ::core::result::Result::Err(__breaker_rejected) => { #on_reject }
            }
        };
        #(#keeps)*
        let __breaker_started = __breaker.started();
        #call
    }};
    func.block = syn::parse2(new_body).unwrap_or_else(|e| {
        // The tokens above are fixed; a parse failure would be a bug in this macro.
        let msg = e.to_string();
        syn::parse_quote!({ ::core::compile_error!(#msg) })
    });
    quote!(#func)
}

/// The admission wait's method: without a `timeout`, an injected delay is slept out there
/// (`admission_wait`); with one it runs inside the timeout (`wait_for_probe`).
fn admission_wait(s: &Settings) -> TokenStream {
    if s.timeout.is_none() {
        quote!(admission_wait)
    } else {
        quote!(wait_for_probe)
    }
}

/// What the generated body does with each outcome of admission and of the call.
struct Outcomes {
    /// Declared before admission: with a fallback, where a swapped breaker keeps the fallback's
    /// failed result while the function is tried.
    swapped_slot: TokenStream,
    /// Without a fallback, an arm of the match on `admit()`: the breaker is swapped
    /// (`breakerctl swap`); the function is tried at once.
    swapped_arm: TokenStream,
    /// With a fallback, the same after that match (it awaits the fallback, and the match's
    /// value is not to be kept in the future across an await).
    swapped_stmt: TokenStream,
    /// The call was rejected (`__breaker_rejected`); returns from the function.
    on_reject: TokenStream,
    /// The call returned `__breaker_result`: settles the permit; evaluates to the function's
    /// result.
    on_result: TokenStream,
    /// The call outlived its `timeout` (emitted only when there is one); evaluates to the
    /// function's result.
    on_timeout: TokenStream,
}

/// With a fallback: every fallback result is checked (an error there means the whole chain
/// failed), and a swapped breaker calls the fallback first, then the function through this
/// breaker if the fallback failed.
fn with_fallback(
    fb: &syn::Path,
    params: &[Param],
    ret_tf: &TokenStream,
    settle: &TokenStream,
    wait: &TokenStream,
) -> Outcomes {
    let rt = quote!(::breaker_runtime::__private);
    let originals = params.iter().map(|p| &p.outer);
    let kept = params.iter().map(|p| match &p.keep {
        Some((name, _)) => quote!(#name),
        None => p.outer.clone(),
    });
    let cloned = params.iter().map(|p| {
        let outer = &p.outer;
        match &p.keep {
            Some((_, span)) => quote_spanned!(*span=> #rt::clone_arg(&#outer)),
            None => p.outer.clone(),
        }
    });
    let call_orig =
        quote_spanned!(fb.span()=> #rt::fallback_output::<#ret_tf, _>(#fb(#(#originals),*).await));
    let call_kept =
        quote_spanned!(fb.span()=> #rt::fallback_output::<#ret_tf, _>(#fb(#(#kept),*).await));
    let call_cloned =
        quote_spanned!(fb.span()=> #rt::fallback_output::<#ret_tf, _>(#fb(#(#cloned),*).await));
    Outcomes {
        swapped_slot: quote! {
            let mut __breaker_swapped_first = ::core::option::Option::None;
        },
        swapped_arm: TokenStream::new(),
        swapped_stmt: quote! {
            if __breaker_rejected.is_swapped() {
                __breaker.note_fallback(#rt::FallbackReason::Swapped);
                let __breaker_first = #call_cloned;
                if !#rt::is_err(&__breaker_first) {
                    __breaker.fallback_result(&__breaker_first, __breaker_describe);
                    return __breaker_first;
                }
                // A bulkhead without a free place: the function waits for one (`max_wait`).
                // Boxed: this wait is rare, and inline it would grow every such function's
                // future by its size while the fallback's answer is kept.
                let __breaker_primary = match __breaker.admit_primary() {
                    ::core::result::Result::Err(__breaker_rejected) if __breaker_rejected.is_await() => {
                        ::std::boxed::Box::pin(__breaker.#wait(__breaker_rejected)).await
                    }
                    __breaker_admitted => __breaker_admitted,
                };
                break '__breaker_admitted match __breaker_primary {
                    ::core::result::Result::Ok(__breaker_permit) => {
                        __breaker_swapped_first = ::core::option::Option::Some(__breaker_first);
                        __breaker_permit
                    }
                    ::core::result::Result::Err(_) => {
                        __breaker.fallback_result(&__breaker_first, __breaker_describe);
                        return __breaker_first;
                    }
                }
            }
        },
        on_reject: quote! {
            __breaker.note_fallback_for(__breaker_rejected);
            let __breaker_fb = #call_orig;
            __breaker.fallback_result(&__breaker_fb, __breaker_describe);
            return __breaker_fb;
        },
        on_result: quote! {
            if #settle {
                match __breaker_swapped_first {
                    ::core::option::Option::Some(__breaker_first) => {
                        // Swapped: the fallback failed first, now the function too.
                        ::core::mem::drop(__breaker_first);
                        __breaker.fallback_result(&__breaker_result, __breaker_describe);
                        __breaker_result
                    }
                    ::core::option::Option::None => {
                        ::core::mem::drop(__breaker_result);
                        __breaker.note_fallback(#rt::FallbackReason::Failed);
                        let __breaker_fb = #call_kept;
                        __breaker.fallback_result(&__breaker_fb, __breaker_describe);
                        __breaker_fb
                    }
                }
            } else {
                if __breaker_swapped_first.is_some() {
                    // Swapped, the fallback failed and the function succeeded: the chain
                    // works again.
                    __breaker.fallback_result(&__breaker_result, __breaker_describe);
                }
                __breaker_result
            }
        },
        on_timeout: quote! {{
            let _ = __breaker_permit.timed_out();
            match __breaker_swapped_first {
                ::core::option::Option::Some(__breaker_first) => {
                    __breaker.fallback_result(&__breaker_first, __breaker_describe);
                    __breaker_first
                }
                ::core::option::Option::None => {
                    __breaker.note_fallback(#rt::FallbackReason::TimedOut);
                    let __breaker_fb = #call_kept;
                    __breaker.fallback_result(&__breaker_fb, __breaker_describe);
                    __breaker_fb
                }
            }
        }},
    }
}

/// Without a fallback the result is returned whatever `settle` decided, and a rejection or a
/// timeout becomes the function's error.
fn without_fallback(ret_tf: &TokenStream, settle: &TokenStream) -> Outcomes {
    let rt = quote!(::breaker_runtime::__private);
    Outcomes {
        swapped_slot: quote!(),
        // A breaker shared by name with a function that has a fallback can be swapped; this
        // function has none to call first: it calls itself, through the breaker.
        swapped_arm: quote! {
            // Swapped: the function is tried at once (it has nothing to call first); a held
            // call (no free place in its bulkhead) goes on to the wait below.
            ::core::result::Result::Err(__breaker_rejected) if __breaker_rejected.is_swapped() => {
                match __breaker.admit_primary() {
                    ::core::result::Result::Ok(__breaker_permit) => break '__breaker_admitted __breaker_permit,
                    ::core::result::Result::Err(__breaker_rejected) if __breaker_rejected.is_await() => __breaker_rejected,
                    ::core::result::Result::Err(__breaker_rejected) => {
                        return #rt::reject::<#ret_tf>(__breaker.rejection(__breaker_rejected));
                    }
                }
            }
        },
        swapped_stmt: TokenStream::new(),
        on_reject: quote!(return #rt::reject::<#ret_tf>(__breaker.rejection(__breaker_rejected));),
        // `settle` answers whether the call failed, for a fallback to act on: nothing to do here.
        on_result: quote! {
            let _ = #settle;
            __breaker_result
        },
        on_timeout: quote!(#rt::reject::<#ret_tf>(__breaker_permit.timed_out())),
    }
}

fn param(i: usize, input: &mut FnArg, has_fallback: bool) -> Param {
    match input {
        FnArg::Receiver(r) => {
            let owned = r.reference.is_none() && !matches!(*r.ty, Type::Reference(_));
            Param {
                outer: quote!(self),
                rebind: None,
                reborrow: None,
                keep: (owned && has_fallback).then(|| {
                    (
                        format_ident!("__breaker_fallback_self"),
                        r.self_token.span(),
                    )
                }),
            }
        }
        FnArg::Typed(t) => {
            let by_ref = matches!(*t.ty, Type::Reference(_));
            let ty_span = t.ty.span();
            match &mut *t.pat {
                Pat::Ident(PatIdent {
                    by_ref: None,
                    subpat: None,
                    mutability,
                    ident,
                    ..
                }) => {
                    let ident = ident.clone();
                    let rebind = (!by_ref).then(|| {
                        // The binding's `mut` moves inside with the value.
                        let m = mutability.take();
                        quote! {
                            #[allow(clippy::redundant_locals)]
                            let #m #ident = #ident;
                        }
                    });
                    let keep = (has_fallback && !by_ref)
                        .then(|| (format_ident!("__breaker_fallback_{}", i), ty_span));
                    let reborrow = matches!(&*t.ty, Type::Reference(r) if r.mutability.is_some())
                        .then(|| quote!(let #ident = &mut *#ident;));
                    Param {
                        outer: quote!(#ident),
                        rebind,
                        keep,
                        reborrow,
                    }
                }
                pat => {
                    let outer = format_ident!("__breaker_arg_{}", i);
                    let inner = pat.clone();
                    *pat = Pat::Ident(PatIdent {
                        attrs: Vec::new(),
                        by_ref: None,
                        mutability: None,
                        ident: outer.clone(),
                        subpat: None,
                    });
                    Param {
                        outer: quote!(#outer),
                        rebind: Some(quote!(let #inner = #outer;)),
                        keep: None,
                        reborrow: None,
                    }
                }
            }
        }
    }
}

/// Whether the default name must include `Self` (the function is a method).
fn is_method(func: &ItemFn, s: &Settings) -> bool {
    let has_receiver = func
        .sig
        .inputs
        .iter()
        .any(|i| matches!(i, FnArg::Receiver(_)));
    let self_fallback = s
        .fallback
        .as_ref()
        .is_some_and(|p| p.segments.first().is_some_and(|seg| seg.ident == "Self"));
    let sig = &func.sig;
    has_receiver || self_fallback || mentions(quote!(#sig), "Self")
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|t| match t {
            TokenTree::Group(g) => {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                TokenTree::Group(ng)
            }
            mut other => {
                other.set_span(span);
                other
            }
        })
        .collect()
}

fn mentions(tokens: TokenStream, word: &str) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == word,
        TokenTree::Group(g) => mentions(g.stream(), word),
        _ => false,
    })
}

fn site_name_is_static(s: &Settings, is_method: bool) -> bool {
    s.name.is_some() || !is_method
}

fn config(s: &Settings) -> TokenStream {
    let rt = quote!(::breaker_runtime::__private);
    let dur = |d: &std::time::Duration| {
        let secs = d.as_secs();
        let nanos = d.subsec_nanos();
        quote!(::core::time::Duration::new(#secs, #nanos))
    };
    let mut calls = Vec::new();
    if let Some(t) = &s.timeout {
        let d = dur(&t.value);
        calls.push(quote!(.timeout(#d)));
    }
    if let Some(t) = &s.threshold {
        let v = t.value;
        calls.push(quote!(.threshold(#v)));
    }
    if let Some(w) = &s.window {
        let d = dur(&w.value);
        calls.push(quote!(.window(#d)));
    }
    if let Some(r) = &s.failure_rate {
        let v = r.value;
        calls.push(quote!(.failure_rate(#v)));
    }
    if let Some(m) = &s.min_calls {
        let v = m.value;
        calls.push(quote!(.min_calls(#v)));
    }
    if let Some(sc) = &s.slow_call {
        let d = dur(&sc.value);
        calls.push(quote!(.slow_call(#d)));
    }
    // `open_for` also sets `max_open_for`, so it goes first.
    if let Some(o) = &s.open_for {
        let d = dur(&o.value);
        calls.push(quote!(.open_for(#d)));
    }
    if let Some(m) = &s.max_open_for {
        let d = dur(&m.value);
        calls.push(quote!(.max_open_for(#d)));
    }
    if let Some(h) = &s.half_open_probes {
        let v = h.value;
        calls.push(quote!(.half_open_probes(#v)));
    }
    if let Some(q) = &s.quorum {
        let v = q.value;
        calls.push(quote!(.quorum(#v)));
    }
    if let Some(m) = &s.max_concurrent {
        let v = m.value;
        calls.push(quote!(.max_concurrent(#v)));
    }
    if let Some(w) = &s.max_wait {
        let d = dur(&w.value);
        calls.push(quote!(.max_wait(#d)));
    }
    if let Some(st) = &s.store {
        let kind = match st.value {
            Store::Memory => quote!(Memory),
            Store::Redis => quote!(Redis),
        };
        calls.push(quote!(.store(#rt::StoreKind::#kind)));
    }
    if let Some(Valued { value: true, .. }) = &s.shadow {
        calls.push(quote!(.mode(#rt::Mode::Shadow)));
    }
    quote!(#rt::Config::new() #(#calls)*)
}
