//! ESC/POS printer (with cash drawer) emulator: the pure byte-stream model
//! ([`model`]) and its pty runner ([`runner`]), the only part that does I/O.

pub mod model;
pub mod runner;

pub use model::{Document, Event, PrinterFaults, PrinterModel, PrinterOutput};
pub use runner::{PrinterEmulator, PrinterEmulatorOptions};
