//! The `fiscald` binary as a process: crash safety under SIGKILL, orderly
//! SIGTERM, the demo, and `check-config`.

mod common;

use common::{Proc, receipt};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_fiscald");

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("fiscald.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"4321\"\ntimezone = \"Asia/Tashkent\"\n[fiscal]\ncountry = \"uz\"\nbackend = \"fiscalbox\"\n[fiscalbox]\nurl = \"http://127.0.0.1:9\"\n",
            dir.join("journal.sqlite").display()
        ),
    )
    .unwrap();
    path
}

/// Start the daemon and wait for its "listening on" line.
fn spawn(args: &[&str]) -> (Proc, String) {
    common::spawn_fiscald(args, "fiscald listening on ")
}

fn uz_receipt(name: &str) -> Value {
    let mut r = receipt(name, "5000.00");
    r["items"][0]["vat"] = "12".into();
    // An Uzbek receipt names the IKPU class code and package code (domain::uz).
    r["items"][0]["class_code"] = "10999001001000000".into();
    r["items"][0]["package_code"] = "1520627".into();
    r
}

async fn post(client: &reqwest::Client, base: &str, body: &Value) -> Result<Value, String> {
    let resp = client
        .post(format!("{base}/v1/receipts"))
        .json(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if resp.status().as_u16() != 201 {
        return Err(format!("status {}", resp.status()));
    }
    resp.json().await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_acknowledged_receipts_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let config_arg = config.to_str().unwrap();
    let (mut child, base) = spawn(&["run", "--config", config_arg]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // N receipts acknowledged one by one, then a burst of concurrent writers
    // still in flight when SIGKILL lands.
    const N: usize = 40;
    let mut acked = Vec::new();
    for i in 0..N {
        let r = post(&client, &base, &uz_receipt(&format!("seq {i}")))
            .await
            .unwrap();
        acked.push((
            r["id"].as_str().unwrap().to_string(),
            r["number"].as_u64().unwrap(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..8 {
        let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                match post(&client, &base, &uz_receipt(&format!("w{w} {i}"))).await {
                    Ok(r) => mine.push((
                        r["id"].as_str().unwrap().to_string(),
                        r["number"].as_u64().unwrap(),
                    )),
                    Err(_) => break,
                }
                i += 1;
            }
            mine
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() > N,
        "the burst got some receipts in before the kill"
    );

    let (mut child, base) = spawn(&["run", "--config", config_arg]);
    for (id, number) in &acked {
        let resp = client
            .get(format!("{base}/v1/receipts/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "acknowledged receipt {id} (number {number}) survived"
        );
        let r: Value = resp.json().await.unwrap();
        assert_eq!(r["number"].as_u64().unwrap(), *number);
    }
    let health: Value = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = health["journal"]["last_number"].as_u64().unwrap();
    let max_acked = acked.iter().map(|(_, n)| *n).max().unwrap();
    // Committed but unacknowledged receipts (the reply was cut by the kill)
    // may exist beyond the acknowledged ones; numbers stay gap-free.
    assert!(last >= max_acked);
    assert_eq!(health["journal"]["receipts"].as_u64().unwrap(), last);
    let next = post(&client, &base, &uz_receipt("after restart"))
        .await
        .unwrap();
    assert_eq!(next["number"].as_u64().unwrap(), last + 1);
    if acked.len() as u64 == last {
        assert_eq!(next["number"].as_u64().unwrap(), acked.len() as u64 + 1);
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_right_after_n_acknowledged_finds_all_n_and_numbers_n_plus_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let config_arg = config.to_str().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (mut child, base) = spawn(&["run", "--config", config_arg]);
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(
            post(&client, &base, &uz_receipt(&format!("r{i}")))
                .await
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let (mut child, base) = spawn(&["run", "--config", config_arg]);
    for id in &ids {
        let resp = client
            .get(format!("{base}/v1/receipts/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    let next = post(&client, &base, &uz_receipt("next")).await.unwrap();
    assert_eq!(next["number"], 26);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let config_arg = config.to_str().unwrap();
    let (child, base) = spawn(&["run", "--config", config_arg]);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            post(&client, &base, &uz_receipt(&format!("t{i}"))).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut acked = Vec::new();
    for t in tasks {
        if let Ok(r) = t.await.unwrap() {
            acked.push(r["id"].as_str().unwrap().to_string());
        }
    }
    // Every acknowledged receipt is in the journal file the daemon left behind.
    let conn = rusqlite::Connection::open(dir.path().join("journal.sqlite")).unwrap();
    for id in &acked {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM receipts WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }
    // The writer checkpointed on the way out: no WAL left to replay.
    let wal = dir.path().join("journal.sqlite-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
}

#[test]
fn check_config_accepts_every_shipped_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = Command::new(BIN)
                .arg("check-config")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

#[test]
fn check_config_names_an_unknown_key_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[api]\nlisten = \"127.0.0.1:8730\"\ncolour = \"blue\"\n\n[till]\npin = \"12a4\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3: api.colour: unknown key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 6: till.pin: must be exactly 4 digits"),
        "{stderr}"
    );
    assert!(stderr.contains("2 problem(s)"), "{stderr}");

    // `run` refuses the same file, with the same words.
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("api.colour: unknown key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_nothing_to_configure() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (child, base) = spawn(&[
        "demo",
        "--state-dir",
        state.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--sim-listen",
        "127.0.0.1:0",
        "--devices-control",
        "127.0.0.1:0",
    ]);
    // The demo asks for its operator token (kept 0600 in the state
    // directory, printed at start); without it: 401.
    let token = common::demo_token(&state);
    let anonymous = reqwest::Client::new();
    let refused = anonymous
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let client = common::client_with_token(&token);
    let health: Value = client
        .get(format!("{base}/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["till"]["country"], "ru");
    let example = common::example("receipt.json");
    let r = post(&client, &base, &example).await.unwrap();
    assert_eq!(r["number"], 1);
    // The demo fiscalizes through its built-in processing simulator, whose
    // offline page the receipt's QR link opens.
    let id = r["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let fiscalized = loop {
        let r: Value = client
            .get(format!("{base}/v1/receipts/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["state"] == "fiscalized" {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo receipt not fiscalized: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        fiscalized["fiscal"]["qr"]
            .as_str()
            .unwrap()
            .starts_with("t=")
    );
    // The demo's emulated printer printed it (with the offline link: the
    // cloud fiscalizes after the receipt is handed over).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r: Value = client
            .get(format!("{base}/v1/receipts/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["print"]["state"] == "done" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "demo receipt not printed: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = client
        .get(r["offline_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.text().await.unwrap().contains(
            &fiscalized["fiscal"]["fiscal_sign"]
                .as_str()
                .unwrap()
                .to_string()
        )
    );
    // The documented curl walk-through works against it, endpoint by endpoint.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/receipt.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("FISCALD_URL", &base)
        .env("FISCALD_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"number\":2"), "{text}");
    assert!(text.contains("\"receipts\":["), "{text}");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let mut child = child;
    assert!(child.wait().unwrap().success());
    assert!(state.join("journal.sqlite").exists());
}
