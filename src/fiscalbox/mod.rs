//! FiscalBox, the Uzbek fiscal box on the shop's LAN (spec
//! `shared/spec/fiscalbox.md`, seeds 000 and 002, the public documentation in
//! `abdullo211/fiscal_document`).
//!
//! - [`facts`]: **every outside fact about FiscalBox** — endpoints and which
//!   of them wrap their envelope, the envelope, the error codes, the units
//!   (tiyin, thousandths, UzQR decimal strings), the wire shapes of requests
//!   and replies, the Soliq QR link. The server dialect, the box client, the
//!   box simulator and the billing client all use it and restate nothing.

pub mod billing;
pub mod client;
pub mod facts;
pub mod sverka;
pub mod worker;
