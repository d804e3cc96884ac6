//! Emulators that fiscald is tested and benchmarked against, built on the same
//! pure types the real code uses.
//!
//! - [`cloud`]: the cloud fiscal processing (BIFIT-style): tokens, idempotent
//!   receipt registration, fiscal documents, the buyer's offline page, and
//!   fault injection (latency, 5xx, hangs, lost replies after a commit,
//!   rate limiting), served over HTTP on a port of the caller's choosing.

pub mod cloud;
pub mod devices;
pub mod fiscalbox;
pub mod marking;
