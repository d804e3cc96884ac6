//! Device emulators on pseudo-terminals.

pub mod pty;
