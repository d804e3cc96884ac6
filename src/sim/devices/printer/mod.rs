//! ESC/POS printer (with cash drawer) emulator: pure byte-stream model and its pty runner.
