//! `#[circuit_breaker]`: the attribute half of `breaker-runtime`. Use it through
//! `breaker_runtime::circuit_breaker`; this crate is an implementation detail.
//!
//! The attribute is read in three steps, each on `proc_macro2` so each can be tested alone:
//! `args` parses the `key = value` list, `validate` types every value and checks every rule
//! (collecting all mistakes, so one build shows them all), and `expand` rewrites the body.
//! What each key takes, the defaults, the limits and the duration grammar are the crate
//! `breaker-spec`, which the runtime reads too. Type facts the macro cannot see (is the return
//! type a `Result`, does the error type take a `BreakerError`, is an owned argument `Clone`,
//! does the fallback match) are left to rustc, through traits in `breaker_runtime::__private`
//! with `#[diagnostic::on_unimplemented]` messages.
//!
//! `src/snapshots/` holds what the attribute expands to for each shape of function and
//! arguments (the tests in `tests.rs`).

use proc_macro2::TokenStream;

mod args;
mod expand;
#[cfg(test)]
mod tests;
mod validate;

/// Routes every call of an `async fn` through a circuit breaker.
///
/// See the `breaker-runtime` crate for the arguments and their meaning.
#[proc_macro_attribute]
pub fn circuit_breaker(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    circuit_breaker2(attr.into(), item.into()).into()
}

/// The attribute on `proc_macro2` tokens: parse, validate, expand.
fn circuit_breaker2(attr: TokenStream, item: TokenStream) -> TokenStream {
    let Ok(func) = syn::parse2::<syn::ItemFn>(item.clone()) else {
        let e = syn::Error::new(
            proc_macro2::Span::call_site(),
            "`#[circuit_breaker]` goes on an `async fn` with a body",
        );
        return unchanged_with(&e, item);
    };
    let args = match syn::parse2::<args::Args>(attr) {
        Ok(args) => args,
        Err(e) => return unchanged_with(&e, item),
    };
    match validate::validate(args, &func) {
        Ok(settings) => expand::expand(&settings, func),
        Err(e) => unchanged_with(&e, item),
    }
}

/// The errors, and the function as it was written, so the rest of the crate (and the IDE) still
/// sees it.
fn unchanged_with(e: &syn::Error, item: TokenStream) -> TokenStream {
    let mut out = e.to_compile_error();
    out.extend(item);
    out
}
