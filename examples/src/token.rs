//! Bearer tokens: the admin API's and the mock providers' control endpoints'.

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq as _;

/// The shortest admin token accepted, in characters: with the per-client admin rate limit,
/// short enough to type and long enough that guessing it over HTTP takes forever.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Whether `given` equals `expected`, in time that does not depend on where they differ
/// (`subtle`); tokens of different lengths are unequal.
#[must_use]
pub(crate) fn matches(given: &[u8], expected: &[u8]) -> bool {
    bool::from(given.ct_eq(expected))
}

/// The token of an `Authorization: Bearer <token>` header, trimmed; `None` without one.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    scheme
        .eq_ignore_ascii_case(b"bearer ")
        .then(|| token.trim_ascii())
}

/// A random 128-bit token in hex: from `/dev/urandom`, or else from the standard library's
/// randomly keyed hasher (itself seeded from the operating system's random source).
#[must_use]
pub(crate) fn generate() -> String {
    use std::fmt::Write as _;
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        for (i, half) in bytes.chunks_mut(8).enumerate() {
            // A fresh RandomState per half: each is keyed apart.
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
                h.write_u128(t.as_nanos());
            }
            half.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().fold(String::with_capacity(32), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(matches(b"secret-token", b"secret-token"));
        assert!(!matches(b"secret-tokeN", b"secret-token"));
        assert!(!matches(b"secret", b"secret-token"));
        assert!(!matches(b"secret-token-and-more", b"secret-token"));
        assert!(!matches(b"", b"secret-token"));
    }

    #[test]
    fn generated_tokens_are_32_hex_digits_and_differ() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_trimmed() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc "),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer(&h), Some(&b"abc"[..]));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bear"));
        assert_eq!(bearer(&h), None);
    }
}
