//! Logging: structured to journald when systemd runs us, plain stderr otherwise.
//! The filter comes from `FISCALD_LOG` (e.g. `debug`, `fiscald=trace`), default `info`.

use std::io::IsTerminal;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Registry};

pub fn init() {
    let filter = EnvFilter::try_from_env("FISCALD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // systemd sets JOURNAL_STREAM when stderr is connected to the journal; then
    // the native journald protocol keeps fields structured. Where the journal
    // socket is missing (containers, CI) the layer fails to open: use stderr.
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(layer) = tracing_journald::layer()
    {
        let _ = Registry::default()
            .with(filter)
            .with(crate::telemetry::RecentErrors)
            .with(layer)
            .try_init();
        return;
    }
    let _ = Registry::default()
        .with(filter)
        .with(crate::telemetry::RecentErrors)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init();
}
