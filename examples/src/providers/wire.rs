//! The providers' wire formats. Only the fields the service reads are declared; unknown fields
//! are ignored, as the real APIs send many more.

use serde::{Deserialize, Serialize};

/// The daum-like answer:
/// `{"meta":{"total_count":N},"documents":[{"address_name":..,"road_address":{..},"address":{..}}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumResponse {
    /// Counts.
    pub meta: DaumMeta,
    /// The addresses found (at most one page).
    pub documents: Vec<DaumDocument>,
}

/// `meta` of a [`DaumResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumMeta {
    /// Every address that matched, over all pages.
    pub total_count: u64,
}

/// One address of a [`DaumResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumDocument {
    /// The whole address as matched (abbreviated province: `서울 강남구 테헤란로 152`).
    pub address_name: String,
    /// The road-name form; `null` for a lot without a road-name address.
    #[serde(default)]
    pub road_address: Option<DaumRoadAddress>,
    /// The lot-number (jibun) form; `null` when there is none.
    #[serde(default)]
    pub address: Option<DaumJibunAddress>,
}

/// `road_address` of a [`DaumDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumRoadAddress {
    /// `서울 강남구 테헤란로 152`.
    pub address_name: String,
    /// The five-digit postcode.
    pub zone_no: String,
    /// The building's name, empty when it has none.
    #[serde(default)]
    pub building_name: String,
}

/// `address` (the jibun form) of a [`DaumDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaumJibunAddress {
    /// `서울 강남구 역삼동 737`.
    pub address_name: String,
}

/// The juso-like answer: `{"results":{"common":{..},"juso":[..]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoResponse {
    /// Everything is under `results`.
    pub results: JusoResults,
}

/// `results` of a [`JusoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoResults {
    /// The status: `errorCode` `"0"` is success, anything else an error (with HTTP 200).
    pub common: JusoCommon,
    /// The addresses; `null` when the request failed.
    #[serde(default)]
    pub juso: Option<Vec<JusoItem>>,
}

/// `results.common` of a [`JusoResponse`]. The API sends numbers as strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JusoCommon {
    /// `"0"` on success, else a code such as `"E0008"` (a bad keyword) or `"-999"` (a system error).
    pub error_code: String,
    /// `"정상"` on success, else what went wrong.
    pub error_message: String,
    /// Every address that matched, over all pages, as a string.
    pub total_count: String,
}

/// One address of a [`JusoResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JusoItem {
    /// `서울특별시 강남구 테헤란로 152 (역삼동, 강남파이낸스센터)`.
    #[serde(rename = "roadAddr")]
    pub road_addr: String,
    /// `서울특별시 강남구 역삼동 737 강남파이낸스센터`.
    #[serde(rename = "jibunAddr")]
    pub jibun_addr: String,
    /// The five-digit postcode.
    #[serde(rename = "zipNo")]
    pub zip_no: String,
    /// The building's name, empty when it has none.
    #[serde(rename = "bdNm", default)]
    pub bd_nm: String,
}

/// Provinces: the full name (juso, and the service's normal form) and daum's abbreviation.
pub const PROVINCES: &[(&str, &str)] = &[
    ("서울특별시", "서울"),
    ("부산광역시", "부산"),
    ("대구광역시", "대구"),
    ("인천광역시", "인천"),
    ("광주광역시", "광주"),
    ("대전광역시", "대전"),
    ("울산광역시", "울산"),
    ("세종특별자치시", "세종특별자치시"),
    ("경기도", "경기"),
    ("강원특별자치도", "강원특별자치도"),
    ("충청북도", "충북"),
    ("충청남도", "충남"),
    ("전북특별자치도", "전북특별자치도"),
    ("전라남도", "전남"),
    ("경상북도", "경북"),
    ("경상남도", "경남"),
    ("제주특별자치도", "제주특별자치도"),
];
