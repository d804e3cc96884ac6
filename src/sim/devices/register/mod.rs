//! Shtrih-M register emulator: pure device model and its pty runner.
