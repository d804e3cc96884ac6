//! The latest [`Readings`](super::Readings) per register, written by the
//! register's device thread and read by the status surfaces without waiting
//! for the device. Keyed by the register's path so several daemons in one
//! test process do not see each other's readings.

use super::Readings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

#[derive(Debug, Default)]
pub struct RegisterBoard {
    by_path: Mutex<HashMap<PathBuf, Readings>>,
}

impl RegisterBoard {
    pub fn put(&self, path: &Path, r: Readings) {
        self.by_path
            .lock()
            .expect("deadline board")
            .insert(path.to_path_buf(), r);
    }

    pub fn get(&self, path: &Path) -> Option<Readings> {
        self.by_path
            .lock()
            .expect("deadline board")
            .get(path)
            .cloned()
    }
}

/// The process's board.
pub fn board() -> &'static RegisterBoard {
    static BOARD: OnceLock<RegisterBoard> = OnceLock::new();
    BOARD.get_or_init(RegisterBoard::default)
}
