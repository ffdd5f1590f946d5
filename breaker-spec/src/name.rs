//! What a breaker's name may be: checked by the attribute at compile time (`name = "…"`) and by
//! the runtime's operator tools where a name arrives at run time.

use std::fmt;

use crate::MAX_NAME_LEN;

/// The characters of a Redis Cluster hash tag. A breaker's keys are `<prefix>:{<name>}:s`...: a
/// brace in the name (or in the prefix) would move the tag, so the keys of one breaker could land
/// in different slots (or every breaker in one). Neither a name nor a key prefix may hold them.
pub const HASH_TAG_CHARS: [char; 2] = ['{', '}'];

/// Why a text is not a breaker name (see [`check_name`]).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Empty, longer than [`MAX_NAME_LEN`] bytes, or with whitespace or a control character.
    Shape,
    /// Holds `{` or `}` ([`HASH_TAG_CHARS`]).
    Brace(char),
}

impl fmt::Display for NameError {
    /// The rule broken, to follow the name of what was checked: "`name` must ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Shape => {
                write!(f, "must be 1 to {MAX_NAME_LEN} characters without spaces")
            }
            NameError::Brace(_) => f.write_str(
                "must not contain `{` or `}`: they delimit the Redis Cluster hash tag of the \
                 breaker's keys",
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Whether `name` can name a breaker: 1 to [`MAX_NAME_LEN`] bytes, without whitespace, control
/// characters, `{` or `}`.
///
/// ```
/// use breaker_spec::{NameError, check_name};
/// assert_eq!(check_name("provider.daum"), Ok(()));
/// assert_eq!(check_name("a b"), Err(NameError::Shape));
/// assert_eq!(check_name("a{b}"), Err(NameError::Brace('{')));
/// ```
///
/// # Errors
/// The first rule `name` breaks.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(NameError::Shape);
    }
    match name.chars().find(|c| HASH_TAG_CHARS.contains(c)) {
        Some(c) => Err(NameError::Brace(c)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rule() {
        for good in ["daum", "provider.daum", "app::svc::Type::m", "주소", "a|b"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for shape in ["", "a b", "a\tb", "a\u{1b}b", "a\u{7f}", long.as_str()] {
            assert_eq!(check_name(shape), Err(NameError::Shape), "{shape:?}");
        }
        assert_eq!(check_name(&"x".repeat(MAX_NAME_LEN)), Ok(()));
        assert_eq!(check_name("a{b"), Err(NameError::Brace('{')));
        assert_eq!(check_name("a}b"), Err(NameError::Brace('}')));
        assert_eq!(check_name("{}"), Err(NameError::Brace('{')));
        assert!(NameError::Brace('{').to_string().contains("hash tag"));
    }
}
