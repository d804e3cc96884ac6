//! A local simulator of the cloud fiscal processing, faithful to the wire
//! format in [`crate::sync::wire`] (every ASSUMED shape lives there, and this
//! module uses it rather than restating it).
//!
//! - [`model`]: the pure core ([`CloudModel`]): tokens, receipt validation,
//!   idempotent registration, fiscal documents. No I/O, no clock.
//! - [`faults`]: the fault knobs ([`Knobs`]) and the seeded, reproducible
//!   decision of which fault a request gets. No I/O.
//! - [`server`]: the HTTP shell ([`SimCloud`]) and the command-line entry
//!   point ([`run_cli`]).
//!
//! The simulator keeps everything in memory: a restarted simulator is a
//! processing that forgot every document, which is never what the real one
//! does, so tests restart the client, not the simulator.

pub mod faults;
pub mod model;
pub mod server;

pub use faults::{Admission, FaultCounters, Faults, Knobs, KnobsError};
pub use model::{CloudCounters, CloudError, CloudModel, Registration};
pub use server::{SimCloud, SimError, SimStats, run_cli};

use chrono_tz::Tz;

/// Where the simulator is mounted, like the real service's
/// `https://fp.bifit.com/processing-api`.
pub const API_PREFIX: &str = "/processing-api";

/// What the simulated processing is: its connector, its fiscal drive and its
/// clock zone, plus the fault knobs it starts with. `Debug` leaves the
/// connector token out.
#[derive(Clone)]
pub struct SimConfig {
    /// The connector token issued to the till (the `token` of a login).
    pub connector_token: String,
    /// `connector_id` of the token reply.
    pub connector_id: u64,
    /// Access token lifetime, seconds (`expires_in`).
    pub token_lifetime_s: u64,
    /// Refresh token lifetime, seconds.
    pub refresh_lifetime_s: u64,
    /// The fiscal drive (FN) number, 16 digits (tag 1041).
    pub fiscal_drive_number: String,
    /// The register's registration number (tag 1037).
    pub kkt_reg_id: String,
    /// The open shift's number (tag 1038).
    pub shift_number: u64,
    /// The processing-side id of the first document; later ones count up.
    pub first_document_id: u64,
    /// The fiscal document number (tag 1040) of the first receipt.
    pub first_fiscal_document_number: u64,
    /// The zone of the documents' `dateTime` (the till's local time).
    pub timezone: Tz,
    /// How long a registered document stays `PROCESSING`; 0 = at once.
    pub processing_delay_ms: u64,
    /// A receipt with an item whose name contains this text is rejected (422).
    pub reject_marker: Option<String>,
    /// When set, documents carry `ofdReceiptUrl = <this>?fn=…&i=…&fp=…`.
    pub ofd_receipt_url: Option<String>,
    /// Seeds the token generator (fault injection is seeded by `knobs.seed`).
    pub seed: u64,
    /// Fault knobs in force from the start (merged over the defaults;
    /// `token_lifetime_s`, `processing_delay_ms` and `reject_marker` set here
    /// win over the fields above).
    pub knobs: Knobs,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            connector_token: "demo-connector-token".into(),
            connector_id: 1,
            token_lifetime_s: 3599,
            refresh_lifetime_s: 30 * 24 * 3600,
            fiscal_drive_number: "9999078900004312".into(),
            kkt_reg_id: "0000000001012345".into(),
            shift_number: 1,
            first_document_id: 254_934,
            first_fiscal_document_number: 1,
            timezone: chrono_tz::Europe::Moscow,
            processing_delay_ms: 0,
            reject_marker: None,
            ofd_receipt_url: Some("https://check.ofd.example/rec".into()),
            seed: 1,
            knobs: Knobs::default(),
        }
    }
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("connector_token", &"<redacted>")
            .field("connector_id", &self.connector_id)
            .field("token_lifetime_s", &self.token_lifetime_s)
            .field("refresh_lifetime_s", &self.refresh_lifetime_s)
            .field("fiscal_drive_number", &self.fiscal_drive_number)
            .field("kkt_reg_id", &self.kkt_reg_id)
            .field("shift_number", &self.shift_number)
            .field("first_document_id", &self.first_document_id)
            .field(
                "first_fiscal_document_number",
                &self.first_fiscal_document_number,
            )
            .field("timezone", &self.timezone)
            .field("processing_delay_ms", &self.processing_delay_ms)
            .field("reject_marker", &self.reject_marker)
            .field("ofd_receipt_url", &self.ofd_receipt_url)
            .field("seed", &self.seed)
            .field("knobs", &self.knobs)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_the_connector_token_out() {
        let shown = format!("{:?}", SimConfig::default());
        assert!(!shown.contains("demo-connector-token"), "{shown}");
        assert!(shown.contains("9999078900004312"));
    }
}
