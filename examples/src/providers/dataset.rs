//! The dataset both mock providers serve: about twenty well-known addresses across the country.

use std::sync::LazyLock;

use serde::Deserialize;

/// One address of the built-in dataset, in the service's normal form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Road-name address with the full province name.
    pub road: String,
    /// Lot-number (jibun) address with the full province name.
    pub jibun: String,
    /// The legal dong, which juso adds in parentheses after the road address.
    pub dong: String,
    /// Five-digit postcode.
    pub zip: String,
    /// Building name, if it has one.
    pub building: Option<String>,
    /// Romanized and English names it is also found by.
    pub aliases: String,
}

/// The dataset's source, one entry a line, compiled into the binary.
const SOURCE: &str = include_str!("../../data/addresses.json");

/// The entries and, for each, the text a query is matched against.
struct Dataset {
    entries: Vec<Entry>,
    haystacks: Vec<String>,
}

/// Parsed on first use. The file is part of the source and a unit test parses it, so a broken
/// file fails the tests, not a running service.
static DATASET: LazyLock<Dataset> = LazyLock::new(|| {
    let entries: Vec<Entry> = serde_json::from_str(SOURCE)
        .unwrap_or_else(|e| panic!("examples/data/addresses.json: {e}"));
    let haystacks = entries
        .iter()
        .map(|e| {
            fold(&format!(
                "{} {} {} {} {}",
                e.road,
                e.jibun,
                e.zip,
                e.building.as_deref().unwrap_or_default(),
                e.aliases
            ))
        })
        .collect();
    Dataset { entries, haystacks }
});

/// About twenty well-known addresses across the country (`examples/data/addresses.json`).
#[must_use]
pub fn dataset() -> &'static [Entry] {
    &DATASET.entries
}

/// Lowercase, without hyphens: `Teheran-ro` and `teheranro` find the same entry.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Every entry that contains each whitespace-separated word of `query` (case-insensitive,
/// hyphens ignored, romanized aliases included); none for a blank query.
#[must_use]
pub fn find(query: &str) -> Vec<&'static Entry> {
    let words: Vec<String> = query
        .split_whitespace()
        .map(fold)
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    DATASET
        .entries
        .iter()
        .zip(&DATASET.haystacks)
        .filter(|(_, hay)| words.iter().all(|w| hay.contains(w.as_str())))
        .map(|(e, _)| e)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::PROVINCES;

    #[test]
    fn romanized_and_korean_queries_find_the_same_entries() {
        let korean = find("테헤란로");
        assert_eq!(korean.len(), 2);
        assert_eq!(find("teheran"), korean);
        assert_eq!(find("Teheran-ro"), korean);
        assert_eq!(find("TEHERANRO"), korean);
        assert_eq!(find("테헤란로 152").len(), 1);
        assert_eq!(find("gangnam 152")[0].zip, "06236");
        assert!(find("busan").len() >= 3);
        assert!(find("seoul").len() >= 10);
        assert!(find("   ").is_empty());
        assert!(find("atlantis").is_empty());
    }

    #[test]
    fn the_data_file_parses_into_every_entry() {
        let entries: Vec<Entry> = serde_json::from_str(SOURCE).unwrap();
        assert_eq!(entries.len(), 22);
        assert_eq!(dataset(), entries);
    }

    #[test]
    fn every_entry_has_a_known_province_and_a_five_digit_postcode() {
        for e in dataset() {
            assert!(
                PROVINCES
                    .iter()
                    .any(|(full, _)| e.road.starts_with(full) && e.jibun.starts_with(full)),
                "{e:?}"
            );
            assert!(
                e.zip.len() == 5 && e.zip.bytes().all(|b| b.is_ascii_digit()),
                "{e:?}"
            );
            assert!(e.jibun.contains(&e.dong), "{e:?}");
        }
    }
}
