//! The permissive-mode services' formats (разрешительный режим, Честный
//! ЗНАК): **every ASSUMED shape of these services lives here** and nowhere
//! else; the client and the simulator (`fiscald sim marking`) both use it.
//!
//! Sources (see /work/shared/spec/marking-and-fn-health.md §A1; CRPT's own
//! documents sit behind a login, so re-verify before shipping):
//! - True API online check: `POST https://{cdn host}/api/v4/true-api/codes/check`,
//!   header `X-API-KEY`, body `{"codes": [...]}`; reply `{code, description,
//!   codes: [...], reqId, reqTimestamp}` (PavelDorofeev/Test-API-Chestny-Zhnak
//!   chzn_validate.cpp, quoting the CRPT document).
//! - Local module ЛМ ЧЗ: `POST /api/v1/cis/outCheck` with `{"cis_list": [...]}`,
//!   HTTP Basic auth and `X-ClientId: <FN serial>`; `GET /api/v1/status` →
//!   `{status, lastSync, version}`; a check while not `ready` answers HTTP 400
//!   with `errorCode` 4045 / 4050 (same source, quoting the LM document §2.5).
//! - Per-code fields (`cis`, `valid`, `found`, `utilised`, `verified`,
//!   `realizable`, `sold`, `isBlocked`, `errorCode`, …):
//!   spoleto-software/Spoleto.Marking.TsPiot `Models/CodeInfo.cs`.

use serde::{Deserialize, Serialize};

/// True API: the check path under the CDN host.
pub const ONLINE_CHECK_PATH: &str = "/api/v4/true-api/codes/check";
/// True API: the participant's token header.
pub const ONLINE_TOKEN_HEADER: &str = "X-API-KEY";
/// Local module: the current ("целевой") check path.
pub const LOCAL_CHECK_PATH: &str = "/api/v1/cis/outCheck";
/// Local module: its status.
pub const LOCAL_STATUS_PATH: &str = "/api/v1/status";
/// Local module: the till's id header (the FN serial number).
pub const LOCAL_CLIENT_HEADER: &str = "X-ClientId";
/// Local module: `errorCode` when not initialised / still initialising.
pub const LOCAL_NOT_READY: i64 = 4045;
/// Local module: `errorCode` in `sync_error` (72 h without a sync).
pub const LOCAL_SYNC_ERROR: i64 = 4050;
/// The local module enters `sync_error` this long after `lastSync` (§A1).
pub const LOCAL_SYNC_LIMIT_MS: i64 = 72 * 3600 * 1000;

/// True API request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnlineRequest {
    pub codes: Vec<String>,
}

/// Local module request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRequest {
    pub cis_list: Vec<String>,
}

/// The reply of either service.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckReply {
    /// 0: the request succeeded.
    pub code: i64,
    pub description: Option<String>,
    pub codes: Vec<CodeInfo>,
    /// UUID of the request (36 chars).
    pub req_id: String,
    /// Milliseconds since the epoch. ASSUMED: a number, or (as in the local
    /// module's sample) a string of digits; both are read.
    #[serde(deserialize_with = "number_or_string")]
    pub req_timestamp: i64,
    /// Local module only.
    pub is_checked_offline: Option<bool>,
    /// Local module only: its instance id and version.
    pub inst: Option<String>,
    pub version: Option<String>,
}

/// One code's answer. ASSUMED: a missing flag reads as `false`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CodeInfo {
    pub cis: String,
    pub valid: bool,
    pub found: bool,
    pub utilised: bool,
    pub verified: bool,
    pub realizable: bool,
    pub sold: bool,
    pub is_blocked: bool,
    pub error_code: Option<i64>,
    pub message: Option<String>,
}

/// Local module status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalStatus {
    /// `ready`, `not_configured`, `initialization` or `sync_error`.
    pub status: String,
    /// Milliseconds since the epoch.
    pub last_sync: i64,
    pub version: String,
}

/// The local module's error body (HTTP 400).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LocalError {
    pub error_code: i64,
    pub description: String,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        N(i64),
        S(String),
    }
    match Either::deserialize(d)? {
        Either::N(n) => Ok(n),
        Either::S(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// Tag 1262: the federal body (ФОИВ) id "030" (Минпромторг), as public
/// integrations send it (EcomkassaBitrix/Gravity-MS
/// `SectoralItemProps.php` `FEDERAL_ID_DEFAULT`). ASSUMED attribution.
pub const FOIV_ID: &str = "030";
/// Tag 1263: the date of Постановление Правительства РФ № 1944
/// (same source, `DATE_DEFAULT`).
pub const FOUNDING_DOC_DATE: &str = "21.11.2023";
/// Tag 1264: its number (same source, `NUMBER_DEFAULT`).
pub const FOUNDING_DOC_NUMBER: &str = "1944";

/// Tag 1265 after a check: `UUID=<reqId>&Time=<reqTimestamp>` (same source,
/// `VALUE_FORMAT`; Vodovoz builds the same). ASSUMED: the same plain form
/// after a local-module check (a Java sample adds `&Inst=…&Ver=…`, UNCONFIRMED).
pub fn tag_1265(req_id: &str, req_timestamp: i64) -> String {
    format!("UUID={req_id}&Time={req_timestamp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_as_the_public_samples_show_them() {
        // The local module's sample reply (spec §A1), timestamp as a string.
        let lm: CheckReply = serde_json::from_str(
            r#"{"code":0,"codes":[{"cis":"0104","found":false,"valid":false,"isBlocked":true}],
                "reqId":"7c3c2a4e-1111-4222-8333-944455556666","reqTimestamp":"1757681987579",
                "isCheckedOffline":true,"version":"1.4","inst":"lm-1"}"#,
        )
        .unwrap();
        assert_eq!(lm.req_timestamp, 1_757_681_987_579);
        assert!(lm.codes[0].is_blocked);
        assert_eq!(lm.is_checked_offline, Some(true));
        let online: CheckReply = serde_json::from_str(
            r#"{"code":0,"description":"ok","codes":[{"cis":"x","valid":true,"found":true,"utilised":true,
                "verified":true,"realizable":true,"sold":false,"isBlocked":false,"errorCode":0}],
                "reqId":"a","reqTimestamp":1700000000000}"#,
        )
        .unwrap();
        assert!(online.codes[0].realizable);
        assert_eq!(tag_1265("a", 17), "UUID=a&Time=17");
        // The GS separator goes out escaped as \u001d (spec §A1).
        let body = serde_json::to_string(&OnlineRequest {
            codes: vec!["01\u{1d}91".into()],
        })
        .unwrap();
        assert_eq!(body, r#"{"codes":["01\u001d91"]}"#);
    }
}
