//! Device drivers: the fiscal register (Shtrih-M), the ESC/POS receipt printer
//! and the cash drawer, over the serial shell in [`port`].

pub mod cash;
pub mod escpos;
pub mod jobs;
pub mod manager;
pub mod port;
pub mod reconcile;
pub mod runtime;
pub mod shtrih;
