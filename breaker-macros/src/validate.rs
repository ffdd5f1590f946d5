//! Validation: gives each argument its type and checks every rule, collecting all mistakes.
//!
//! What each key takes (its [`Kind`], its limits, its example) comes from
//! `breaker_spec::ARGUMENTS`, the table the runtime checks `BREAKER_OVERRIDES` against; only the
//! field each key fills is written here.

use std::time::Duration;

use breaker_spec::{
    ARGUMENTS, Argument, DEFAULT_OPEN_FOR, Kind, MAX_FAILURE_RATE, check_name, parse_duration,
};
use proc_macro2::Span;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, ExprPath, ItemFn, Lit, LitStr, Path, UnOp};

use crate::args::{Arg, Args, Errors, example, nearest};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    Memory,
    Redis,
}

/// A value and where it was written.
#[derive(Clone)]
pub(crate) struct Spanned<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

/// The validated arguments.
#[derive(Default)]
pub(crate) struct Settings {
    pub(crate) name: Option<LitStr>,
    pub(crate) fallback: Option<Path>,
    pub(crate) timeout: Option<Spanned<Duration>>,
    pub(crate) threshold: Option<Spanned<u32>>,
    pub(crate) window: Option<Spanned<Duration>>,
    pub(crate) failure_rate: Option<Spanned<u8>>,
    pub(crate) min_calls: Option<Spanned<u32>>,
    pub(crate) slow_call: Option<Spanned<Duration>>,
    pub(crate) open_for: Option<Spanned<Duration>>,
    pub(crate) max_open_for: Option<Spanned<Duration>>,
    pub(crate) half_open_probes: Option<Spanned<u32>>,
    pub(crate) quorum: Option<Spanned<u32>>,
    pub(crate) max_concurrent: Option<Spanned<u32>>,
    pub(crate) max_wait: Option<Spanned<Duration>>,
    pub(crate) failure_if: Option<Path>,
    pub(crate) store: Option<Spanned<Store>>,
    /// `mode = "shadow"`: `true`; `"enforce"`: `false`.
    pub(crate) shadow: Option<Spanned<bool>>,
}

/// One argument's value, typed by its [`Kind`].
enum Value {
    Name(LitStr),
    Function(Path),
    Duration(Spanned<Duration>),
    Count(Spanned<u32>),
    Percent(Spanned<u8>),
    Store(Spanned<Store>),
    Mode(Spanned<bool>),
}

impl Settings {
    /// Fills the field of `key`, a key of `breaker_spec::ARGUMENTS`, with a value of its kind.
    fn set(&mut self, key: &str, value: Value) {
        match (key, value) {
            ("name", Value::Name(v)) => self.name = Some(v),
            ("fallback", Value::Function(v)) => self.fallback = Some(v),
            ("failure_if", Value::Function(v)) => self.failure_if = Some(v),
            ("timeout", Value::Duration(v)) => self.timeout = Some(v),
            ("window", Value::Duration(v)) => self.window = Some(v),
            ("slow_call", Value::Duration(v)) => self.slow_call = Some(v),
            ("open_for", Value::Duration(v)) => self.open_for = Some(v),
            ("max_open_for", Value::Duration(v)) => self.max_open_for = Some(v),
            ("threshold", Value::Count(v)) => self.threshold = Some(v),
            ("min_calls", Value::Count(v)) => self.min_calls = Some(v),
            ("half_open_probes", Value::Count(v)) => self.half_open_probes = Some(v),
            ("quorum", Value::Count(v)) => self.quorum = Some(v),
            ("max_concurrent", Value::Count(v)) => self.max_concurrent = Some(v),
            ("max_wait", Value::Duration(v)) => self.max_wait = Some(v),
            ("failure_rate", Value::Percent(v)) => self.failure_rate = Some(v),
            ("store", Value::Store(v)) => self.store = Some(v),
            ("mode", Value::Mode(v)) => self.shadow = Some(v),
            // The table and this match are checked against each other by
            // `every_argument_of_the_table_has_a_field`.
            (key, _) => unreachable!("`{key}` of `breaker_spec::ARGUMENTS` has no field here"),
        }
    }
}

/// `value` read as `arg`'s kind of value, or the mistake recorded.
fn typed(arg: &Argument, value: &Expr, errors: &mut Errors) -> Option<Value> {
    match arg.kind {
        Kind::Name => name(value, errors).map(Value::Name),
        Kind::Function => path(arg.name, value, errors).map(Value::Function),
        Kind::Duration => duration(arg.name, value, errors).map(Value::Duration),
        Kind::Count { max } => count(arg, value, max, errors).map(Value::Count),
        Kind::Percent => count(arg, value, u32::from(MAX_FAILURE_RATE), errors).map(|c| {
            Value::Percent(Spanned {
                value: u8::try_from(c.value).unwrap_or(MAX_FAILURE_RATE),
                span: c.span,
            })
        }),
        Kind::Store => store(value, errors).map(Value::Store),
        Kind::Mode => mode(value, errors).map(Value::Mode),
    }
}

/// Checks the arguments and the function; every mistake is collected.
pub(crate) fn validate(args: Args, func: &ItemFn) -> Result<Settings, syn::Error> {
    let mut errors = Errors::default();
    for e in args.errors {
        errors.add(e);
    }
    let mut s = Settings::default();
    let mut seen: Vec<String> = Vec::new();
    for Arg { key, value } in args.args {
        let k = key.to_string();
        if seen.contains(&k) {
            errors.push(
                key.span(),
                format!("duplicate argument `{k}`; give each argument once"),
            );
            continue;
        }
        seen.push(k.clone());
        match breaker_spec::argument(&k) {
            Some(arg) => {
                if let Some(v) = typed(arg, &value, &mut errors) {
                    s.set(arg.name, v);
                }
            }
            None => {
                let valid = ARGUMENTS
                    .iter()
                    .map(|a| format!("`{}`", a.name))
                    .collect::<Vec<_>>();
                let hint = nearest(&k)
                    .map(|n| format!("did you mean `{n}`? "))
                    .unwrap_or_default();
                errors.push(
                    key.span(),
                    format!(
                        "unknown argument `{k}`; {hint}expected one of {}",
                        valid.join(", ")
                    ),
                );
            }
        }
    }
    cross_checks(&s, func, &mut errors);
    errors.finish().map(|()| s)
}

fn cross_checks(s: &Settings, func: &ItemFn, errors: &mut Errors) {
    if let Some(max) = &s.max_open_for {
        let open = s.open_for.as_ref().map_or(DEFAULT_OPEN_FOR, |o| o.value);
        if max.value < open {
            errors.push(
                max.span,
                format!(
                    "`max_open_for` ({:?}) is shorter than `open_for` ({open:?}); it is the upper \
                     bound the open period doubles up to",
                    max.value
                ),
            );
        }
    }
    if let (Some(m), None) = (&s.min_calls, &s.failure_rate) {
        errors.push(
            m.span,
            "`min_calls` only applies to the rate rule; add `failure_rate = 50` or remove `min_calls`",
        );
    }
    if let Some(q) = &s.quorum
        && s.store.as_ref().is_none_or(|st| st.value == Store::Memory)
    {
        errors.push(
            q.span,
            "`quorum` counts the instances of a fleet that share a store; it needs \
             `store = \"redis\"` (a `store = \"memory\"` breaker is one instance)",
        );
    }
    if let (Some(w), None) = (&s.max_wait, &s.max_concurrent) {
        errors.push(
            w.span,
            "`max_wait` is how long a call waits for a place in a bulkhead; it needs \
             `max_concurrent = N` (without it every call runs at once)",
        );
    }
    let sig = &func.sig;
    if let Some(c) = &sig.constness {
        errors.push(
            c.span(),
            "`#[circuit_breaker]` cannot be used on a `const fn`: the breaker keeps state at run \
             time and times the call; write `async fn` instead of `const fn`",
        );
    } else if sig.asyncness.is_none() {
        errors.push(
            sig.fn_token.span(),
            "`#[circuit_breaker]` needs an `async fn`: the breaker times and abandons calls, so \
             the function must be a future",
        );
    }
    match &sig.output {
        syn::ReturnType::Default => errors.push(
            sig.ident.span(),
            "a `#[circuit_breaker]` function must return a `Result`; the breaker counts `Err` as \
             a failure: add `-> Result<_, YourError>`",
        ),
        // Types that are plainly not a `Result` are reported here, once, on the type; anything
        // else (an alias such as `io::Result<T>`, a user type) is left to the `BreakerResult`
        // bound, since only rustc can see through aliases.
        syn::ReturnType::Type(_, ty) if never_a_result(ty) => errors.add(syn::Error::new_spanned(
            ty,
            format!(
                "a `#[circuit_breaker]` function must return a `Result`, not `{}`; the breaker \
                 counts `Err` as a failure: return `Result<_, YourError>`",
                type_text(ty)
            ),
        )),
        syn::ReturnType::Type(..) => {}
    }
    if let Some(fb) = &s.fallback {
        let segs: Vec<_> = fb.segments.iter().map(|s| s.ident.to_string()).collect();
        let own = sig.ident.to_string();
        let is_self = segs == [own.clone()] || segs == ["Self".to_owned(), own.clone()];
        if is_self {
            errors.add(syn::Error::new_spanned(
                fb,
                format!(
                    "`{own}` cannot be its own fallback: a failing call would call itself again; \
                     name another function"
                ),
            ));
        }
        for input in &sig.inputs {
            if let syn::FnArg::Typed(t) = input
                && !matches!(*t.pat, syn::Pat::Ident(ref i) if i.by_ref.is_none() && i.subpat.is_none())
            {
                errors.add(syn::Error::new_spanned(
                    &t.pat,
                    "with a `fallback`, parameters must be plain names so they can be passed on to \
                     the fallback; bind the pattern inside the body instead",
                ));
            }
        }
    }
}

/// Whether `ty` can never name a `Result`, whatever is in scope: unit, tuples, references,
/// arrays, `impl`/`dyn` traits, `!`, and the standard types most often returned by mistake.
fn never_a_result(ty: &syn::Type) -> bool {
    use syn::Type;
    const NOT_RESULT: &[&str] = &[
        "Option", "Vec", "String", "Box", "bool", "char", "str", "u8", "u16", "u32", "u64", "u128",
        "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64",
    ];
    match ty {
        Type::Group(g) => never_a_result(&g.elem),
        Type::Paren(p) => never_a_result(&p.elem),
        Type::Tuple(_)
        | Type::Reference(_)
        | Type::Array(_)
        | Type::Slice(_)
        | Type::ImplTrait(_)
        | Type::TraitObject(_)
        | Type::Never(_)
        | Type::BareFn(_)
        | Type::Ptr(_) => true,
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| NOT_RESULT.iter().any(|n| s.ident == n)),
        _ => false,
    }
}

/// `ty` as written, near enough: token text without the spaces `quote` puts around `<`, `>`,
/// `::`, `&` and before `,`.
fn type_text(ty: &syn::Type) -> String {
    let mut t = quote::quote!(#ty).to_string();
    for (from, to) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ::", "::"),
        (":: ", "::"),
        ("& ", "&"),
        (" ,", ","),
    ] {
        t = t.replace(from, to);
    }
    t
}

fn name(value: &Expr, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            // The rule is breaker-spec's, shared with the operator tools that take names at
            // run time.
            match check_name(&s.value()) {
                Ok(()) => Some(s.clone()),
                Err(e) => {
                    errors.push(s.span(), format!("`name` {e}, e.g. `{}`", example("name")));
                    None
                }
            }
        }
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                "`name` takes a string literal, e.g. `name = \"daum\"`",
            ));
            None
        }
    }
}

fn path(key: &str, value: &Expr, errors: &mut Errors) -> Option<Path> {
    match value {
        Expr::Path(ExprPath {
            path, qself: None, ..
        }) => Some(path.clone()),
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            errors.push(
                s.span(),
                format!(
                    "`{key}` takes a function path, not a string: write `{key} = {}`",
                    s.value()
                ),
            );
            None
        }
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                format!("`{key}` takes a function path, e.g. `{}`", example(key)),
            ));
            None
        }
    }
}

fn duration(key: &str, value: &Expr, errors: &mut Errors) -> Option<Spanned<Duration>> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match parse_duration(&s.value()) {
            Ok(d) => Some(Spanned {
                value: d,
                span: s.span(),
            }),
            Err(m) => {
                errors.push(s.span(), format!("invalid `{key}`: {m}"));
                None
            }
        },
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => {
            errors.push(
                i.span(),
                format!(
                    "`{key}` needs a unit: write `{key} = \"{}s\"` or `\"{}ms\"`",
                    i.base10_digits(),
                    i.base10_digits()
                ),
            );
            None
        }
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                format!("`{key}` takes a duration string, e.g. `{}`", example(key)),
            ));
            None
        }
    }
}

/// An integer from 1 to `max`.
fn count(arg: &Argument, value: &Expr, max: u32, errors: &mut Errors) -> Option<Spanned<u32>> {
    let key = arg.name;
    let range = || {
        if arg.kind == Kind::Percent {
            format!("a percentage from 1 to {max}")
        } else {
            format!("an integer from 1 to {max}")
        }
    };
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => match i.base10_parse::<u64>() {
            Ok(n) if (1..=u64::from(max)).contains(&n) => Some(Spanned {
                value: u32::try_from(n).unwrap_or(max),
                span: i.span(),
            }),
            // syn reads `-1` in an attribute as one negative literal (spanning only the `-` on
            // stable, where spans cannot be joined).
            _ if i.base10_digits().starts_with('-') => {
                errors.push(
                    i.span(),
                    format!("`{key}` cannot be negative: expected {}", range()),
                );
                None
            }
            _ => {
                errors.push(
                    i.span(),
                    format!(
                        "`{key} = {}` is out of range: expected {}",
                        i.base10_digits(),
                        range()
                    ),
                );
                None
            }
        },
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => {
            errors.add(syn::Error::new_spanned(
                u,
                format!("`{key}` cannot be negative: expected {}", range()),
            ));
            None
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => {
            errors.push(
                s.span(),
                format!(
                    "`{key}` takes an integer, not a string: write `{key} = {}`",
                    s.value()
                ),
            );
            None
        }
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                format!("`{key}` takes {}, e.g. `{}`", range(), arg.usage()),
            ));
            None
        }
    }
}

fn mode(value: &Expr, errors: &mut Errors) -> Option<Spanned<bool>> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.value().as_str() {
            "shadow" => Some(Spanned {
                value: true,
                span: s.span(),
            }),
            "enforce" => Some(Spanned {
                value: false,
                span: s.span(),
            }),
            other => {
                errors.push(
                    s.span(),
                    format!("unknown mode `{other}`; expected `\"shadow\"` or `\"enforce\"`"),
                );
                None
            }
        },
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                "`mode` takes a string: `mode = \"shadow\"` or `mode = \"enforce\"`",
            ));
            None
        }
    }
}

fn store(value: &Expr, errors: &mut Errors) -> Option<Spanned<Store>> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.value().as_str() {
            "memory" => Some(Spanned {
                value: Store::Memory,
                span: s.span(),
            }),
            "redis" => Some(Spanned {
                value: Store::Redis,
                span: s.span(),
            }),
            other => {
                errors.push(
                    s.span(),
                    format!("unknown store `{other}`; expected `\"memory\"` or `\"redis\"`"),
                );
                None
            }
        },
        other => {
            errors.add(syn::Error::new_spanned(
                other,
                "`store` takes a string: `store = \"memory\"` or `store = \"redis\"`",
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: Args, f: &ItemFn) -> Vec<String> {
        match validate(args, f) {
            Ok(_) => vec![],
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    fn func() -> ItemFn {
        syn::parse_quote!(
            async fn daum(q: &str) -> Result<u32, E> {
                Ok(1)
            }
        )
    }

    #[test]
    fn every_argument_of_the_table_has_a_field() {
        for arg in ARGUMENTS {
            // The companions an argument needs to be valid on its own.
            let with = match arg.name {
                "min_calls" => ", failure_rate = 50",
                "quorum" => ", store = \"redis\"",
                "max_wait" => ", max_concurrent = 10",
                _ => "",
            };
            let args: Args = syn::parse_str(&format!("{}{with}", arg.usage()))
                .unwrap_or_else(|e| panic!("{}: {e}", arg.name));
            assert!(args.errors.is_empty(), "{}", arg.name);
            let errs = check(args, &func());
            assert!(errs.is_empty(), "{}: {errs:?}", arg.name);
        }
    }

    #[test]
    fn durations_are_strict_in_the_attribute() {
        let errs = check(syn::parse_quote!(timeout = " 3s"), &func());
        assert_eq!(
            errs,
            ["invalid `timeout`: ` 3s` is not a duration; expected e.g. \"3s\" or \"250ms\""]
        );
        let errs = check(syn::parse_quote!(window = "1000000001s"), &func());
        assert_eq!(
            errs,
            ["invalid `window`: `1000000001s` is too long (at most 1000000000s)"]
        );
    }

    #[test]
    fn all_mistakes_are_reported_at_once() {
        let errs = check(
            syn::parse_quote!(treshold = 5, timeout = "3", threshold = "5", store = "disk"),
            &func(),
        );
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].contains("did you mean `threshold`"));
        assert!(errs[1].contains("no unit"));
        assert!(errs[2].contains("not a string"));
        assert!(errs[3].contains("unknown store `disk`"));
    }

    #[test]
    fn accepted_settings_are_typed() {
        let s = validate(
            syn::parse_quote!(
                name = "daum",
                fallback = juso,
                timeout = "3s",
                threshold = 5,
                window = "60s",
                failure_rate = 50,
                min_calls = 10,
                open_for = "30s",
                max_open_for = "5m",
                half_open_probes = 2,
                store = "redis"
            ),
            &func(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name.unwrap().value(), "daum");
        assert_eq!(s.timeout.unwrap().value, Duration::from_secs(3));
        assert_eq!(s.failure_rate.unwrap().value, 50);
        assert_eq!(s.max_open_for.unwrap().value, Duration::from_secs(300));
        assert_eq!(s.store.unwrap().value, Store::Redis);
    }

    #[test]
    fn plainly_wrong_return_types_are_caught_before_rustc() {
        let f: ItemFn = syn::parse_quote!(
            async fn daum() -> Option<Vec<u8>> {
                None
            }
        );
        let errs = check(syn::parse_quote!(), &f);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("not `Option<Vec<u8>>`"), "{errs:?}");
        let f: ItemFn = syn::parse_quote!(
            async fn daum() -> &'static str {
                ""
            }
        );
        assert!(check(syn::parse_quote!(), &f)[0].contains("not `&'static str`"));
        // Aliases and user types are left to rustc's `BreakerResult` bound.
        let f: ItemFn = syn::parse_quote!(
            async fn daum() -> io::Result<()> {
                Ok(())
            }
        );
        assert!(check(syn::parse_quote!(), &f).is_empty());
        let f: ItemFn = syn::parse_quote!(
            async fn daum() -> Reply {
                Reply
            }
        );
        assert!(check(syn::parse_quote!(), &f).is_empty());
    }

    #[test]
    fn const_fn_is_one_mistake_and_negatives_are_named() {
        let f: ItemFn = syn::parse_quote!(
            const fn daum() -> Result<u32, E> {
                Ok(1)
            }
        );
        let errs = check(syn::parse_quote!(), &f);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("`const fn`"), "{errs:?}");
        let errs = check(syn::parse_quote!(threshold = -3), &func());
        assert!(errs[0].contains("cannot be negative"), "{errs:?}");
    }

    #[test]
    fn cross_field_rules() {
        let errs = check(syn::parse_quote!(max_open_for = "10s"), &func());
        assert!(errs[0].contains("shorter than `open_for`"), "{errs:?}");
        let errs = check(syn::parse_quote!(min_calls = 3), &func());
        assert!(
            errs[0].contains("only applies to the rate rule"),
            "{errs:?}"
        );
        let errs = check(syn::parse_quote!(fallback = daum), &func());
        assert!(errs[0].contains("cannot be its own fallback"), "{errs:?}");
        let errs = check(syn::parse_quote!(fallback = Self::daum), &func());
        assert!(errs[0].contains("cannot be its own fallback"), "{errs:?}");
    }
}
