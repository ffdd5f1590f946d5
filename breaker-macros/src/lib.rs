//! `#[circuit_breaker]`: the attribute half of `breaker-runtime`. Use it through
//! `breaker_runtime::circuit_breaker`; this crate is an implementation detail.
//!
//! The attribute is read in three steps, each on `proc_macro2` so each can be tested alone:
//! `args` parses the `key = value` list, `validate` types every value and checks every rule
//! (collecting all mistakes, so one build shows them all), and `expand` rewrites the body.
//! Type facts the macro cannot see (is the return type a `Result`, does the error type take a
//! `BreakerError`, is an owned argument `Clone`, does the fallback match) are left to rustc,
//! through traits in `breaker_runtime::__private` with `#[diagnostic::on_unimplemented]`
//! messages.

use proc_macro::TokenStream;

mod args;
mod expand;
mod validate;

/// Routes every call of an `async fn` through a circuit breaker.
///
/// See the `breaker-runtime` crate for the arguments and their meaning.
#[proc_macro_attribute]
pub fn circuit_breaker(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let func: syn::ItemFn = match syn::parse(item) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[circuit_breaker]` goes on an `async fn` with a body",
            );
            let e = e.to_compile_error();
            return quote::quote!(#e #item2).into();
        }
    };
    let args: args::Args = match syn::parse(attr) {
        Ok(a) => a,
        Err(e) => {
            let e = e.to_compile_error();
            return quote::quote!(#e #item2).into();
        }
    };
    match validate::validate(args, &func) {
        Ok(settings) => expand::expand(&settings, func).into(),
        // Emit the function unchanged beside the errors, so the rest of the crate (and the IDE)
        // still sees it.
        Err(e) => {
            let e = e.to_compile_error();
            quote::quote!(#e #item2).into()
        }
    }
}
