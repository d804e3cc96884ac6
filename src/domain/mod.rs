//! The pure core: money and units, the receipt model, validation, and the
//! idempotency key. Nothing here knows HTTP, SQL, serial ports or the wall clock.

pub mod cash;
pub mod fiscal;
pub mod idempotency;
pub mod money;
pub mod receipt;
pub mod uz;
pub mod validate;

pub use money::{Money, Quantity};
pub use receipt::*;
pub use validate::{Profile, Violation, validate};
