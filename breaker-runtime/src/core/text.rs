//! Text that reaches people from somewhere else: an operator's notice shown to users on a web
//! page, names, errors and audit entries printed on an operator's terminal or sent to a chat.
//! One rule for what must not get through as it is ([`is_unsafe_char`]), one way to show it
//! ([`escape_controls`]), and the notice's bounds ([`check_notice`]). No I/O.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// The longest notice, in characters (not bytes): [`check_notice`] refuses more.
pub const MAX_NOTICE_CHARS: usize = 500;

/// Whether `c` must not reach a terminal, a web page or a chat as it is:
///
/// - the C0 and C1 control characters and DEL (`char::is_control`: U+0000–U+001F,
///   U+007F–U+009F; ESC starts terminal escape sequences, U+009B is a one-character CSI, and
///   newline and tab are included: the texts this guards are one line);
/// - the Unicode bidirectional controls (U+061C, U+200E, U+200F, U+202A–U+202E,
///   U+2066–U+2069), which reorder what follows them (`\u{202e}exe.live` shows as
///   `evil.exe`);
/// - the line and paragraph separators U+2028 and U+2029.
///
/// ```
/// use breaker_runtime::is_unsafe_char;
/// assert!(is_unsafe_char('\x1b') && is_unsafe_char('\n') && is_unsafe_char('\u{202e}'));
/// assert!(!is_unsafe_char('a') && !is_unsafe_char('주') && !is_unsafe_char('🔴'));
/// ```
#[must_use]
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// What kind of unsafe character `c` is, in words.
fn kind(c: char) -> &'static str {
    if c.is_control() {
        "a control character"
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        "a line separator"
    } else {
        "a bidirectional text control"
    }
}

/// `text` with every [`is_unsafe_char`] written out as Rust writes it, `\u{1b}`, so it can be
/// printed or sent safely and still be read. Borrowed when there is nothing to escape.
///
/// ```
/// use breaker_runtime::escape_controls;
/// assert_eq!(escape_controls("\x1b[31mred\u{202e}"), r"\u{1b}[31mred\u{202e}");
/// assert_eq!(escape_controls("line 1\nline 2"), r"line 1\u{a}line 2");
/// assert!(matches!(escape_controls("plain 주소"), std::borrow::Cow::Borrowed(_)));
/// ```
#[must_use]
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.contains(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `text` (cut on a character boundary), with `…` after a cut.
#[must_use]
pub(crate) fn clip(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}…", &text[..i])),
        None => Cow::Borrowed(text),
    }
}

/// Why a notice was refused (see [`check_notice`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeError {
    /// Longer than [`MAX_NOTICE_CHARS`].
    TooLong {
        /// Its length, in characters.
        chars: usize,
    },
    /// It holds a character [`is_unsafe_char`] refuses.
    UnsafeChar {
        /// The first such character.
        char: char,
        /// Where, in characters from 1.
        position: usize,
    },
}

impl fmt::Display for NoticeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoticeError::TooLong { chars } => write!(
                f,
                "a notice is at most {MAX_NOTICE_CHARS} characters; this one has {chars}"
            ),
            NoticeError::UnsafeChar { char, position } => write!(
                f,
                "U+{:04X} at character {position} ({}) is not allowed in a notice: a notice is \
                 one line of plain text, without control characters (newline and tab \
                 included) or bidirectional text controls",
                u32::from(*char),
                kind(*char)
            ),
        }
    }
}

impl std::error::Error for NoticeError {}

/// Whether `text` can be a user-facing notice: at most [`MAX_NOTICE_CHARS`] characters and no
/// [`is_unsafe_char`] (no control character, newline and tab included, no bidirectional
/// control). A notice is shown to users as one line on a web page; this is what
/// `Handle::set_notice` and `breakerctl notice` check, and what a web console should check
/// before it calls them. The empty text passes (setting it clears the notice).
///
/// ```
/// use breaker_runtime::{NoticeError, check_notice};
/// assert_eq!(check_notice("Address search is down; type your address"), Ok(()));
/// assert_eq!(
///     check_notice("down\x1b[31m"),
///     Err(NoticeError::UnsafeChar { char: '\x1b', position: 5 })
/// );
/// assert_eq!(
///     check_notice("a\nb").unwrap_err().to_string(),
///     "U+000A at character 2 (a control character) is not allowed in a notice: a notice is \
///      one line of plain text, without control characters (newline and tab included) or \
///      bidirectional text controls"
/// );
/// assert!(matches!(check_notice(&"x".repeat(501)), Err(NoticeError::TooLong { chars: 501 })));
/// ```
///
/// # Errors
/// The text is too long, or the first unsafe character and where it is.
pub fn check_notice(text: &str) -> Result<(), NoticeError> {
    let chars = text.chars().count();
    if chars > MAX_NOTICE_CHARS {
        return Err(NoticeError::TooLong { chars });
    }
    match text.chars().enumerate().find(|(_, c)| is_unsafe_char(*c)) {
        Some((i, c)) => Err(NoticeError::UnsafeChar {
            char: c,
            position: i + 1,
        }),
        None => Ok(()),
    }
}

/// A notice as this process shows it, whoever wrote it: an old version or a hostile writer may
/// have put anything in Redis, so what [`check_notice`] refuses is escaped and clipped to
/// [`MAX_NOTICE_CHARS`] rather than shown as it is. Borrowed when the notice is fine.
pub(crate) fn shown_notice(text: &str) -> Cow<'_, str> {
    if check_notice(text).is_ok() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(clip(&escape_controls(text), MAX_NOTICE_CHARS).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unsafe_character_is_named_by_code_point_and_position() {
        for (text, code, position) in [
            ("\x00", "U+0000", 1),
            ("ab\x1b[31m", "U+001B", 3),
            ("\x7f", "U+007F", 1),
            ("x\u{9b}", "U+009B", 2),
            ("\u{61c}", "U+061C", 1),
            ("\u{200e}", "U+200E", 1),
            ("\u{200f}", "U+200F", 1),
            ("\u{202a}", "U+202A", 1),
            ("주소 \u{202e}", "U+202E", 4),
            ("\u{2066}", "U+2066", 1),
            ("\u{2069}", "U+2069", 1),
            ("\u{2028}", "U+2028", 1),
        ] {
            let e = check_notice(text).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with(&format!("{code} at character {position} (")),
                "{text:?}: {e}"
            );
            assert!(!escape_controls(text).contains(is_unsafe_char), "{text:?}");
        }
        // Zero-width joiners, emoji, Hangul, RTL letters themselves are text.
        assert_eq!(check_notice("🔴 주소 검색 שלום \u{200d}"), Ok(()));
        assert_eq!(check_notice(""), Ok(()));
    }

    #[test]
    fn the_bound_counts_characters() {
        assert_eq!(check_notice(&"주".repeat(MAX_NOTICE_CHARS)), Ok(()));
        assert_eq!(
            check_notice(&"주".repeat(MAX_NOTICE_CHARS + 1)),
            Err(NoticeError::TooLong {
                chars: MAX_NOTICE_CHARS + 1
            })
        );
    }

    #[test]
    fn notices_from_elsewhere_are_shown_escaped_and_clipped() {
        assert!(matches!(shown_notice("fine"), Cow::Borrowed("fine")));
        assert_eq!(shown_notice("a\nb"), r"a\u{a}b");
        let long = format!("\x1b{}", "x".repeat(1000));
        let shown = shown_notice(&long);
        assert_eq!(shown.chars().count(), MAX_NOTICE_CHARS + 1);
        assert!(shown.starts_with(r"\u{1b}xx") && shown.ends_with('…'));
    }

    #[test]
    fn escapes_round_trip_the_visible_text() {
        assert_eq!(escape_controls("tab\there"), r"tab\u{9}here");
        assert_eq!(escape_controls("\u{85}"), r"\u{85}");
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("héllo", 5), "héllo");
        assert_eq!(clip("", 3), "");
        assert_eq!(clip("abc", 0), "…");
    }
}
