//! Shtrih-M register emulator: pure device model and its pty runner.
//!
//! - [`model`]: [`RegisterModel`], the device's memory and rules (pure).
//! - [`link`]: the device side of the link discipline (pure).
//! - [`runner`]: [`RegisterEmulator`], a thread serving both on a [`Pty`]
//!   with fault injection and unplug/replug.
//!
//! [`Pty`]: crate::sim::devices::pty::Pty

pub mod link;
pub mod model;
pub mod runner;

pub use model::{
    BoundCode, ModelConfig, ModelLine, RegisterModel, RegisteredReceipt, ShiftReport, ShiftTotals,
};
pub use runner::{
    DeadlineKnobs, RegisterEmulator, RegisterEmulatorOptions, RegisterFaults, RegisterSnapshot,
    UnplugAt,
};
