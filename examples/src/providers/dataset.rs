//! The dataset both mock providers serve: about twenty well-known addresses across the country.

use std::sync::LazyLock;

/// One address of the built-in dataset, in the service's normal form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Road-name address with the full province name.
    pub road: &'static str,
    /// Lot-number (jibun) address with the full province name.
    pub jibun: &'static str,
    /// The legal dong, which juso adds in parentheses after the road address.
    pub dong: &'static str,
    /// Five-digit postcode.
    pub zip: &'static str,
    /// Building name, if it has one.
    pub building: Option<&'static str>,
    /// Romanized and English names it is also found by.
    pub aliases: &'static str,
}

/// About twenty well-known addresses across the country.
pub const DATASET: &[Entry] = &[
    Entry {
        road: "서울특별시 강남구 테헤란로 152",
        jibun: "서울특별시 강남구 역삼동 737",
        dong: "역삼동",
        zip: "06236",
        building: Some("강남파이낸스센터"),
        aliases: "seoul gangnam-gu teheran-ro yeoksam-dong gangnam finance center gfc",
    },
    Entry {
        road: "서울특별시 강남구 테헤란로 521",
        jibun: "서울특별시 강남구 삼성동 159-8",
        dong: "삼성동",
        zip: "06164",
        building: Some("파르나스타워"),
        aliases: "seoul gangnam-gu teheran-ro samseong-dong parnas tower",
    },
    Entry {
        road: "서울특별시 강남구 강남대로 396",
        jibun: "서울특별시 강남구 역삼동 825",
        dong: "역삼동",
        zip: "06232",
        building: None,
        aliases: "seoul gangnam-gu gangnam-daero yeoksam-dong gangnam station",
    },
    Entry {
        road: "서울특별시 서초구 강남대로 465",
        jibun: "서울특별시 서초구 서초동 1303-22",
        dong: "서초동",
        zip: "06611",
        building: Some("교보타워"),
        aliases: "seoul seocho-gu gangnam-daero seocho-dong kyobo tower",
    },
    Entry {
        road: "서울특별시 중구 세종대로 110",
        jibun: "서울특별시 중구 태평로1가 31",
        dong: "태평로1가",
        zip: "04524",
        building: Some("서울특별시청"),
        aliases: "seoul jung-gu sejong-daero taepyeongno seoul city hall",
    },
    Entry {
        road: "서울특별시 종로구 세종대로 175",
        jibun: "서울특별시 종로구 세종로 81-3",
        dong: "세종로",
        zip: "03172",
        building: Some("세종문화회관"),
        aliases: "seoul jongno-gu sejong-daero sejongno sejong center",
    },
    Entry {
        road: "서울특별시 종로구 사직로 161",
        jibun: "서울특별시 종로구 세종로 1-1",
        dong: "세종로",
        zip: "03045",
        building: Some("경복궁"),
        aliases: "seoul jongno-gu sajik-ro sejongno gyeongbokgung palace",
    },
    Entry {
        road: "서울특별시 영등포구 여의대로 108",
        jibun: "서울특별시 영등포구 여의도동 22",
        dong: "여의도동",
        zip: "07335",
        building: Some("파크원"),
        aliases: "seoul yeongdeungpo-gu yeoui-daero yeouido-dong parc1",
    },
    Entry {
        road: "서울특별시 영등포구 국제금융로 10",
        jibun: "서울특별시 영등포구 여의도동 23",
        dong: "여의도동",
        zip: "07326",
        building: Some("서울국제금융센터"),
        aliases: "seoul yeongdeungpo-gu gukjegeumyung-ro yeouido-dong ifc seoul",
    },
    Entry {
        road: "서울특별시 송파구 올림픽로 300",
        jibun: "서울특별시 송파구 신천동 29",
        dong: "신천동",
        zip: "05551",
        building: Some("롯데월드타워"),
        aliases: "seoul songpa-gu olympic-ro sincheon-dong lotte world tower jamsil",
    },
    Entry {
        road: "서울특별시 마포구 월드컵북로 396",
        jibun: "서울특별시 마포구 상암동 1601",
        dong: "상암동",
        zip: "03925",
        building: Some("누리꿈스퀘어"),
        aliases: "seoul mapo-gu worldcupbuk-ro sangam-dong nuri dream square dmc",
    },
    Entry {
        road: "서울특별시 구로구 디지털로 300",
        jibun: "서울특별시 구로구 구로동 222-14",
        dong: "구로동",
        zip: "08379",
        building: Some("지밸리비즈플라자"),
        aliases: "seoul guro-gu digital-ro guro-dong g valley biz plaza",
    },
    Entry {
        road: "부산광역시 해운대구 해운대해변로 264",
        jibun: "부산광역시 해운대구 우동 1411-1",
        dong: "우동",
        zip: "48099",
        building: None,
        aliases: "busan haeundae-gu haeundaehaebyeon-ro u-dong haeundae beach",
    },
    Entry {
        road: "부산광역시 동구 중앙대로 206",
        jibun: "부산광역시 동구 초량동 1187-1",
        dong: "초량동",
        zip: "48729",
        building: Some("부산역"),
        aliases: "busan dong-gu jungang-daero choryang-dong busan station",
    },
    Entry {
        road: "부산광역시 해운대구 센텀중앙로 79",
        jibun: "부산광역시 해운대구 우동 1505",
        dong: "우동",
        zip: "48058",
        building: Some("센텀사이언스파크"),
        aliases: "busan haeundae-gu centumjungang-ro u-dong centum science park",
    },
    Entry {
        road: "인천광역시 중구 공항로 272",
        jibun: "인천광역시 중구 운서동 2850",
        dong: "운서동",
        zip: "22382",
        building: Some("인천국제공항"),
        aliases: "incheon jung-gu gonghang-ro unseo-dong incheon international airport icn",
    },
    Entry {
        road: "경기도 성남시 분당구 판교역로 235",
        jibun: "경기도 성남시 분당구 삼평동 681",
        dong: "삼평동",
        zip: "13494",
        building: Some("에이치스퀘어"),
        aliases: "gyeonggi seongnam bundang-gu pangyoyeok-ro sampyeong-dong pangyo h square",
    },
    Entry {
        road: "경기도 성남시 분당구 판교역로 166",
        jibun: "경기도 성남시 분당구 백현동 532",
        dong: "백현동",
        zip: "13529",
        building: Some("카카오판교아지트"),
        aliases: "gyeonggi seongnam bundang-gu pangyoyeok-ro baekhyeon-dong pangyo kakao agit",
    },
    Entry {
        road: "대전광역시 서구 둔산로 100",
        jibun: "대전광역시 서구 둔산동 1420",
        dong: "둔산동",
        zip: "35242",
        building: Some("대전광역시청"),
        aliases: "daejeon seo-gu dunsan-ro dunsan-dong daejeon city hall",
    },
    Entry {
        road: "대구광역시 중구 공평로 88",
        jibun: "대구광역시 중구 동인동1가 2-1",
        dong: "동인동1가",
        zip: "41911",
        building: Some("대구광역시청"),
        aliases: "daegu jung-gu gongpyeong-ro dongin-dong daegu city hall",
    },
    Entry {
        road: "광주광역시 서구 내방로 111",
        jibun: "광주광역시 서구 치평동 1200",
        dong: "치평동",
        zip: "61945",
        building: Some("광주광역시청"),
        aliases: "gwangju seo-gu naebang-ro chipyeong-dong gwangju city hall",
    },
    Entry {
        road: "제주특별자치도 제주시 문연로 6",
        jibun: "제주특별자치도 제주시 연동 312-1",
        dong: "연동",
        zip: "63122",
        building: Some("제주특별자치도청"),
        aliases: "jeju jeju-si munyeon-ro yeon-dong jeju provincial office",
    },
];

/// Lowercase, without hyphens: `Teheran-ro` and `teheranro` find the same entry.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

static HAYSTACKS: LazyLock<Vec<String>> = LazyLock::new(|| {
    DATASET
        .iter()
        .map(|e| {
            fold(&format!(
                "{} {} {} {} {}",
                e.road,
                e.jibun,
                e.zip,
                e.building.unwrap_or_default(),
                e.aliases
            ))
        })
        .collect()
});

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
        .iter()
        .zip(HAYSTACKS.iter())
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
    fn every_entry_has_a_known_province_and_a_five_digit_postcode() {
        assert!(DATASET.len() >= 20);
        for e in DATASET {
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
            assert!(e.jibun.contains(e.dong), "{e:?}");
        }
    }
}
