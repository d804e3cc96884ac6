//! Cloud sync: fiscalizing journaled receipts at the fiscal processing.
//!
//! `wire` holds the processing's formats (and every ASSUMED shape);
//! `policy` is the pure retry policy; `client` the HTTP client with auth;
//! `worker` drains the journal's outbox.

pub mod client;
pub mod policy;
pub mod wire;
pub mod worker;
