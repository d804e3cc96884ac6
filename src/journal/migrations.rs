//! The journal's schema as an ordered list of forward-only migrations, tracked
//! in `PRAGMA user_version`. A migration is never edited once released: a
//! change is a new entry at the end. Each runs in its own transaction.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: receipts, their state history, caller idempotency keys, counters.
    r#"
    CREATE TABLE counters (
        name  TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    INSERT INTO counters (name, value) VALUES ('receipt_number', 0);

    CREATE TABLE receipts (
        number          INTEGER PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        source          TEXT NOT NULL,
        state           TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        offline_url     TEXT NOT NULL,
        total_minor     INTEGER NOT NULL,
        fingerprint     TEXT NOT NULL,
        body            TEXT NOT NULL,
        caller_key      TEXT,
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX receipts_by_state ON receipts (state, number);

    CREATE TABLE receipt_events (
        seq        INTEGER PRIMARY KEY,
        receipt_id TEXT NOT NULL REFERENCES receipts (id),
        at         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        state      TEXT NOT NULL,
        note       TEXT
    ) STRICT;
    CREATE INDEX receipt_events_by_receipt ON receipt_events (receipt_id, seq);

    CREATE TABLE caller_keys (
        source      TEXT NOT NULL,
        caller_key  TEXT NOT NULL,
        receipt_id  TEXT NOT NULL REFERENCES receipts (id),
        fingerprint TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (source, caller_key)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 2: the outbox (a general durable job queue), fiscal results on receipts,
    // and stored cloud tokens. Receipts already journaled get their job.
    r#"
    CREATE TABLE jobs (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL,
        receipt_id      TEXT REFERENCES receipts (id),
        state           TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_error      TEXT,
        data            TEXT NOT NULL DEFAULT '{}',
        created_at      TEXT NOT NULL,
        updated_at      TEXT NOT NULL
    ) STRICT;
    CREATE INDEX jobs_due ON jobs (kind, state, next_attempt_at, id);
    CREATE UNIQUE INDEX jobs_one_per_receipt ON jobs (kind, receipt_id) WHERE receipt_id IS NOT NULL;

    ALTER TABLE receipts ADD COLUMN fiscal TEXT;
    ALTER TABLE receipts ADD COLUMN fiscal_qr TEXT;

    CREATE TABLE secrets (
        name       TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        expires_at INTEGER,
        updated_at TEXT NOT NULL
    ) STRICT;

    INSERT INTO jobs (kind, receipt_id, state, next_attempt_at, created_at, updated_at)
        SELECT 'fiscalize', id, 'pending', 0, created_at, created_at FROM receipts WHERE state = 'accepted';
    "#,
    // 3: years of receipts. Tallies by receipt state and by job kind and
    // state, kept by triggers in the same transaction as every change (so
    // health and status never count rows), backfilled here; the index that
    // finds receipts final long enough to archive; the archive's bookkeeping;
    // and caller keys that outlive their archived receipt (no foreign key).
    r#"
    CREATE TABLE receipt_tally (
        state TEXT PRIMARY KEY,
        n     INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    INSERT INTO receipt_tally (state, n) SELECT state, count(*) FROM receipts GROUP BY state;
    CREATE TRIGGER receipt_tally_insert AFTER INSERT ON receipts BEGIN
        INSERT INTO receipt_tally (state, n) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER receipt_tally_update AFTER UPDATE OF state ON receipts
        WHEN OLD.state IS NOT NEW.state BEGIN
        UPDATE receipt_tally SET n = n - 1 WHERE state = OLD.state;
        INSERT INTO receipt_tally (state, n) VALUES (NEW.state, 1)
            ON CONFLICT (state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER receipt_tally_delete AFTER DELETE ON receipts BEGIN
        UPDATE receipt_tally SET n = n - 1 WHERE state = OLD.state;
    END;

    CREATE TABLE job_tally (
        kind  TEXT NOT NULL,
        state TEXT NOT NULL,
        n     INTEGER NOT NULL,
        PRIMARY KEY (kind, state)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO job_tally (kind, state, n) SELECT kind, state, count(*) FROM jobs GROUP BY kind, state;
    CREATE TRIGGER job_tally_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO job_tally (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
            ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_tally_update AFTER UPDATE OF kind, state ON jobs
        WHEN OLD.state IS NOT NEW.state OR OLD.kind IS NOT NEW.kind BEGIN
        UPDATE job_tally SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
        INSERT INTO job_tally (kind, state, n) VALUES (NEW.kind, NEW.state, 1)
            ON CONFLICT (kind, state) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER job_tally_delete AFTER DELETE ON jobs BEGIN
        UPDATE job_tally SET n = n - 1 WHERE kind = OLD.kind AND state = OLD.state;
    END;

    -- Only final receipts are in it, so accepting a receipt never touches it.
    CREATE INDEX receipts_final_by_time ON receipts (unixepoch(updated_at))
        WHERE state IN ('fiscalized', 'discarded');

    -- One row per monthly archive file: what the journal moved into it.
    CREATE TABLE archives (
        month      TEXT PRIMARY KEY,
        receipts   INTEGER NOT NULL,
        bytes      INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    ) STRICT;
    -- The chunk being written to an archive file: written before the file is
    -- appended to, removed with the chunk's receipts (crash recovery).
    CREATE TABLE archive_chunk (
        one      INTEGER PRIMARY KEY CHECK (one = 1),
        month    TEXT NOT NULL,
        offset   INTEGER NOT NULL,
        ids      TEXT NOT NULL
    ) STRICT;

    CREATE TABLE caller_keys_kept (
        source      TEXT NOT NULL,
        caller_key  TEXT NOT NULL,
        receipt_id  TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (source, caller_key)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO caller_keys_kept SELECT source, caller_key, receipt_id, fingerprint, created_at FROM caller_keys;
    DROP TABLE caller_keys;
    ALTER TABLE caller_keys_kept RENAME TO caller_keys;
    "#,
    // 4: status at any size. Receipt tallies by state *and source* (they
    // replace version 3's by-state tally, same cost per change), and per-day
    // tallies on the till-local date of `created_at`: receipts accepted that
    // day, and their payments by (receipt kind, payment kind) with change as
    // its own negative `change` row, discarded receipts taken back out. Day
    // rows are never deleted (a few per day; retention keeps them). The
    // operator's parked list reads a partial index that holds only parked
    // jobs, so normal traffic never writes to it.
    r#"
    DROP TRIGGER receipt_tally_insert;
    DROP TRIGGER receipt_tally_update;
    DROP TRIGGER receipt_tally_delete;
    DROP TABLE receipt_tally;
    CREATE TABLE receipt_tally (
        state  TEXT NOT NULL,
        source TEXT NOT NULL,
        n      INTEGER NOT NULL,
        PRIMARY KEY (state, source)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO receipt_tally (state, source, n) SELECT state, source, count(*) FROM receipts GROUP BY state, source;
    CREATE TRIGGER receipt_tally_insert AFTER INSERT ON receipts BEGIN
        INSERT INTO receipt_tally (state, source, n) VALUES (NEW.state, NEW.source, 1)
            ON CONFLICT (state, source) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER receipt_tally_update AFTER UPDATE OF state, source ON receipts
        WHEN OLD.state IS NOT NEW.state OR OLD.source IS NOT NEW.source BEGIN
        UPDATE receipt_tally SET n = n - 1 WHERE state = OLD.state AND source = OLD.source;
        INSERT INTO receipt_tally (state, source, n) VALUES (NEW.state, NEW.source, 1)
            ON CONFLICT (state, source) DO UPDATE SET n = n + 1;
    END;
    CREATE TRIGGER receipt_tally_delete AFTER DELETE ON receipts BEGIN
        UPDATE receipt_tally SET n = n - 1 WHERE state = OLD.state AND source = OLD.source;
    END;

    CREATE TABLE day_receipts (
        day TEXT PRIMARY KEY,
        n   INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE day_payments (
        day     TEXT NOT NULL,
        kind    TEXT NOT NULL,
        payment TEXT NOT NULL,
        amount  INTEGER NOT NULL,
        PRIMARY KEY (day, kind, payment)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO day_receipts (day, n) SELECT substr(created_at, 1, 10), count(*) FROM receipts GROUP BY 1;
    INSERT INTO day_payments (day, kind, payment, amount)
        SELECT day, kind, payment, sum(amount) FROM (
            SELECT substr(r.created_at, 1, 10) AS day, coalesce(json_extract(r.body, '$.kind'), '') AS kind,
                   coalesce(json_extract(p.value, '$.kind'), '') AS payment, coalesce(json_extract(p.value, '$.amount'), 0) AS amount
            FROM receipts r, json_each(r.body, '$.payments') p WHERE r.state != 'discarded'
            UNION ALL
            SELECT substr(created_at, 1, 10), coalesce(json_extract(body, '$.kind'), ''), 'change', -coalesce(json_extract(body, '$.change'), 0)
            FROM receipts WHERE state != 'discarded' AND coalesce(json_extract(body, '$.change'), 0) != 0
        ) GROUP BY 1, 2, 3;
    CREATE TRIGGER day_tally_insert AFTER INSERT ON receipts BEGIN
        INSERT INTO day_receipts (day, n) VALUES (substr(NEW.created_at, 1, 10), 1)
            ON CONFLICT (day) DO UPDATE SET n = n + 1;
        INSERT INTO day_payments (day, kind, payment, amount)
            SELECT substr(NEW.created_at, 1, 10), coalesce(json_extract(NEW.body, '$.kind'), ''),
                   coalesce(json_extract(p.value, '$.kind'), ''), coalesce(json_extract(p.value, '$.amount'), 0)
            FROM json_each(NEW.body, '$.payments') p WHERE NEW.state != 'discarded'
            ON CONFLICT (day, kind, payment) DO UPDATE SET amount = amount + excluded.amount;
        INSERT INTO day_payments (day, kind, payment, amount)
            SELECT substr(NEW.created_at, 1, 10), coalesce(json_extract(NEW.body, '$.kind'), ''), 'change',
                   -json_extract(NEW.body, '$.change')
            WHERE NEW.state != 'discarded' AND coalesce(json_extract(NEW.body, '$.change'), 0) != 0
            ON CONFLICT (day, kind, payment) DO UPDATE SET amount = amount + excluded.amount;
    END;
    CREATE TRIGGER day_tally_discard AFTER UPDATE OF state ON receipts
        WHEN NEW.state = 'discarded' AND OLD.state != 'discarded' BEGIN
        UPDATE day_payments SET amount = amount - coalesce((
                SELECT sum(coalesce(json_extract(p.value, '$.amount'), 0)) FROM json_each(OLD.body, '$.payments') p
                WHERE coalesce(json_extract(p.value, '$.kind'), '') = day_payments.payment), 0)
            WHERE day = substr(OLD.created_at, 1, 10) AND kind = coalesce(json_extract(OLD.body, '$.kind'), '')
              AND payment != 'change';
        UPDATE day_payments SET amount = amount + coalesce(json_extract(OLD.body, '$.change'), 0)
            WHERE day = substr(OLD.created_at, 1, 10) AND kind = coalesce(json_extract(OLD.body, '$.kind'), '')
              AND payment = 'change';
    END;

    CREATE INDEX jobs_parked ON jobs (id) WHERE state = 'parked';
    "#,
    // 5 (billing): every reconciliation with the FiscalBox billing, one row
    // per check (a retried check updates its row): the period, what
    // triggered it, both sides' count and amount, the outcome and its JSON
    // (differences, the receipts that explain them, or why it is delayed).
    // Kept to the newest `journal::billing::KEEP_CHECKS` rows; the status
    // reads the newest by `at_ms`, the shift report by `period_from`.
    r#"
    CREATE TABLE billing_checks (
        id                  INTEGER PRIMARY KEY,
        period_from         TEXT NOT NULL,
        period_to           TEXT NOT NULL,
        trigger             TEXT NOT NULL,
        result              TEXT NOT NULL,
        journal_orders      INTEGER NOT NULL,
        journal_amount      INTEGER NOT NULL,
        billing_orders      INTEGER,
        billing_amount      INTEGER,
        outcome             TEXT NOT NULL,
        attempts            INTEGER NOT NULL,
        checked_at          TEXT NOT NULL,
        at_ms               INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX billing_checks_by_time ON billing_checks (at_ms, id);
    CREATE INDEX billing_checks_by_period ON billing_checks (period_from, trigger, id);
    "#,
    // 6 (billing): the billing's check reads a period's fiscalized
    // FiscalBox sales by their fiscal time through this index. Partial: it
    // holds only FiscalBox receipts with fiscal data, so accepting a receipt
    // (fiscal is NULL then) never writes to it, and other dialects' receipts
    // never do; each FiscalBox receipt adds one entry when it is fiscalized.
    // The status shows the check of the newest period (period_to).
    r#"
    CREATE INDEX receipts_fiscalbox_by_fiscal_time ON receipts (json_extract(fiscal, '$.date_time'))
        WHERE source = 'fiscalbox' AND fiscal IS NOT NULL;
    CREATE INDEX billing_checks_by_end ON billing_checks (period_to, id);
    "#,
    // 7 (billing): `settled_by`, the id of the later `equal` check whose
    // period covers this one, kept when a check is stored, so the status's
    // unresolved checks (not equal, not settled) are an index seek instead
    // of a pairwise comparison; delayed checks (the take-up) by index too,
    // and the status's newest Z report check by trigger and period end.
    // The backfill settles what the comparison settled before.
    r#"
    ALTER TABLE billing_checks ADD COLUMN settled_by INTEGER;
    UPDATE billing_checks AS a SET settled_by = (
        SELECT min(b.id) FROM billing_checks b WHERE b.id > a.id AND b.result = 'equal'
            AND b.period_from <= a.period_from AND b.period_to >= a.period_to)
        WHERE a.result != 'equal';
    CREATE INDEX billing_checks_unresolved ON billing_checks (id)
        WHERE result != 'equal' AND settled_by IS NULL;
    CREATE INDEX billing_checks_delayed ON billing_checks (id) WHERE result = 'delayed';
    CREATE INDEX billing_checks_by_trigger_end ON billing_checks (trigger, period_to, id);
    "#,
];

pub fn latest_version() -> u32 {
    MIGRATIONS.len() as u32
}

/// Bring the schema up to [`latest_version`]. Refuses a file written by a newer
/// fiscald rather than guess at a schema it does not know.
pub fn migrate(conn: &mut Connection) -> Result<u32, MigrationError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > latest_version() {
        return Err(MigrationError::TooNew {
            found: current,
            known: latest_version(),
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
    }
    Ok(current)
}

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the journal has schema version {found}, newer than this fiscald knows ({known}); \
         it was written by a newer release: install that release again instead of downgrading"
    )]
    TooNew { found: u32, known: u32 },
    #[error("journal migration failed: {0}")]
    Sql(#[from] rusqlite::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows a journal at version `i + 1` could hold; inserted before migrating
    /// onwards, so each later migration is tested against real data.
    const FIXTURES: &[&str] = &[
        r#"
        UPDATE counters SET value = 2 WHERE name = 'receipt_number';
        INSERT INTO receipts VALUES (1, 'r1', 'native', 'accepted', 'k1', 'u1', 100, 'f1', '{}', NULL, 't', 't');
        INSERT INTO receipts VALUES (2, 'r2', 'native', 'accepted', 'k2', 'u2', 200, 'f2', '{}', 'c2', 't', 't');
        INSERT INTO receipt_events (receipt_id, at, actor, state) VALUES ('r1', 't', 'test', 'accepted');
        INSERT INTO caller_keys VALUES ('native', 'c2', 'r2', 'f2', 't');
    "#,
        r#"
        INSERT INTO secrets VALUES ('access_token', 'x', 0, 't');
    "#,
        r#"
        INSERT INTO archives VALUES ('2020-01', 3, 100, 't');
    "#,
        r#"
        INSERT INTO receipts VALUES (3, 'r3', 'fiscalbox', 'accepted', 'k3', 'u3', 300, 'f3',
            '{"kind":"sale","payments":[{"kind":"cash","amount":500}],"change":200}', NULL,
            '2026-11-30T10:00:00.000+03:00', '2026-11-30T10:00:00.000+03:00', NULL, NULL);
        UPDATE counters SET value = 3 WHERE name = 'receipt_number';
    "#,
        r#"
        INSERT INTO billing_checks (period_from, period_to, trigger, result, journal_orders, journal_amount,
                                    billing_orders, billing_amount, outcome, attempts, checked_at, at_ms)
            VALUES ('2026-11-29T08:00:00', '2026-11-29T20:00:00', 'z_report', 'equal', 3, 67200,
                    3, 67200, '{"result":"equal"}', 1, '2026-11-29T20:00:01+05:00', 1795964401000);
    "#,
        // The FiscalBox receipt's fiscal data arrive (the partial index
        // takes it in on the update).
        r#"
        UPDATE receipts SET fiscal = '{"fiscal_document_number":7,"date_time":"2026-11-30T10:00:05"}'
            WHERE id = 'r3';
        INSERT INTO billing_checks (period_from, period_to, trigger, result, journal_orders, journal_amount,
                                    billing_orders, billing_amount, outcome, attempts, checked_at, at_ms)
            VALUES ('2026-11-30T08:00:00', '2026-11-30T20:00:00', 'z_report', 'different', 3, 67200,
                    2, 60000, '{}', 1, 't', 1),
                   ('2026-11-30T00:00:00', '2026-11-30T23:59:59', 'on_demand', 'equal', 3, 67200,
                    3, 67200, '{}', 1, 't', 2),
                   ('2026-12-01T08:00:00', '2026-12-01T20:00:00', 'z_report', 'delayed', 1, 100,
                    NULL, NULL, '{}', 1, 't', 3);
    "#,
        r#"
        INSERT INTO billing_checks (period_from, period_to, trigger, result, journal_orders, journal_amount,
                                    billing_orders, billing_amount, outcome, attempts, checked_at, at_ms,
                                    settled_by)
            VALUES ('2026-12-02T08:00:00', '2026-12-02T20:00:00', 'z_report', 'refused', 0, 0,
                    NULL, NULL, '{}', 1, 't', 4, NULL);
    "#,
    ];

    #[test]
    fn every_migration_has_a_fixture() {
        assert_eq!(FIXTURES.len(), MIGRATIONS.len());
    }

    #[test]
    fn migrates_from_empty_and_from_every_earlier_version() {
        for start in 0..=MIGRATIONS.len() {
            let dir = tempfile::tempdir().unwrap();
            let mut conn = Connection::open(dir.path().join("j.sqlite")).unwrap();
            for (i, sql) in MIGRATIONS.iter().enumerate().take(start) {
                conn.execute_batch(sql).unwrap();
                conn.pragma_update(None, "user_version", i as u32 + 1)
                    .unwrap();
                conn.execute_batch(FIXTURES[i]).unwrap();
            }
            let from = migrate(&mut conn).unwrap();
            assert_eq!(from as usize, start);
            let v: u32 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, latest_version());
            let ok: String = conn
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            let fk: Vec<String> = conn
                .prepare("PRAGMA foreign_key_check")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                fk.is_empty(),
                "foreign keys broken after migrating from {start}: {fk:?}"
            );
            if start > 0 {
                let n: i64 = conn
                    .query_row("SELECT count(*) FROM receipts", [], |r| r.get(0))
                    .unwrap();
                let expected = if start >= 4 { 3 } else { 2 };
                assert_eq!(n, expected, "data kept when migrating from {start}");
                let tallied: i64 = conn
                    .query_row(
                        "SELECT coalesce(sum(n), 0) FROM receipt_tally WHERE state = 'accepted'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(
                    tallied, expected,
                    "tallies backfilled when migrating from {start}"
                );
                let by_day: i64 = conn
                    .query_row("SELECT coalesce(sum(n), 0) FROM day_receipts", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                assert_eq!(by_day, expected, "day tally when migrating from {start}");
                let jobs: i64 = conn
                    .query_row("SELECT coalesce(sum(n), 0) FROM job_tally", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                let counted: i64 = conn
                    .query_row("SELECT count(*) FROM jobs", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(jobs, counted);
            }
            if start >= 6 {
                // The backfill settled the different check the later equal
                // one covers; the delayed one stays unresolved.
                let unresolved: Vec<String> = conn
                    .prepare(
                        "SELECT result FROM billing_checks
                         WHERE result != 'equal' AND settled_by IS NULL ORDER BY id",
                    )
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let mut want = vec!["delayed"];
                if start >= 7 {
                    want.push("refused");
                }
                assert_eq!(unresolved, want, "from {start}");
            }
            if start >= 5 {
                let checks: i64 = conn
                    .query_row("SELECT count(*) FROM billing_checks", [], |r| r.get(0))
                    .unwrap();
                let expected = match start {
                    5 => 1,
                    6 => 4,
                    _ => 5,
                };
                assert_eq!(
                    checks, expected,
                    "billing checks kept when migrating from {start}"
                );
            }
            if start >= 6 {
                let found: String = conn
                    .query_row(
                        "SELECT id FROM receipts INDEXED BY receipts_fiscalbox_by_fiscal_time
                         WHERE source = 'fiscalbox' AND fiscal IS NOT NULL
                           AND json_extract(fiscal, '$.date_time') = '2026-11-30T10:00:05'",
                        [],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(found, "r3");
            }
            // Migrating again is a no-op.
            assert_eq!(migrate(&mut conn).unwrap(), latest_version());
        }
    }

    /// The day tallies follow inserts and discards, payments and change.
    #[test]
    fn day_tallies_follow_receipts() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("j.sqlite")).unwrap();
        migrate(&mut conn).unwrap();
        let insert = |n: i64, body: &str, day: &str| {
            conn.execute(
                "INSERT INTO receipts (number, id, source, state, idempotency_key, offline_url, total_minor,
                     fingerprint, body, created_at, updated_at) VALUES (?1, ?2, 'native', 'accepted', 'k', 'u', 0, 'f', ?3, ?4, ?4)",
                rusqlite::params![n, format!("r{n}"), body, format!("{day}T10:00:00.000+03:00")],
            )
            .unwrap();
        };
        let sale = r#"{"kind":"sale","payments":[{"kind":"cash","amount":1000},{"kind":"card","amount":250}],"change":100}"#;
        insert(1, sale, "2026-11-30");
        insert(2, sale, "2026-11-30");
        insert(
            3,
            r#"{"kind":"refund","payments":[{"kind":"card","amount":70}],"change":0}"#,
            "2026-11-30",
        );
        insert(4, sale, "2026-11-29");
        conn.execute(
            "UPDATE receipts SET state = 'discarded' WHERE number = 2",
            [],
        )
        .unwrap();
        let rows: Vec<(String, String, String, i64)> = conn
            .prepare("SELECT day, kind, payment, amount FROM day_payments ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let row =
            |d: &str, k: &str, p: &str, a: i64| (d.to_string(), k.to_string(), p.to_string(), a);
        assert_eq!(
            rows,
            vec![
                row("2026-11-29", "sale", "card", 250),
                row("2026-11-29", "sale", "cash", 1000),
                row("2026-11-29", "sale", "change", -100),
                row("2026-11-30", "refund", "card", 70),
                row("2026-11-30", "sale", "card", 250),
                row("2026-11-30", "sale", "cash", 1000),
                row("2026-11-30", "sale", "change", -100),
            ]
        );
        let today: i64 = conn
            .query_row(
                "SELECT n FROM day_receipts WHERE day = '2026-11-30'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(today, 3, "a discarded receipt was still accepted that day");
        let by_source: i64 = conn
            .query_row(
                "SELECT n FROM receipt_tally WHERE state = 'discarded' AND source = 'native'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(by_source, 1);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("j.sqlite")).unwrap();
        conn.pragma_update(None, "user_version", latest_version() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn),
            Err(MigrationError::TooNew { .. })
        ));
    }
}
