//! ESC/POS receipt printer: command encoding, receipt layout, real-time status
//! (all pure), and the driver, the only part here that touches a port.

pub mod command;
pub mod driver;
pub mod layout;
pub mod status;

pub use command::{
    Align, Commands, CutMode, DrawerPin, QrEc, StatusKind, TextEncoding, code_tables,
};
pub use driver::{EscPosError, Printer, PrinterOptions, wire_time};
pub use layout::{LayoutOptions, ReceiptPrint, VatLine, receipt, vat_breakdown, vat_included};
pub use status::{Paper, PrinterStatus, is_status_byte};
