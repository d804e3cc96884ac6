//! fiscald: a till-side fiscal agent. See ARCHITECTURE.md for the code map.

pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod deadlines;
pub mod devices;
pub mod domain;
pub mod fiscalbox;
pub mod journal;
pub mod logging;
pub mod marking;
pub mod sim;
pub mod sync;
pub mod technician;
pub mod telemetry;
