//! The receipt's idempotency key and the offline link built from it (seed 001).
//!
//! `Idempotency-Key = SHA256("<number>/<PIN>/<total xxx.xx>/<DD.MM.YYYY HH:MM>")`,
//! lowercase hex, with the date and time in the till's own time zone. The key is
//! computed once, when the receipt is journaled, and stored: it is what the
//! cloud deduplicates on and what the printed QR link carries, so it must never
//! change afterwards (not even when the till's time zone is reconfigured).

use super::money::Money;
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};

/// The text that is hashed, e.g. `17/1234/150.00/23.11.2026 14:05`.
pub fn key_input(number: u64, pin: &str, total: Money, local_time: NaiveDateTime) -> String {
    format!(
        "{number}/{pin}/{}/{}",
        total.to_decimal(),
        local_time.format("%d.%m.%Y %H:%M")
    )
}

/// The idempotency key: lowercase hex SHA-256 of [`key_input`].
pub fn idempotency_key(number: u64, pin: &str, total: Money, local_time: NaiveDateTime) -> String {
    let input = key_input(number, pin, total, local_time);
    format!("{:x}", Sha256::digest(input.as_bytes()))
}

/// The link a buyer can follow before the receipt ever reached the processing:
/// `<processing base>/receipts/<key>`.
pub fn offline_url(base_url: &str, key: &str) -> String {
    format!("{}/receipts/{key}", base_url.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn key_follows_the_seed_formula() {
        let t = NaiveDate::from_ymd_opt(2026, 11, 23)
            .unwrap()
            .and_hms_opt(14, 5, 59)
            .unwrap();
        assert_eq!(
            key_input(17, "1234", Money(15000), t),
            "17/1234/150.00/23.11.2026 14:05"
        );
        // printf '17/1234/150.00/23.11.2026 14:05' | sha256sum
        assert_eq!(
            idempotency_key(17, "1234", Money(15000), t),
            "a3d642a6a5a5c919eef7b08b3559b1ae75f6748ba1e248d64ffe0efaed6da85a"
        );
    }

    #[test]
    fn offline_url_joins_without_double_slash() {
        assert_eq!(
            offline_url("https://fp.example/api/", "ab"),
            "https://fp.example/api/receipts/ab"
        );
        assert_eq!(
            offline_url("https://fp.example/api", "ab"),
            "https://fp.example/api/receipts/ab"
        );
    }
}
