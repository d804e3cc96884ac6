//! Shtrih-M fiscal register: pure protocol core and host-side driver.
//!
//! - [`frame`]: framing, LRC, the incremental parser (pure).
//! - [`command`]: command encoders/decoders and reply layouts, both ways (pure).
//! - [`link`]: the host link state machine (pure).
//! - [`plan`]: a receipt as a command sequence (pure).
//! - [`tlv`]: FFD TLVs for FF0C/FF4D, both ways (pure).
//! - [`error`]: error codes and [`ShtrihError`].
//! - [`assumed`]: every assumption the spec does not settle, in one place.
//! - [`driver`]: [`Register`], the thin shell over a [`crate::devices::port::Port`].

pub mod assumed;
pub mod command;
pub mod driver;
pub mod error;
pub mod frame;
pub mod link;
pub mod plan;
pub mod tlv;

pub use command::{CheckType, Command, DeviceType, FnDocument};
pub use driver::{ClosedReceipt, Register, RegisterOptions, RegisterStatus, ShiftState};
pub use error::{ShtrihError, error_message};
pub use frame::{ACK, ENQ, Frame, FrameParser, NAK, STX, lrc};
pub use plan::{PlanError, plan_receipt};

#[cfg(test)]
mod pty_tests;
