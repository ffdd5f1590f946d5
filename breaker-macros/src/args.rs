//! Parsing: the attribute's `key = value` list, with spans, before any meaning is given to it
//! (the keys and what they take are `breaker_spec::ARGUMENTS`).

use breaker_spec::{ARGUMENTS, Argument};
use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Ident, Meta, Token};

/// One `key = value` pair.
pub(crate) struct Arg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

/// The attribute's arguments, or the errors found while reading them.
pub(crate) struct Args {
    pub(crate) args: Vec<Arg>,
    pub(crate) errors: Vec<syn::Error>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let metas = Punctuated::<Meta, Token![,]>::parse_terminated(input)?;
        let mut args = Vec::new();
        let mut errors = Vec::new();
        for meta in metas {
            match meta {
                Meta::NameValue(nv) => match nv.path.get_ident() {
                    Some(key) => args.push(Arg {
                        key: key.clone(),
                        value: nv.value,
                    }),
                    None => errors.push(syn::Error::new(
                        nv.path.span(),
                        "expected an argument name such as `threshold`",
                    )),
                },
                Meta::Path(p) => errors.push(syn::Error::new(
                    p.span(),
                    format!(
                        "expected `{0} = ...`, e.g. `{1}`",
                        path_text(&p),
                        example(&path_text(&p))
                    ),
                )),
                Meta::List(l) => errors.push(syn::Error::new(
                    l.span(),
                    format!(
                        "expected `{0} = ...`, e.g. `{1}`",
                        path_text(&l.path),
                        example(&path_text(&l.path))
                    ),
                )),
            }
        }
        Ok(Args { args, errors })
    }
}

fn path_text(p: &syn::Path) -> String {
    p.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// An example of `key`'s use, or a generic one for an unknown key.
pub(crate) fn example(key: &str) -> String {
    breaker_spec::argument(key).map_or_else(|| format!("{key} = ..."), Argument::usage)
}

/// The known key closest to `key`, if it is close enough to be a likely typo.
pub(crate) fn nearest(key: &str) -> Option<&'static str> {
    ARGUMENTS
        .iter()
        .map(|a| (a.name, distance(key, a.name)))
        .filter(|(k, d)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Collects errors so one build reports every mistake.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    pub(crate) fn add(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_suggests_typos_only() {
        assert_eq!(nearest("treshold"), Some("threshold"));
        assert_eq!(nearest("timout"), Some("timeout"));
        assert_eq!(nearest("fallbak"), Some("fallback"));
        assert_eq!(nearest("half_open_probe"), Some("half_open_probes"));
        assert_eq!(nearest("color"), None);
    }

    #[test]
    fn parses_pairs_and_reports_bare_keys() {
        let a: Args = syn::parse_quote!(threshold = 5, fallback = juso, store);
        assert_eq!(a.args.len(), 2);
        assert_eq!(a.errors.len(), 1);
        assert!(a.errors[0].to_string().contains("store = \"memory\""));
    }
}
