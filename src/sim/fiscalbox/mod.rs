//! A simulated FiscalBox (`fiscald sim fiscalbox`), faithful to
//! [`crate::fiscalbox::facts`]:
//!
//! - [`model`]: the pure box ([`BoxModel`]): fiscal-module counters, shifts
//!   and Z reports, idempotent orders by `uuid`, the order memory of
//!   `/order/last/`, payment providers and their confirms, card terminals,
//!   scan2pay and UzQR. No I/O, no clock.
//! - [`server`]: the HTTP shell ([`SimFiscalBox`]) with fault knobs (down,
//!   slow, lost replies, shift gone, refunds refused) and `/sim/stats`.
//!
//! In memory only: a restarted simulator is a new box.

pub mod model;
pub mod server;

pub use model::{BoxConfig, BoxCounters, BoxModel};
pub use server::{BillingLogin, BoxKnobs, BoxStats, SimFiscalBox, run_cli};
