//! Scale benchmark: does fiscald stay as fast with a million receipts in its
//! journal as with none, and does the WAL stay bounded in a long burst?
//!
//! `cargo bench --bench scale` (several minutes: it builds a journal of
//! 1,000,000 receipts); `FISCALD_BENCH_QUICK=1` for a smoke run of seconds
//! (20,000 receipts, short phases). See docs/PERFORMANCE.md.
//!
//! Every figure is a ratio against a baseline measured in the same run:
//! 1. Two journals: 1,000 receipts, and N, built by `journal::bulk::load`
//!    (the journal's own accept / fiscalize / park / discard operations, many
//!    per transaction; 97 % fiscalized, 1 % each rejected, discarded, pending).
//! 2. For each, the real `fiscald` binary is started on it (cloud sync off)
//!    and measured over HTTP: start-to-ready (exec to the "listening" line),
//!    acceptance p99 at concurrency 1 and throughput at 64, then
//!    `GET /v1/health`, `/v1/status`, `/metrics` and `GET /v1/receipts`
//!    latency (first page of 50, and filtered by state), resident memory
//!    (and how much of it is the binary's code mapped from the page cache).
//!    Rounds alternate between the journals; medians kept.
//! 3. WAL: `Journal::accept` at concurrency 64 with the WAL bounded (the
//!    default 64 MiB) against unbounded (PASSIVE checkpoints only, as before),
//!    alternating; then a burst over HTTP against the binary (60 s; quick: 3 s)
//!    with the WAL file's size sampled every 5 ms: its peak, and how long after
//!    the burst it is truncated.
//!
//! `FISCALD_BENCH_RECEIPTS=N` builds a journal of N instead of a million;
//! `FISCALD_BENCH_ONLY=daemon` or `=wal` runs parts 1–2 or part 3 alone.

mod common;

use fiscald::config;
use fiscald::domain::{Receipt, Source};
use fiscald::journal::bulk::{self, BulkReceipt, Outcome};
use fiscald::journal::{Journal, NewReceipt, Options, WalPolicy};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const RECEIPT: &str = r#"{
  "type": "sale",
  "tax_system": "common",
  "cashier": {"name": "Иванова А.П."},
  "items": [
    {"name": "Хлеб ржаной", "quantity": 2, "price": "45.50", "vat": "10",
     "payment_subject": "commodity", "calculation_method": "full_pay", "barcode": "4600000000015"},
    {"name": "Сыр, весовой", "quantity": "0.350", "price": "899.00", "total": "314.65", "vat": "22"},
    {"name": "Молоко 3,2% 1 л", "quantity": 1, "price": "89.90", "vat": "10"}
  ],
  "payments": [{"kind": "cash", "amount": "495.55"}],
  "total": "495.55"
}"#;

struct Plan {
    quick: bool,
    receipts: u64,
    probes: usize,
    serial: usize,
    concurrent_for: Duration,
    ab_for: Duration,
    burst_for: Duration,
    rounds: usize,
    /// `FISCALD_BENCH_ONLY=daemon|wal`: one part of the run.
    daemon: bool,
    wal: bool,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var("FISCALD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        // FISCALD_BENCH_RECEIPTS=N: a full run on a smaller journal (the WAL
        // figures do not depend on it).
        let receipts = std::env::var("FISCALD_BENCH_RECEIPTS")
            .ok()
            .and_then(|v| v.parse().ok());
        let mut plan = Plan::pick(quick);
        if let Some(n) = receipts {
            plan.receipts = n;
        }
        match std::env::var("FISCALD_BENCH_ONLY").as_deref() {
            Ok("daemon") => plan.wal = false,
            Ok("wal") => plan.daemon = false,
            _ => {}
        }
        plan
    }

    fn pick(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                receipts: 20_000,
                probes: 50,
                serial: 100,
                concurrent_for: Duration::from_secs(1),
                ab_for: Duration::from_secs(1),
                burst_for: Duration::from_secs(3),
                rounds: 1,
                daemon: true,
                wal: true,
            }
        } else {
            Plan {
                quick,
                receipts: 1_000_000,
                probes: 300,
                serial: 1_000,
                concurrent_for: Duration::from_secs(8),
                ab_for: Duration::from_secs(8),
                burst_for: Duration::from_secs(60),
                rounds: 3,
                daemon: true,
                wal: true,
            }
        }
    }
}

fn main() {
    let plan = Plan::from_env();
    let root = common::bench_root();
    std::fs::create_dir_all(&root).expect("bench dir");
    println!(
        "fiscald scale benchmark ({} run, {} receipts)",
        if plan.quick { "QUICK" } else { "full" },
        plan.receipts
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    if plan.daemon {
        daemon_phase(&plan, &root, &rt);
    }
    if plan.wal {
        wal_phase(&plan, &root, &rt);
    }
}

/// The two journals, and the daemon on each.
fn daemon_phase(plan: &Plan, root: &Path, rt: &tokio::runtime::Runtime) {
    // 1. The two journals.
    let empty_dir = tempdir(root);
    let big_dir = tempdir(root);
    let empty_cfg = write_config(empty_dir.path());
    let big_cfg = write_config(big_dir.path());
    let settings = config::load_file(&big_cfg).expect("bench config");
    let options = Options::from_settings(&settings, settings.journal_path.clone());
    let receipt = valid_receipt();
    let started = Instant::now();
    let load = mix(plan.receipts, &receipt);
    let made = bulk::load(&options, load, 10_000).expect("bulk load");
    let build = started.elapsed();
    let db_bytes = std::fs::metadata(&settings.journal_path)
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "  built {made} receipts in {:.1} s ({:.0}/s); journal file {:.1} MB = {:.0} bytes/receipt",
        build.as_secs_f64(),
        made as f64 / build.as_secs_f64(),
        db_bytes as f64 / 1e6,
        db_bytes as f64 / made.max(1) as f64
    );
    // The baseline: the same mix, 1,000 receipts.
    {
        let s = config::load_file(&empty_cfg).expect("config");
        bulk::load(
            &Options::from_settings(&s, s.journal_path.clone()),
            mix(BASELINE, &receipt),
            10_000,
        )
        .expect("baseline journal");
    }

    // 2. The daemon on each, alternating.
    let mut empty_runs = Vec::new();
    let mut big_runs = Vec::new();
    for _ in 0..plan.rounds {
        empty_runs.push(rt.block_on(measure_daemon(&empty_cfg, plan)));
        big_runs.push(rt.block_on(measure_daemon(&big_cfg, plan)));
    }
    let e = Daemon::median(&empty_runs);
    let b = Daemon::median(&big_runs);
    println!();
    println!(
        "| measure | {BASELINE} receipts | {} receipts | ratio | target |",
        plan.receipts
    );
    println!("|---|---:|---:|---:|---|");
    let row = |name: &str, a: f64, z: f64, unit: &str, target: &str| {
        println!(
            "| {name} | {a:.2} {unit} | {z:.2} {unit} | **{:.2}** | {target} |",
            z / a
        );
    };
    row("start-to-ready", e.start_ms, b.start_ms, "ms", "≤ 200 ms");
    row("GET /v1/health p50", e.health.0, b.health.0, "ms", "");
    row(
        "GET /v1/health p99",
        e.health.1,
        b.health.1,
        "ms",
        "ratio ≤ 2",
    );
    row("GET /v1/receipts p50", e.list.0, b.list.0, "ms", "");
    row(
        "GET /v1/receipts p99",
        e.list.1,
        b.list.1,
        "ms",
        "ratio ≤ 2",
    );
    row(
        "GET /v1/receipts?state=rejected&limit=10 p99",
        e.list_state.1,
        b.list_state.1,
        "ms",
        "ratio ≤ 2",
    );
    row("GET /v1/status p50", e.status.0, b.status.0, "ms", "");
    row(
        "GET /v1/status p99",
        e.status.1,
        b.status.1,
        "ms",
        "ratio ≤ 2",
    );
    row("GET /metrics p50", e.metrics.0, b.metrics.0, "ms", "");
    row(
        "GET /metrics p99",
        e.metrics.1,
        b.metrics.1,
        "ms",
        "ratio ≤ 2",
    );
    row(
        "POST /v1/receipts c=1 p50",
        e.accept.0,
        b.accept.0,
        "ms",
        "",
    );
    row(
        "POST /v1/receipts c=1 p99",
        e.accept.1,
        b.accept.1,
        "ms",
        "ratio ≤ 1.2",
    );
    row(
        "POST /v1/receipts c=64",
        e.throughput,
        b.throughput,
        "receipts/s",
        "ratio ≥ 1/1.2",
    );
    row(
        "resident memory (VmRSS)",
        e.rss_mb,
        b.rss_mb,
        "MB",
        "≤ 20 MB",
    );
    row(
        "peak resident memory (VmHWM)",
        e.hwm_mb,
        b.hwm_mb,
        "MB",
        "≤ 20 MB",
    );
    row("of it anonymous (RssAnon)", e.anon_mb, b.anon_mb, "MB", "");
    row(
        "of it mapped files (RssFile)",
        e.file_mb,
        b.file_mb,
        "MB",
        "",
    );
}

/// The WAL bounded against unbounded, and the 60 s burst.
fn wal_phase(plan: &Plan, root: &Path, rt: &tokio::runtime::Runtime) {
    let receipt = valid_receipt();
    // 3. The WAL.
    println!();
    let mut bounded = Vec::new();
    let mut unbounded = Vec::new();
    for _ in 0..plan.rounds.max(2) {
        bounded.push(rt.block_on(direct_burst(
            root,
            WalPolicy::default(),
            plan.ab_for,
            &receipt,
        )));
        unbounded.push(rt.block_on(direct_burst(
            root,
            WalPolicy { limit_bytes: None },
            plan.ab_for,
            &receipt,
        )));
    }
    let med = |v: &mut Vec<(f64, u64)>| {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v[v.len() / 2]
    };
    let (tb, pb) = med(&mut bounded);
    let (tu, pu) = med(&mut unbounded);
    println!(
        "| Journal::accept c=64, {} s | receipts/s | WAL peak |",
        plan.ab_for.as_secs()
    );
    println!("|---|---:|---:|");
    println!(
        "| WAL unbounded (PASSIVE only, before) | {tu:.0} | {:.1} MB |",
        pu as f64 / 1e6
    );
    println!(
        "| WAL bounded (64 MiB limit) | {tb:.0} | {:.1} MB |",
        pb as f64 / 1e6
    );
    println!(
        "| **ratio bounded / unbounded** (target ≥ 0.9) | **{:.2}** | |",
        tb / tu
    );

    let burst_dir = tempdir(root);
    let burst_cfg = write_config(burst_dir.path());
    let burst = rt.block_on(http_burst(&burst_cfg, plan.burst_for));
    println!();
    println!(
        "HTTP burst, c=64 for {} s: {:.0} receipts/s; WAL peak {:.1} MB (limit 64 MiB); \
         WAL truncated to 0 bytes {:.2} s after the burst",
        plan.burst_for.as_secs(),
        burst.0,
        burst.1 as f64 / 1e6,
        burst.2
    );
}

#[derive(Clone, Debug)]
struct Daemon {
    start_ms: f64,
    /// (p50, p99) in ms.
    health: (f64, f64),
    list: (f64, f64),
    list_state: (f64, f64),
    accept: (f64, f64),
    throughput: f64,
    rss_mb: f64,
    hwm_mb: f64,
    /// Of the resident memory: the process's own (heap, stacks, caches)
    /// and pages mapped from files (the binary's code, shared libraries).
    anon_mb: f64,
    file_mb: f64,
    status: (f64, f64),
    metrics: (f64, f64),
}

impl Daemon {
    fn median(runs: &[Daemon]) -> Daemon {
        let pick = |f: &dyn Fn(&Daemon) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        Daemon {
            start_ms: pick(&|d| d.start_ms),
            health: (pick(&|d| d.health.0), pick(&|d| d.health.1)),
            list: (pick(&|d| d.list.0), pick(&|d| d.list.1)),
            list_state: (pick(&|d| d.list_state.0), pick(&|d| d.list_state.1)),
            accept: (pick(&|d| d.accept.0), pick(&|d| d.accept.1)),
            throughput: pick(&|d| d.throughput),
            rss_mb: pick(&|d| d.rss_mb),
            hwm_mb: pick(&|d| d.hwm_mb),
            anon_mb: pick(&|d| d.anon_mb),
            file_mb: pick(&|d| d.file_mb),
            status: (pick(&|d| d.status.0), pick(&|d| d.status.1)),
            metrics: (pick(&|d| d.metrics.0), pick(&|d| d.metrics.1)),
        }
    }
}

async fn measure_daemon(config: &Path, plan: &Plan) -> Daemon {
    let (mut child, addr, start) = spawn(config);
    let start_ms = start.as_secs_f64() * 1e3;
    let mut conn = Raw::connect(addr).await;
    let mut lat = Vec::with_capacity(plan.serial);
    for _ in 0..plan.serial {
        let t = Instant::now();
        assert_eq!(conn.send("POST", "/v1/receipts", RECEIPT).await, 201);
        lat.push(t.elapsed());
    }
    let accept = percentiles(&mut lat);
    let (throughput, _) = concurrent(addr, plan.concurrent_for, None).await;
    // Let the burst's WAL settle, as between a till's sales.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut probe = async |path: &str, n: usize| {
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let status = conn.send("GET", path, "").await;
            lat.push(t.elapsed());
            assert_eq!(status, 200, "GET {path}");
        }
        percentiles(&mut lat)
    };

    probe("/v1/health", 5).await;
    let health = probe("/v1/health", plan.probes).await;
    let list = probe("/v1/receipts?limit=50", plan.probes).await;
    // The baseline journal holds 10 rejected receipts: a page of 10 from
    // each, so both answers carry the same number of receipts.
    let list_state = probe("/v1/receipts?state=rejected&limit=10", plan.probes).await;
    let status = probe("/v1/status", plan.probes).await;
    let metrics = probe("/metrics", plan.probes).await;
    let (rss_mb, hwm_mb, anon_mb, file_mb) = memory(child.id());
    stop(&mut child);
    Daemon {
        start_ms,
        health,
        list,
        list_state,
        status,
        metrics,
        accept,
        throughput,
        rss_mb,
        hwm_mb,
        anon_mb,
        file_mb,
    }
}

/// `Journal::accept` from 64 tasks for `for_`, on a fresh journal; (receipts/s, WAL peak bytes).
async fn direct_burst(
    root: &Path,
    wal: WalPolicy,
    for_: Duration,
    receipt: &Receipt,
) -> (f64, u64) {
    let dir = tempdir(root);
    let cfg = write_config(dir.path());
    let settings = config::load_file(&cfg).expect("config");
    let mut options = Options::from_settings(&settings, settings.journal_path.clone());
    options.wal = wal;
    let journal = Journal::open(options, Arc::new(fiscald::clock::SystemClock)).expect("journal");
    let sampler = WalSampler::start(&settings.journal_path);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + for_;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let journal = journal.clone();
        let done = done.clone();
        let receipt = receipt.clone();
        tasks.spawn(async move {
            while Instant::now() < deadline {
                let new = NewReceipt {
                    source: Source::Native,
                    caller_key: None,
                    receipt: receipt.clone(),
                };
                journal
                    .accept(new, Duration::from_secs(30))
                    .await
                    .expect("accept");
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let t = Instant::now();
    while tasks.join_next().await.is_some() {}
    let rate = done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    let peak = sampler.stop();
    let j = journal.clone();
    tokio::task::spawn_blocking(move || j.close())
        .await
        .expect("close");
    (rate, peak)
}

/// The binary under a c=64 HTTP burst: (receipts/s, WAL peak, seconds to a 0-byte WAL after).
async fn http_burst(config: &Path, for_: Duration) -> (f64, u64, f64) {
    let (mut child, addr, _) = spawn(config);
    let journal = config::load_file(config).expect("config").journal_path;
    let sampler = WalSampler::start(&journal);
    let (rate, ended) = concurrent(addr, for_, None).await;
    let wal = fiscald::journal::wal::wal_path(&journal);
    let truncated = loop {
        if std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0 {
            break ended.elapsed().as_secs_f64();
        }
        if ended.elapsed() > Duration::from_secs(30) {
            break f64::INFINITY;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let peak = sampler.stop();
    stop(&mut child);
    (rate, peak, truncated)
}

struct WalSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl WalSampler {
    fn start(db: &Path) -> WalSampler {
        let wal = fiscald::journal::wal::wal_path(db);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                let mut peak = 0;
                while !stop.load(Ordering::Relaxed) {
                    peak = peak.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
                    std::thread::sleep(Duration::from_millis(5));
                }
                peak
            }
        });
        WalSampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// 64 keep-alive clients posting receipts for `for_`: (receipts/s, when they stopped).
async fn concurrent(addr: SocketAddr, for_: Duration, _: Option<()>) -> (f64, Instant) {
    let deadline = Instant::now() + for_;
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..64 {
        let done = done.clone();
        tasks.spawn(async move {
            let mut conn = Raw::connect(addr).await;
            while Instant::now() < deadline {
                assert_eq!(conn.send("POST", "/v1/receipts", RECEIPT).await, 201);
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let t = Instant::now();
    while tasks.join_next().await.is_some() {}
    let ended = Instant::now();
    (
        done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64(),
        ended,
    )
}

/// Start the binary; (child, its address, exec-to-listening time).
fn spawn(config: &Path) -> (Child, SocketAddr, Duration) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fiscald"))
        .args(["run", "--config", config.to_str().expect("utf-8 path")])
        .env("FISCALD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("fiscald starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("fiscald printed its address")
            .expect("stdout line");
        if let Some(rest) = line.strip_prefix("fiscald listening on http://") {
            break rest.parse().expect("address");
        }
    };
    (child, addr, t.elapsed())
}

fn stop(child: &mut Child) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
}

/// (VmRSS, VmHWM) of a process, in MB.
/// (VmRSS, VmHWM, RssAnon, RssFile) in MB.
fn memory(pid: u32) -> (f64, f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (
        field("VmRSS:"),
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:"),
    )
}

fn percentiles(lat: &mut [Duration]) -> (f64, f64) {
    lat.sort();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1e3;
    (at(0.50), at(0.99))
}

/// A minimal HTTP/1.1 keep-alive client: it costs the shared cores less than reqwest.
struct Raw {
    stream: TcpStream,
    addr: SocketAddr,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            addr,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: &str) -> u16 {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body.as_bytes());
        self.stream.write_all(&request).await.expect("send");
        common::read_reply(&mut self.stream, &mut self.buf).await
    }
}

/// Receipts in the baseline journal.
const BASELINE: u64 = 1_000;

/// `n` receipts over the last five years: 97 % fiscalized, 1 % rejected,
/// 1 % discarded, 1 % of the last 10,000 still pending; every other one
/// with a caller key.
fn mix(n: u64, receipt: &Receipt) -> impl Iterator<Item = BulkReceipt> + '_ {
    let start_at = chrono::Utc::now() - chrono::Duration::days(1_800);
    let spacing_ms = (1_800 * 86_400_000 / n.max(1)) as i64;
    (0..n).map(move |i| BulkReceipt {
        at: start_at + chrono::Duration::milliseconds(i as i64 * spacing_ms),
        new: NewReceipt {
            source: Source::Native,
            caller_key: (i % 2 == 0).then(|| format!("pos-{i}")),
            receipt: receipt.clone(),
        },
        outcome: match i % 100 {
            0 => Outcome::Rejected,
            1 => Outcome::Discarded,
            2 if i + 10_000 > n => Outcome::Pending,
            _ => Outcome::Fiscalized,
        },
    })
}

fn valid_receipt() -> Receipt {
    common::valid_receipt(RECEIPT)
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("fiscald.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"1234\"\ntimezone = \"Europe/Moscow\"\n[fiscal]\ncountry = \"ru\"\n",
            dir.join("journal.sqlite").display()
        ),
    )
    .expect("write config");
    path
}

fn tempdir(root: &Path) -> tempfile::TempDir {
    common::tempdir(root, "scale")
}
