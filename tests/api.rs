//! The native API over real HTTP (port 0) with a real SQLite journal in a temp dir.

mod common;

use common::{TestDaemon, example, receipt};
use serde_json::{Value, json};

/// Recompute the idempotency key the way anyone could: the formula from seed
/// 001 fed to the system's `sha256sum`.
fn sha256sum(text: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("printf '%s' \"$1\" | sha256sum")
        .arg("sh")
        .arg(text)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn valid_receipt_is_journaled_with_a_recomputable_key() {
    let t = TestDaemon::start().await;
    let (status, r) = t.post(&example("receipt.json"), None).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["number"], 1);
    assert_eq!(r["state"], "accepted");
    assert_eq!(r["total"], "405.65");
    assert_eq!(r["change"], "94.35");
    assert_eq!(r["items"][0]["total"], "91.00");

    // created_at is the till's local time (Europe/Moscow in the demo config).
    let created = chrono::DateTime::parse_from_rfc3339(r["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(created.offset().local_minus_utc(), 3 * 3600);
    let input = format!("1/1234/405.65/{}", created.format("%d.%m.%Y %H:%M"));
    let key = sha256sum(&input);
    assert_eq!(r["idempotency_key"], key.as_str(), "key of {input:?}");
    assert_eq!(
        r["offline_url"],
        format!("http://127.0.0.1:8731/processing-api/receipts/{key}").as_str()
    );

    let (status, got) = t
        .get(&format!("/v1/receipts/{}", r["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["idempotency_key"], r["idempotency_key"]);
    assert_eq!(got["history"][0]["state"], "accepted");
    assert_eq!(got["history"][0]["actor"], "api:native");
}

#[tokio::test]
async fn repeat_with_same_key_returns_the_original_and_writes_nothing() {
    let t = TestDaemon::start().await;
    let body = receipt("Кофе", "150.00");
    let (s1, r1) = t.post(&body, Some("pos-7-order-1001")).await;
    assert_eq!(s1, 201);
    // Same receipt, other key order and spelling of the numbers: the same content.
    let same = json!({
        "payments": [{"amount": 150, "kind": "cash"}],
        "items": [{"vat": 22, "price": "150", "quantity": "1.000", "name": "Кофе"}],
        "type": "sale"
    });
    let (s2, r2) = t.post(&same, Some("pos-7-order-1001")).await;
    assert_eq!(s2, 200, "{r2}");
    assert_eq!(r2["id"], r1["id"]);
    assert_eq!(r2["number"], r1["number"]);
    assert_eq!(t.receipt_count().await, 1);

    let (s3, r3) = t
        .post(&receipt("Кофе", "170.00"), Some("pos-7-order-1001"))
        .await;
    assert_eq!(s3, 409, "{r3}");
    assert_eq!(r3["error"]["code"], "idempotency_conflict");
    assert!(
        r3["error"]["message"]
            .as_str()
            .unwrap()
            .contains(r1["id"].as_str().unwrap())
    );
    assert_eq!(t.receipt_count().await, 1);

    // A new key is a new receipt with the next number.
    let (s4, r4) = t.post(&body, Some("pos-7-order-1002")).await;
    assert_eq!(s4, 201);
    assert_eq!(r4["number"], 2);
}

#[tokio::test]
async fn concurrent_repeats_of_one_key_make_one_receipt() {
    let t = std::sync::Arc::new(TestDaemon::start().await);
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.post(&receipt("Чай", "80.00"), Some("same-key")).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let (status, r) = task.await.unwrap();
        assert!(status == 200 || status == 201, "{status} {r}");
        created += usize::from(status == 201);
        ids.insert(r["id"].as_str().unwrap().to_string());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(t.receipt_count().await, 1);
}

#[tokio::test]
async fn three_broken_rules_are_all_reported_and_nothing_is_written() {
    let t = TestDaemon::start().await;
    let body = json!({
        "type": "sale",
        "items": [
            {"name": "x".repeat(129), "quantity": 1, "price": "10.00", "vat": "22"},
            {"name": "Вода", "quantity": 2, "price": "30.00", "total": "50.00", "vat": "12"}
        ],
        "payments": [{"kind": "cash", "amount": "100.00"}]
    });
    let (status, r) = t.post(&body, Some("k")).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], "invalid_receipt");
    let details: Vec<(String, String)> = r["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap().into(),
                d["rule"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        details,
        vec![
            ("/items/0/name".to_string(), "max_length".to_string()),
            (
                "/items/1/vat".to_string(),
                "allowed_for_country".to_string()
            ),
            ("/items/1/total".to_string(), "line_total".to_string()),
        ]
    );
    for d in r["error"]["details"].as_array().unwrap() {
        assert!(!d["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(t.receipt_count().await, 0);
    let (_, h) = t.get("/v1/health").await;
    assert_eq!(h["journal"]["last_number"], 0, "no number was used up");
    // The key was not taken by the failed request.
    let (status, _) = t.post(&receipt("Вода", "30.00"), Some("k")).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let t = TestDaemon::start_with(|s| s.max_body_bytes = 4096).await;
    let url = format!("{}/v1/receipts", t.base);
    let send = |body: Vec<u8>, ctype: Option<&'static str>| {
        let mut req = t.client.post(&url).body(body);
        if let Some(c) = ctype {
            req = req.header("content-type", c);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap())
        }
    };
    let (s, r) = send(b"{\"type\": ".to_vec(), Some("application/json")).await;
    assert_eq!(
        (s, r["error"]["code"].as_str().unwrap()),
        (400, "malformed_json")
    );
    let (s, r) = send(b"{}".to_vec(), Some("text/plain")).await;
    assert_eq!(
        (s, r["error"]["code"].as_str().unwrap()),
        (415, "unsupported_media_type")
    );
    let (s, r) = send(b"{}".to_vec(), None).await;
    assert_eq!(s, 415, "{r}");
    let (s, r) = send(vec![b' '; 5000], Some("application/json; charset=utf-8")).await;
    assert_eq!(
        (s, r["error"]["code"].as_str().unwrap()),
        (413, "body_too_large")
    );
    let (s, r) = send(
        b"{\"type\":\"sale\",\"items\":[],\"payments\":[]}".to_vec(),
        Some("application/json"),
    )
    .await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(r["error"]["details"][0]["rule"], "min_items");

    let (s, r) = t.get("/v1/nothing").await;
    assert_eq!(
        (s, r["error"]["code"].as_str().unwrap()),
        (404, "not_found")
    );
    let resp = t.client.delete(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let (s, r) = t.get("/v1/receipts/no-such-id").await;
    assert_eq!(
        (s, r["error"]["code"].as_str().unwrap()),
        (404, "not_found")
    );

    let long_key = "k".repeat(129);
    let (s, r) = t.post(&receipt("a", "1.00"), Some(&long_key)).await;
    assert_eq!(s, 400, "{r}");
    assert_eq!(r["error"]["details"][0]["path"], "Idempotency-Key");
    assert_eq!(t.receipt_count().await, 0);
}

#[tokio::test]
async fn listing_pages_with_a_cursor_and_filters_by_state() {
    let t = TestDaemon::start().await;
    for i in 0..7 {
        let (s, _) = t.post(&receipt(&format!("item {i}"), "1.00"), None).await;
        assert_eq!(s, 201);
    }
    let mut numbers = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/receipts?limit=3&after={a}"),
            None => "/v1/receipts?limit=3".to_string(),
        };
        let (s, page) = t.get(&q).await;
        assert_eq!(s, 200);
        for r in page["receipts"].as_array().unwrap() {
            numbers.push(r["number"].as_u64().unwrap());
        }
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(numbers, (1..=7).collect::<Vec<_>>());
    let (_, accepted) = t.get("/v1/receipts?state=accepted&limit=500").await;
    assert_eq!(accepted["receipts"].as_array().unwrap().len(), 7);
    let (_, none) = t.get("/v1/receipts?state=fiscalized").await;
    assert_eq!(none["receipts"].as_array().unwrap().len(), 0);
    let (s, r) = t.get("/v1/receipts?after=bogus").await;
    assert_eq!(
        (s, r["error"]["details"][0]["rule"].as_str().unwrap()),
        (400, "known_cursor")
    );
    let (s, _) = t.get("/v1/receipts?limit=0").await;
    assert_eq!(s, 400);
    let (s, r) = t.get("/v1/receipts?state=acepted").await;
    assert_eq!(
        (s, r["error"]["details"][0]["path"].as_str().unwrap()),
        (400, "state")
    );
}

#[tokio::test]
async fn concurrent_receipts_get_distinct_consecutive_numbers() {
    let t = std::sync::Arc::new(TestDaemon::start().await);
    let mut tasks = Vec::new();
    for i in 0..64 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.post(&receipt(&format!("n{i}"), "2.50"), None).await
        }));
    }
    let mut numbers = Vec::new();
    for task in tasks {
        let (s, r) = task.await.unwrap();
        assert_eq!(s, 201, "{r}");
        numbers.push(r["number"].as_u64().unwrap());
    }
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=64).collect::<Vec<_>>());
    // Group commit: 64 concurrent receipts needed fewer than 64 transactions.
    let (_, h) = t.get("/v1/health").await;
    let writer = &h["journal"]["writer"];
    assert!(writer["largest_batch"].as_u64().unwrap() > 1, "{writer}");
    assert!(
        writer["commits"].as_u64().unwrap() < writer["commands"].as_u64().unwrap(),
        "{writer}"
    );
}

#[tokio::test]
async fn a_full_journal_answers_503_and_leaves_nothing_half_written() {
    // A 256 KiB cap stands in for a full disk: SQLite reports SQLITE_FULL either way.
    let t = TestDaemon::start_with(|s| s.journal_max_bytes = Some(256 * 1024)).await;
    let items: Vec<Value> = (0..200)
        .map(|i| json!({"name": format!("{i:03} {}", "Товар с длинным названием ".repeat(4)), "quantity": 1, "price": "1.00", "vat": "22"}))
        .collect();
    let big =
        json!({"type": "sale", "items": items, "payments": [{"kind": "cash", "amount": "200.00"}]});
    let mut accepted = Vec::new();
    let mut full = None;
    for i in 0..200 {
        let (s, r) = t.post(&big, Some(&format!("big-{i}"))).await;
        match s {
            201 => accepted.push(r["id"].as_str().unwrap().to_string()),
            503 => {
                full = Some(r);
                break;
            }
            other => panic!("unexpected {other}: {r}"),
        }
    }
    let full = full.expect("the cap is reached");
    assert_eq!(full["error"]["code"], "journal_full", "{full}");
    assert!(!accepted.is_empty());
    // Everything acknowledged is there with its history; nothing else is.
    let (_, h) = t.get("/v1/health").await;
    assert_eq!(h["journal"]["receipts"], accepted.len());
    assert_eq!(h["journal"]["last_number"], accepted.len());
    for id in &accepted {
        let (s, r) = t.get(&format!("/v1/receipts/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(r["history"].as_array().unwrap().len(), 1);
    }
    // A small receipt may still fit; if it does it takes the next number.
    let (s, r) = t.post(&receipt("мелочь", "1.00"), None).await;
    if s == 201 {
        assert_eq!(r["number"], accepted.len() as u64 + 1);
    } else {
        assert_eq!(s, 503);
    }
}

#[tokio::test]
async fn graceful_stop_flushes_and_reopen_continues_numbering() {
    let t = TestDaemon::start().await;
    for _ in 0..3 {
        assert_eq!(t.post(&receipt("a", "1.00"), None).await.0, 201);
    }
    let path = t.dir.path().to_path_buf();
    let TestDaemon { daemon, dir, .. } = t;
    daemon.stop().await.unwrap();
    let daemon = fiscald::daemon::Daemon::start(
        &common::settings(&path),
        std::sync::Arc::new(fiscald::clock::SystemClock),
    )
    .await
    .unwrap();
    let t2 = TestDaemon {
        base: format!("http://{}", daemon.addr),
        daemon,
        dir,
        client: reqwest::Client::new(),
    };
    let (s, r) = t2.post(&receipt("b", "1.00"), None).await;
    assert_eq!(s, 201);
    assert_eq!(r["number"], 4);
}

/// The rules (path, rule, message) of a 422 reply.
fn violations(r: &Value) -> Vec<(String, String, String)> {
    r["error"]["details"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|d| {
            (
                d["path"].as_str().unwrap_or_default().to_string(),
                d["rule"].as_str().unwrap_or_default().to_string(),
                d["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A daemon whose clock stands on 23 November 2026 (Moscow, the till's zone).
async fn daemon_in_2026() -> TestDaemon {
    use chrono::TimeZone;
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 11, 23, 11, 5, 0)
        .unwrap();
    TestDaemon::start_with_clock(
        |_| {},
        std::sync::Arc::new(fiscald::clock::ManualClock::new(at)),
    )
    .await
}

#[tokio::test]
async fn in_2026_vat_20_is_only_for_returns_and_settlements_of_2025_operations() {
    let t = daemon_in_2026().await;

    // A 2026 sale at 20 %: refused, naming the rule and the FNS letter.
    let mut sale = receipt("Чайник", "2400.00");
    sale["items"][0]["vat"] = "20".into();
    let (s, r) = t.post(&sale, None).await;
    assert_eq!(s, 422, "{r}");
    let v = violations(&r);
    assert_eq!(v.len(), 1, "{r}");
    assert_eq!(
        (v[0].0.as_str(), v[0].1.as_str()),
        ("/items/0/vat", "vat_20_before_2026_only")
    );
    assert!(v[0].2.contains("АБ-4-20/11248@"), "{}", v[0].2);

    // The return of a sale of 20 December 2025 at 20 %: accepted, dated.
    let (s, r) = t.post(&common::return_of_2025_sale_at_20(), None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["original_date"], "2025-12-20");
    assert_eq!(r["items"][0]["vat"], "20");

    // The same return of a 2026 sale, or with no date: refused.
    let mut late = common::return_of_2025_sale_at_20();
    late["original_date"] = "2026-01-05".into();
    let (s, r) = t.post(&late, None).await;
    assert_eq!(
        (s, violations(&r)[0].1.as_str()),
        (422, "vat_20_before_2026_only")
    );
    late.as_object_mut().unwrap().remove("original_date");
    let (s, r) = t.post(&late, None).await;
    assert_eq!(
        (s, violations(&r)[0].1.as_str()),
        (422, "vat_20_before_2026_only")
    );

    // A settlement: offsetting a 2025 prepayment at 20/120 → 20 % is fine.
    let settle = json!({
        "type": "sale", "original_date": "2025-11-30",
        "items": [{"name": "Шкаф по предоплате", "quantity": 1, "price": "12000.00", "vat": "20"}],
        "payments": [{"kind": "prepaid", "amount": "12000.00"}]
    });
    let (s, r) = t.post(&settle, None).await;
    assert_eq!(s, 201, "{r}");

    // A future original date is refused.
    let mut future = common::return_of_2025_sale_at_20();
    future["original_date"] = "2026-12-01".into();
    let (s, r) = t.post(&future, None).await;
    assert_eq!(s, 422);
    assert!(violations(&r).iter().any(|v| v.1 == "not_future"), "{r}");
}

#[tokio::test]
async fn overflow_with_a_given_total_zero_totals_and_disagreeing_methods_are_422() {
    let t = daemon_in_2026().await;
    // price × quantity overflows; the POS's own "total" does not save it.
    let overflow = json!({
        "type": "sale",
        "items": [{"name": "x", "quantity": "99999.999", "price": "999999999.99",
                   "total": "1.00", "vat": "22"}],
        "payments": [{"kind": "cash", "amount": "1.00"}]
    });
    let (s, r) = t.post(&overflow, None).await;
    assert_eq!(s, 422, "{r}");
    assert!(
        violations(&r)
            .iter()
            .any(|v| v.0 == "/items/0/total" && v.1 == "overflow"),
        "{r}"
    );

    // A zero-total receipt.
    let zero = json!({
        "type": "sale",
        "items": [{"name": "Пакет", "quantity": 1, "price": "0.00", "vat": "22"}],
        "payments": []
    });
    let (s, r) = t.post(&zero, None).await;
    assert_eq!(s, 422, "{r}");
    assert_eq!(violations(&r)[0].1, "positive_total", "{r}");
    // Zero after a discount is zero too.
    let mut all_off = receipt("Пакет", "5.00");
    all_off["discount"] = "5.00".into();
    let (s, r) = t.post(&all_off, None).await;
    assert_eq!(
        (s, violations(&r)[0].1.as_str()),
        (422, "positive_total"),
        "{r}"
    );

    // An advance at a flat rate; a prepayment offset with nothing settled.
    let mut advance = common::advance_22_122();
    advance["items"][0]["vat"] = "22".into();
    let (s, r) = t.post(&advance, None).await;
    assert_eq!(s, 422);
    assert_eq!(violations(&r)[0].1, "prepayment_calculated_rate", "{r}");
    let mut offset = common::advance_22_122();
    offset["payments"] = json!([{"kind": "prepaid", "amount": "1000.00"}]);
    let (s, r) = t.post(&offset, None).await;
    assert_eq!(s, 422);
    assert_eq!(violations(&r)[0].1, "prepaid_offsets_settlement", "{r}");
    // Nothing of the above was written.
    assert_eq!(t.receipt_count().await, 0);

    // The fixtures themselves are valid.
    let (s, r) = t
        .post(&common::Fiscal2026 { marked: None }.json(), None)
        .await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["total"], common::Fiscal2026::TOTAL);
    assert_eq!(r["change"], common::Fiscal2026::CHANGE);
    let shares: i64 = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            fiscald::domain::Money::parse(i["receipt_discount"].as_str().unwrap_or("0"))
                .unwrap()
                .0
        })
        .sum();
    assert_eq!(shares, 1000, "the receipt discount is spread exactly: {r}");
    let (s, r) = t.post(&common::advance_22_122(), None).await;
    assert_eq!(s, 201, "{r}");
    // The documented FFD 1.2 example is the fixture's receipt.
    let (s, r) = t.post(&example("receipt-ffd12.json"), None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["total"], common::Fiscal2026::TOTAL);
}
