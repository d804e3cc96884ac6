//! Device emulators on pseudo-terminals.

pub mod control;
pub mod printer;
pub mod pty;
pub mod register;
