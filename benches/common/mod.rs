//! What the benchmarks share: where their temp files go, the receipt they
//! send (validated once, as the API would), and reading one HTTP/1.1 reply
//! off a raw keep-alive connection. `mod common;` in each bench that uses it.
#![allow(dead_code)] // each bench uses a part

use fiscald::api::native;
use fiscald::config;
use fiscald::domain::{Receipt, validate};
use std::path::{Path, PathBuf};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// `target/bench-tmp`: a real disk, not tmpfs, so fsync costs what it costs.
pub fn bench_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-tmp")
}

/// A temp dir under [`bench_root`], named `<prefix>-…`.
pub fn tempdir(root: &Path, prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir_in(root)
        .expect("temp dir under target/")
}

/// `json` (a native receipt) parsed and validated as the API does, on the
/// demo till's profile.
pub fn valid_receipt(json: &str) -> Receipt {
    let json: serde_json::Value = serde_json::from_str(json).expect("receipt JSON");
    let draft = native::parse_receipt(&json)
        .unwrap_or_else(|v| panic!("the receipt does not parse: {v:?}"));
    let profile = config::load_str(config::DEMO_CONFIG)
        .expect("the demo config is valid")
        .profile;
    validate(
        draft,
        &profile,
        chrono::NaiveDate::from_ymd_opt(2026, 11, 23).expect("a date"),
    )
    .unwrap_or_else(|v| panic!("the receipt is not valid: {v:?}"))
}

/// Read one reply (head and `Content-Length` body, nothing more) into
/// `buf`; its status code.
pub async fn read_reply(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the daemon closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).expect("ASCII head");
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
            assert!(
                !(name.eq_ignore_ascii_case("transfer-encoding")),
                "chunked replies are not supported by the raw client"
            );
        }
    }
    let total = head_end + length.expect("content-length in the reply");
    while buf.len() < total {
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the daemon closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(buf.len(), total, "unexpected bytes after the reply");
    status
}
