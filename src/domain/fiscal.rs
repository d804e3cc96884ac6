//! Fiscal attributes of a fiscalized receipt and the QR string built from them.
//! Pure: the cloud client and the register driver fill [`FiscalAttributes`];
//! printers and replies read [`FiscalAttributes::qr`].

use super::money::Money;
use super::receipt::ReceiptKind;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// What the fiscal drive (or the processing on its behalf) assigned: FFD tags
/// 1012, 1037, 1038, 1040, 1041, 1042, 1077.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiscalAttributes {
    /// Tag 1040, "i" in the QR.
    pub fiscal_document_number: u64,
    /// Tag 1077, "fp" in the QR.
    pub fiscal_sign: String,
    /// Tag 1041, "fn" in the QR.
    pub fiscal_drive_number: String,
    /// Tag 1037.
    pub kkt_reg_id: String,
    /// Tag 1038.
    pub shift_number: u64,
    /// Tag 1042.
    pub receipt_number_in_shift: u64,
    /// Tag 1012, local time of the fiscal document.
    pub date_time: NaiveDateTime,
    /// A link to the receipt at the fiscal data operator, where one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ofd_receipt_url: Option<String>,
}

impl FiscalAttributes {
    /// The Russian receipt QR string:
    /// `t=YYYYMMDDTHHMM&s=<sum>&fn=<FN>&i=<FD>&fp=<FPD>&n=<tag 1054>`.
    pub fn qr(&self, total: Money, kind: ReceiptKind) -> String {
        format!(
            "t={}&s={}&fn={}&i={}&fp={}&n={}",
            self.date_time.format("%Y%m%dT%H%M"),
            total.to_decimal(),
            self.fiscal_drive_number,
            self.fiscal_document_number,
            self.fiscal_sign,
            operation_type(kind)
        )
    }
}

/// Fiscal tag 1054: 1 sale, 2 sale return, 3 purchase, 4 purchase return.
pub fn operation_type(kind: ReceiptKind) -> u8 {
    match kind {
        ReceiptKind::Sale => 1,
        ReceiptKind::SaleReturn => 2,
        ReceiptKind::Purchase => 3,
        ReceiptKind::PurchaseReturn => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn qr_string_matches_the_spec_example() {
        let attrs = FiscalAttributes {
            fiscal_document_number: 123,
            fiscal_sign: "3344550012".into(),
            fiscal_drive_number: "9999078900004312".into(),
            kkt_reg_id: "0000000001012345".into(),
            shift_number: 12,
            receipt_number_in_shift: 10,
            date_time: NaiveDate::from_ymd_opt(2026, 11, 23)
                .unwrap()
                .and_hms_opt(14, 5, 0)
                .unwrap(),
            ofd_receipt_url: None,
        };
        assert_eq!(
            attrs.qr(Money(15000), ReceiptKind::Sale),
            "t=20261123T1405&s=150.00&fn=9999078900004312&i=123&fp=3344550012&n=1"
        );
    }
}
