//! Devices with real processes: `fiscald sim devices` in one process (the
//! hardware, which survives the daemon), `fiscald run` in another. SIGKILL of
//! the daemon mid-receipt, and the daemon's CPU use while idle.

mod common;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Proc, spawn_fiscald as spawn};

struct Bench {
    _child: Proc,
    control: String,
    dir: PathBuf,
}

impl Bench {
    fn start(dir: &Path) -> Bench {
        let devices = dir.join("devices");
        let (child, line) = spawn(
            &[
                "sim",
                "devices",
                "--dir",
                devices.to_str().unwrap(),
                "--control",
                "127.0.0.1:0",
                "--pace-baud",
                "0",
            ],
            "fiscald sim devices: ",
        );
        let control = line
            .split("control ")
            .nth(1)
            .unwrap()
            .trim_end_matches("/sim/devices")
            .to_string();
        Bench {
            _child: child,
            control,
            dir: devices,
        }
    }

    async fn view(&self) -> Value {
        reqwest::get(format!("{}/sim/devices", self.control))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) {
        let resp = reqwest::Client::new()
            .post(format!("{}{path}", self.control))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
    }
}

fn config(dir: &Path, bench: &Bench, status_interval_ms: u64) -> PathBuf {
    let path = dir.join("fiscald.toml");
    std::fs::write(
        &path,
        format!(
            r#"[api]
listen = "127.0.0.1:0"
[journal]
path = "{journal}"
[till]
pin = "1234"
[fiscal]
backend = "register"
[devices]
status_interval_ms = {status_interval_ms}
reconnect_base_ms = 100
reconnect_cap_ms = 1000
[register]
path = "{register}"
reply_timeout_ms = 2000
[printer]
path = "{printer}"
[drawer]
via = "printer"
"#,
            journal = dir.join("journal.sqlite").display(),
            register = bench.dir.join("register").display(),
            printer = bench.dir.join("printer").display(),
        ),
    )
    .unwrap();
    path
}

fn receipt(i: usize) -> Value {
    // Distinct totals, so each receipt is recognisable on the register.
    let price = format!("{}.00", 100 + i);
    json!({
        "type": "sale",
        "items": (0..6).map(|k| json!({"name": format!("Товар {i}-{k}"), "quantity": 1, "price": if k == 0 { price.clone() } else { "1.00".into() }, "vat": "22"})).collect::<Vec<_>>(),
        "payments": [{"kind": "electronic", "amount": format!("{}.00", 105 + i)}]
    })
}

async fn receipts(base: &str) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{base}/v1/receipts?limit=500"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["receipts"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_receipt_registers_none_twice_and_misses_none() {
    let dir = tempfile::tempdir().unwrap();
    let bench = Bench::start(dir.path());
    let cfg = config(dir.path(), &bench, 500);
    let cfg = cfg.to_str().unwrap();
    // A slow register: every reply byte takes 3 ms, so a receipt takes a
    // good part of a second and a kill lands in the middle of one.
    bench
        .post("/sim/register/faults", json!({"byte_delay_ms": 3}))
        .await;
    let (mut daemon, base) = spawn(&["run", "--config", cfg], "fiscald listening on ");
    let client = reqwest::Client::new();
    const N: usize = 6;
    for i in 0..N {
        let resp = client
            .post(format!("{base}/v1/receipts"))
            .json(&receipt(i))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        assert_eq!(status, 201, "{}", resp.text().await.unwrap());
    }
    // Kill it while it works through them: after the first is on the register.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = bench.view().await;
        let n = v["register"]["state"]["receipts"].as_array().unwrap().len();
        let mode = v["register"]["state"]["mode"].as_u64().unwrap_or(0);
        // Mode 8: a check is open on the register right now.
        if n >= 1 && mode & 0x0f == 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never caught a receipt mid-way: {v}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGKILL).unwrap();
    daemon.wait().unwrap();
    let killed_at = bench.view().await["register"]["state"]["receipts"]
        .as_array()
        .unwrap()
        .len();
    assert!(killed_at < N, "the kill came too late to prove anything");

    bench
        .post("/sim/register/faults", json!({"byte_delay_ms": 0}))
        .await;
    let (mut daemon, base) = spawn(&["run", "--config", cfg], "fiscald listening on ");
    let deadline = Instant::now() + Duration::from_secs(60);
    let all = loop {
        let all = receipts(&base).await;
        if all.len() == N && all.iter().all(|r| r["state"] == "fiscalized") {
            break all;
        }
        assert!(Instant::now() < deadline, "not all fiscalized: {all:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let v = bench.view().await;
    let on_register = v["register"]["state"]["receipts"].as_array().unwrap();
    assert_eq!(on_register.len(), N, "each receipt exactly once: {v}");
    let mut totals: Vec<u64> = on_register
        .iter()
        .map(|r| r["total"].as_u64().unwrap())
        .collect();
    totals.sort();
    let mut expected: Vec<u64> = (0..N).map(|i| (105 + i as u64) * 100).collect();
    expected.sort();
    assert_eq!(totals, expected);
    // The journal's fiscal document numbers are the register's.
    let mut fds: Vec<u64> = all
        .iter()
        .map(|r| r["fiscal"]["fiscal_document_number"].as_u64().unwrap())
        .collect();
    fds.sort();
    let mut reg_fds: Vec<u64> = on_register
        .iter()
        .map(|r| r["fd"].as_u64().unwrap())
        .collect();
    reg_fds.sort();
    assert_eq!(fds, reg_fds);
    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).unwrap();
    assert!(daemon.wait().unwrap().success());
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); index 11 and 12 after the command name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_with_devices_connected_the_daemon_uses_no_measurable_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let bench = Bench::start(dir.path());
    let cfg = config(dir.path(), &bench, 1000);
    let (mut daemon, base) = spawn(
        &["run", "--config", cfg.to_str().unwrap()],
        "fiscald listening on ",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = reqwest::get(format!("{base}/v1/devices"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["devices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "ready")
        {
            break;
        }
        assert!(Instant::now() < deadline, "devices not ready: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = cpu_ticks(daemon.id());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let used = cpu_ticks(daemon.id()) - before;
    // 5 s idle with a status poll per device per second: a few hundred bytes
    // of serial traffic. 3 ticks (30 ms at 100 Hz) is 0.6 % of one core.
    eprintln!("idle: {used} clock ticks in 5 s");
    assert!(used <= 3, "the idle daemon used {used} ticks of CPU in 5 s");
    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).unwrap();
    assert!(daemon.wait().unwrap().success());
}
