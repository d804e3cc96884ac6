//! Retention across a crash: the real binary archives a journal of old
//! receipts, is SIGKILLed in the middle (several times), restarted, and the
//! journal and the archive must agree — every receipt in exactly one of them.

mod common;

use chrono::{TimeZone, Utc};
use common::{Proc, receipt};
use fiscald::domain::Source;
use fiscald::journal::archive::Archive;
use fiscald::journal::bulk::{self, BulkReceipt, Outcome};
use fiscald::journal::{NewReceipt, Options};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("fiscald.toml");
    std::fs::write(
        &path,
        format!(
            "[api]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"{}\"\n[till]\npin = \"4321\"\ntimezone = \"Europe/Moscow\"\n[fiscal]\ncountry = \"ru\"\n",
            dir.join("journal.sqlite").display()
        ),
    )
    .unwrap();
    path
}

fn spawn(config: &Path) -> (Proc, String) {
    common::spawn_fiscald(
        &["run", "--config", config.to_str().unwrap()],
        "fiscald listening on ",
    )
}

fn archive_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl.gz"))
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
        .unwrap_or(0)
}

fn kill9(p: &mut Proc) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(p.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    p.wait().unwrap();
}

fn journal_ids(path: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT id FROM receipts").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_the_middle_of_retention_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let settings = fiscald::config::load_file(&config).unwrap();
    let options = Options::from_settings(&settings, settings.journal_path.clone());
    let archive_dir = options.retention.archive_dir.clone();

    // Four months of receipts seven years ago (due for the archive under the
    // default retain_days), some never fiscalized, and a recent month.
    let old = Utc.with_ymd_and_hms(2019, 1, 10, 9, 0, 0).unwrap();
    let recent = Utc::now() - chrono::Duration::days(20);
    let mut load = Vec::new();
    for i in 0..4_000i64 {
        load.push(BulkReceipt {
            at: old + chrono::Duration::minutes(i * 30),
            new: NewReceipt {
                source: Source::Native,
                caller_key: Some(format!("pos-{i}")),
                receipt: receipt_of(i),
            },
            outcome: if i % 50 == 0 {
                Outcome::Pending
            } else {
                Outcome::Fiscalized
            },
        });
    }
    for i in 0..300i64 {
        load.push(BulkReceipt {
            at: recent + chrono::Duration::minutes(i),
            new: NewReceipt {
                source: Source::Native,
                caller_key: None,
                receipt: receipt_of(10_000 + i),
            },
            outcome: Outcome::Fiscalized,
        });
    }
    assert_eq!(bulk::load(&options, load, 2_000).unwrap(), 4_300);
    let all = journal_ids(&settings.journal_path);
    let due = 4_000 - 80;

    // Kill it three times while it is moving receipts.
    let mut killed_mid_run = 0;
    for round in 0..3u64 {
        let (mut p, _) = spawn(&config);
        let before = archive_bytes(&archive_dir);
        let deadline = Instant::now() + Duration::from_secs(30);
        // Let it write `round + 1` chunks' worth of growth first.
        let mut seen = before;
        let mut grew = 0;
        while grew <= round && Instant::now() < deadline {
            let now = archive_bytes(&archive_dir);
            if now != seen {
                grew += 1;
                seen = now;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        kill9(&mut p);
        let left = journal_ids(&settings.journal_path).len();
        if left > all.len() - due {
            killed_mid_run += 1;
        }
    }
    assert!(
        killed_mid_run >= 2,
        "the kills landed in the middle of a run"
    );

    // Restart and let the run finish.
    let (mut p, base) = spawn(&config);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health: serde_json::Value = client
            .get(format!("{base}/v1/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let run = &health["journal"]["retention"];
        if run["finished_at"].is_string() {
            assert!(run["error"].is_null(), "{run}");
            assert_eq!(health["journal"]["archived"], due as u64, "{health}");
            assert_eq!(
                health["journal"]["receipts"].as_u64().unwrap() as usize,
                all.len() - due
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not finish: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An archived receipt is found by id over HTTP, and its key still names it.
    let archive = Archive::new(&archive_dir);
    let files = archive.list().unwrap();
    assert_eq!(
        files.iter().map(|f| f.month.as_str()).collect::<Vec<_>>(),
        ["2019-01", "2019-02", "2019-03", "2019-04"]
    );
    let mut archived = Vec::new();
    for f in &files {
        assert!(archive.sealed(&f.month).unwrap(), "{} sealed", f.month);
        archived.extend(archive.ids(&f.month).unwrap());
    }
    let first = archived[0].clone();
    let found: serde_json::Value = client
        .get(format!("{base}/v1/archive/receipts/{first}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["id"], first.as_str());
    assert_eq!(found["archived"], true);
    let listing: serde_json::Value = client
        .get(format!("{base}/v1/archive"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listing["files"].as_array().unwrap().len(), 4, "{listing}");
    let repeat = client
        .post(format!("{base}/v1/receipts"))
        .header("Idempotency-Key", found["caller_key"].as_str().unwrap())
        .json(&receipt("Хлеб", "45.50"))
        .send()
        .await
        .unwrap();
    assert_eq!(repeat.status().as_u16(), 409);
    let body: serde_json::Value = repeat.json().await.unwrap();
    assert_eq!(body["error"]["code"], "caller_key_archived", "{body}");
    kill9(&mut p);

    // Every receipt is in exactly one place, and none twice in the archive.
    let n = archived.len();
    archived.sort();
    archived.dedup();
    assert_eq!(n, archived.len(), "a receipt was archived twice");
    assert_eq!(n, due);
    let mut live = journal_ids(&settings.journal_path);
    live.sort();
    for id in &all {
        let in_journal = live.binary_search(id).is_ok();
        let in_archive = archived.binary_search(id).is_ok();
        assert!(
            in_journal != in_archive,
            "{id}: journal {in_journal}, archive {in_archive}"
        );
    }
}

fn receipt_of(i: i64) -> fiscald::domain::Receipt {
    common::domain_receipt(
        &format!("Товар {i}"),
        &format!("{}.{:02}", 10 + i / 100, i % 100),
    )
}
