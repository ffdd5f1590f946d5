//! What `#[circuit_breaker]` expands to: one snapshot per shape of function and arguments, in
//! `src/snapshots/`, each with the input as written above the expansion. A change to the
//! generated code fails these tests until the snapshots are updated, so it shows in review as a
//! diff of the generated code: run `cargo insta review` (or `INSTA_UPDATE=always cargo test -p
//! breaker-macros`, then read `git diff`).

use proc_macro2::TokenStream;
use quote::quote;

/// The attribute with `attr` applied to `item`, as the user wrote it, then what it expands to.
fn expansion(attr: TokenStream, item: TokenStream) -> String {
    expansion_in(None, attr, item)
}

/// As [`expansion`], for a method of `impl #ty`.
fn expansion_in(ty: Option<TokenStream>, attr: TokenStream, item: TokenStream) -> String {
    let attribute = if attr.is_empty() {
        quote!(#[circuit_breaker])
    } else {
        quote!(#[circuit_breaker(#attr)])
    };
    let input = quote!(#attribute #item);
    let output = crate::circuit_breaker2(attr, item);
    let (input, output) = match ty {
        Some(ty) => (quote!(impl #ty { #input }), quote!(impl #ty { #output })),
        None => (input, output),
    };
    format!("{}\n// ↓\n\n{}", pretty(input), pretty(output))
}

fn pretty(tokens: TokenStream) -> String {
    let file: syn::File =
        syn::parse2(tokens).unwrap_or_else(|e| panic!("not a list of items: {e}"));
    prettyplease::unparse(&file)
}

/// Snapshot files are named after the test alone (`src/snapshots/fallback.snap`), and hold
/// only the expansion, not the expression that produced it.
fn settings() -> impl Sized {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s.bind_to_scope()
}

#[test]
fn no_arguments() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn name() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(name = "provider.daum"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn timeout() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(timeout = "800ms"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn fallback() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(fallback = juso),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn timeout_and_fallback() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(fallback = juso, timeout = "3s"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn failure_if() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(failure_if = is_outage),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn store_redis_with_quorum() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(name = "provider.daum", store = "redis", quorum = 2),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn count_rule() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(
            threshold = 3,
            window = "30s",
            open_for = "5s",
            max_open_for = "1m",
            half_open_probes = 2
        ),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn rate_rule() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(failure_rate = 50, min_calls = 20, window = "60s"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn slow_call() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(slow_call = "1s"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

/// Without a `name`, the breaker of a method is named after `Self` at its first call.
#[test]
fn method() {
    let _s = settings();
    insta::assert_snapshot!(expansion_in(
        Some(quote!(Client)),
        quote!(threshold = 3),
        quote! {
            async fn get(&self, path: &str) -> Result<String, SearchError> {
                self.fetch(path).await
            }
        },
    ));
}

/// An owned `self` is moved into the body; a `&mut` parameter is reborrowed for it, so both
/// are still there for the fallback.
#[test]
fn owned_self_with_fallback() {
    let _s = settings();
    insta::assert_snapshot!(expansion_in(
        Some(quote!(Client)),
        quote!(fallback = Self::offline),
        quote! {
            async fn into_base(self, log: &mut Vec<String>) -> Result<String, SearchError> {
                log.push(self.base.clone());
                Ok(self.base)
            }
        },
    ));
}

#[test]
fn generic_fn() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(fallback = first_or_default),
        quote! {
            async fn first<T>(items: Vec<T>) -> Result<T, AppError>
            where
                T: Clone + Default,
            {
                items.into_iter().next().ok_or(AppError::Empty)
            }
        },
    ));
}

#[test]
fn impl_trait_arguments() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(threshold = 5),
        quote! {
            async fn total(values: impl IntoIterator<Item = u32>, scale: &impl Scale) -> Result<u32, AppError> {
                Ok(scale.apply(values.into_iter().sum()))
            }
        },
    ));
}

/// An owned parameter is cloned before the call, for the fallback; a borrowed one is passed on
/// as it is; a pattern is bound inside the body.
#[test]
fn owned_arguments_with_fallback() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(fallback = upload_later),
        quote! {
            async fn upload(name: String, mut bytes: Vec<u8>, bucket: &Bucket) -> Result<Receipt, StoreError> {
                bytes.extend_from_slice(b"\n");
                bucket.put(&name, bytes).await
            }
        },
    ));
}

#[test]
fn pattern_parameter() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(),
        quote! {
            async fn area((width, height): (u32, u32)) -> Result<u32, AppError> {
                width.checked_mul(height).ok_or(AppError::Overflow)
            }
        },
    ));
}

/// primary → secondary → emergency, each its own breaker: a fallback is a plain call, so a
/// fallback that is itself a breaker needs nothing more.
#[test]
fn fallback_chain() {
    let _s = settings();
    let chain = [
        expansion(
            quote!(name = "primary", fallback = secondary),
            quote! {
                async fn primary(q: String) -> Result<String, AppError> {
                    ask("primary", q).await
                }
            },
        ),
        expansion(
            quote!(name = "secondary", fallback = emergency),
            quote! {
                async fn secondary(q: String) -> Result<String, AppError> {
                    ask("secondary", q).await
                }
            },
        ),
        expansion(
            quote!(name = "emergency"),
            quote! {
                async fn emergency(q: String) -> Result<String, AppError> {
                    Ok(format!("emergency:{q}"))
                }
            },
        ),
    ];
    insta::assert_snapshot!(chain.join("\n// ---\n\n"));
}

/// A mistake: the function comes back unchanged, after the errors, so the rest of the crate
/// still sees it.
#[test]
fn mistakes_keep_the_function() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(treshold = 5, timeout = "3"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}

#[test]
fn shadow_mode() {
    let _s = settings();
    insta::assert_snapshot!(expansion(
        quote!(mode = "shadow", timeout = "3s"),
        quote! {
            async fn daum(query: &str) -> Result<Vec<Address>, SearchError> {
                search(query).await
            }
        },
    ));
}
