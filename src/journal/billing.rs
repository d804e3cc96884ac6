//! The FiscalBox billing's reconciliations in the journal (table
//! `billing_checks`, migration 5): one row per check, written by the
//! writer; a retried check (the billing was down) updates its own row, so
//! a delayed result becomes equal or different in place. The journal keeps
//! the newest [`KEEP_CHECKS`] rows. It stores what `fiscalbox::billing`
//! hands it and interprets none of it.

use super::writer::Ctx;
use super::{Journal, JournalError, WRITE_TIMEOUT};
use rusqlite::{Connection, OptionalExtension, params};

/// How many checks the journal keeps (one Z report a day: years of them;
/// on-demand checks share the budget). Older rows are deleted as new ones
/// are written.
pub const KEEP_CHECKS: i64 = 1000;

/// One stored reconciliation, as the journal holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BillingCheckRow {
    /// `None` for a check not stored yet.
    pub id: Option<i64>,
    pub period_from: String,
    pub period_to: String,
    /// `z_report` or `on_demand`.
    pub trigger: String,
    /// `equal`, `different` or `delayed`.
    pub result: String,
    pub journal_orders: i64,
    pub journal_amount: i64,
    pub billing_orders: Option<i64>,
    pub billing_amount: Option<i64>,
    /// The outcome as JSON: the differences and the receipts that explain
    /// them, or why the check is delayed.
    pub outcome: String,
    /// How many times the billing was asked for this check.
    pub attempts: u32,
    pub checked_at: String,
}

/// One fiscalized FiscalBox sale as the billing check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiscalboxSale {
    pub receipt_id: String,
    /// The receipt kind's code (`sale`, `sale_return`, …).
    pub kind: String,
    /// The fiscal attributes' `fiscal_document_number` (the box's receipt
    /// count).
    pub seq: i64,
    /// The fiscal attributes' `date_time` as stored; for a receipt whose
    /// fiscal time is unknown (`fiscal_time_known` false), its acceptance
    /// time (till-local, from `created_at`).
    pub date_time: String,
    pub total_minor: i64,
    pub fiscal_time_known: bool,
}

/// The period's sales: the `WHERE` repeats the partial index's own terms,
/// and `INDEXED BY` keeps SQLite from preferring `receipts_by_state` (where
/// `fiscalized` is nearly every receipt).
const SALES: &str =
    "SELECT id, json_extract(body, '$.kind'), json_extract(fiscal, '$.fiscal_document_number'),
            json_extract(fiscal, '$.date_time'), total_minor
     FROM receipts INDEXED BY receipts_fiscalbox_by_fiscal_time
     WHERE source = 'fiscalbox' AND fiscal IS NOT NULL
       AND json_extract(fiscal, '$.date_time') BETWEEN ?1 AND ?2
       AND state = 'fiscalized' AND json_extract(body, '$.uz') IS NOT NULL
     ORDER BY json_extract(fiscal, '$.date_time'), number";

/// The sales whose fiscal time is unknown (`?1`, the stored stand-in) and
/// whose acceptance (`created_at`, till-local with its offset: its first 19
/// characters are the local time) lies in `[?2, ?3]`: the same index, one
/// key.
const UNKNOWN_TIME_SALES: &str =
    "SELECT id, json_extract(body, '$.kind'), json_extract(fiscal, '$.fiscal_document_number'),
            substr(created_at, 1, 19), total_minor
     FROM receipts INDEXED BY receipts_fiscalbox_by_fiscal_time
     WHERE source = 'fiscalbox' AND fiscal IS NOT NULL
       AND json_extract(fiscal, '$.date_time') = ?1
       AND state = 'fiscalized' AND json_extract(body, '$.uz') IS NOT NULL
       AND substr(created_at, 1, 19) BETWEEN ?2 AND ?3
     ORDER BY number";

/// The period's counted sales (kinds `?4`, `?5`) of both kinds of time —
/// the fiscal time in `[?1, ?2]`, or (stored as the unknown-time stand-in
/// `?3`) accepted in `[?1, ?2]` — through the same partial index. Counted
/// and summed by SQLite: a check never holds the period's rows.
const KNOWN_TIME: &str = "FROM receipts INDEXED BY receipts_fiscalbox_by_fiscal_time
     WHERE source = 'fiscalbox' AND fiscal IS NOT NULL
       AND json_extract(fiscal, '$.date_time') BETWEEN ?1 AND ?2
       AND state = 'fiscalized' AND json_extract(body, '$.uz') IS NOT NULL
       AND json_extract(body, '$.kind') IN (?4, ?5)";
const UNKNOWN_TIME: &str = "FROM receipts INDEXED BY receipts_fiscalbox_by_fiscal_time
     WHERE source = 'fiscalbox' AND fiscal IS NOT NULL
       AND json_extract(fiscal, '$.date_time') = ?3
       AND state = 'fiscalized' AND json_extract(body, '$.uz') IS NOT NULL
       AND json_extract(body, '$.kind') IN (?4, ?5)
       AND substr(created_at, 1, 19) BETWEEN ?1 AND ?2";

fn sales_totals_sql() -> String {
    format!(
        "SELECT count(*), coalesce(sum(total_minor), 0) FROM (
           SELECT total_minor {KNOWN_TIME} UNION ALL SELECT total_minor {UNKNOWN_TIME})"
    )
}

/// The period's counted sales of a total in `[?6, ?7]`, at most `?8`.
fn sales_between_sql() -> String {
    format!(
        "SELECT id, json_extract(body, '$.kind'), json_extract(fiscal, '$.fiscal_document_number'),
                json_extract(fiscal, '$.date_time'), total_minor, 1 AS known, number
         {KNOWN_TIME} AND total_minor BETWEEN ?6 AND ?7
         UNION ALL
         SELECT id, json_extract(body, '$.kind'), json_extract(fiscal, '$.fiscal_document_number'),
                substr(created_at, 1, 19), total_minor, 0 AS known, number
         {UNKNOWN_TIME} AND total_minor BETWEEN ?6 AND ?7
         ORDER BY known DESC, 4, number LIMIT ?8"
    )
}

const COLUMNS: &str = "id, period_from, period_to, trigger, result, journal_orders, journal_amount, \
     billing_orders, billing_amount, outcome, attempts, checked_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BillingCheckRow> {
    Ok(BillingCheckRow {
        id: Some(r.get(0)?),
        period_from: r.get(1)?,
        period_to: r.get(2)?,
        trigger: r.get(3)?,
        result: r.get(4)?,
        journal_orders: r.get(5)?,
        journal_amount: r.get(6)?,
        billing_orders: r.get(7)?,
        billing_amount: r.get(8)?,
        outcome: r.get(9)?,
        attempts: r.get(10)?,
        checked_at: r.get(11)?,
    })
}

/// What storing a check did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedCheck {
    pub id: i64,
    /// False when the row named was no longer `delayed` (another ask
    /// settled it meanwhile): the settled row is kept, nothing written.
    pub written: bool,
}

/// A check's columns in the order of the INSERT and UPDATE below
/// (`period_from` … `checked_at`, then `at_ms`).
fn columns<'a>(check: &'a BillingCheckRow, at_ms: &'a i64) -> [&'a dyn rusqlite::ToSql; 12] {
    [
        &check.period_from,
        &check.period_to,
        &check.trigger,
        &check.result,
        &check.journal_orders,
        &check.journal_amount,
        &check.billing_orders,
        &check.billing_amount,
        &check.outcome,
        &check.attempts,
        &check.checked_at,
        at_ms,
    ]
}

/// Insert a new check (and drop settled `equal` rows older than the newest
/// [`KEEP_CHECKS`]) or update a stored one — only while it is still
/// `delayed`: a check settled by another ask is never overwritten by a
/// stale one.
fn save(
    c: &Connection,
    ctx: &Ctx<'_>,
    check: &BillingCheckRow,
) -> Result<SavedCheck, JournalError> {
    let at_ms = ctx.now.timestamp_millis();
    if let Some(id) = check.id {
        let changed = c
            .prepare_cached(
                "UPDATE billing_checks SET period_from = ?1, period_to = ?2, trigger = ?3, result = ?4,
                    journal_orders = ?5, journal_amount = ?6, billing_orders = ?7, billing_amount = ?8,
                    outcome = ?9, attempts = ?10, checked_at = ?11, at_ms = ?12
                 WHERE id = ?13 AND result = 'delayed'",
            )?
            .execute(rusqlite::params_from_iter(columns(check, &at_ms).into_iter().chain([&id as &dyn rusqlite::ToSql])))?;
        if changed == 1 {
            settle(c, id, check)?;
            return Ok(SavedCheck { id, written: true });
        }
        let exists = c
            .prepare_cached("SELECT 1 FROM billing_checks WHERE id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Ok(SavedCheck { id, written: false });
        }
        // Gone (a journal restored from an older copy): stored anew below.
    }
    c.prepare_cached(
        "INSERT INTO billing_checks (period_from, period_to, trigger, result, journal_orders,
            journal_amount, billing_orders, billing_amount, outcome, attempts, checked_at, at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params_from_iter(columns(check, &at_ms)))?;
    let id = c.last_insert_rowid();
    settle(c, id, check)?;
    // Only settled rows go: a delayed, different or refused check stays
    // until a person has seen it (they are few; equal ones are the bulk).
    c.prepare_cached("DELETE FROM billing_checks WHERE id <= ?1 AND result = 'equal'")?
        .execute([id - KEEP_CHECKS])?;
    Ok(SavedCheck { id, written: true })
}

/// An `equal` check `id` settles the earlier unresolved checks whose
/// period it covers (`settled_by`, migration 7): a seek of the partial
/// index of unresolved rows.
fn settle(c: &Connection, id: i64, check: &BillingCheckRow) -> Result<(), JournalError> {
    if check.result == "equal" {
        c.prepare_cached(
            "UPDATE billing_checks SET settled_by = ?1
             WHERE id < ?1 AND result != 'equal' AND settled_by IS NULL
               AND period_from >= ?2 AND period_to <= ?3",
        )?
        .execute(params![id, check.period_from, check.period_to])?;
    }
    Ok(())
}

/// Checks still not `equal` that no later `equal` check of a covering
/// period has settled: the partial index `billing_checks_unresolved`.
const UNRESOLVED: &str = "FROM billing_checks INDEXED BY billing_checks_unresolved WHERE result != 'equal' AND settled_by IS NULL";

impl super::read::Reader {
    /// See [`Journal::latest_billing_check`].
    pub(super) fn latest_billing_check(&self) -> Result<Option<BillingCheckRow>, JournalError> {
        self.with_conn(|c| {
            let z = c
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM billing_checks WHERE trigger = 'z_report'
                     ORDER BY period_to DESC, id DESC LIMIT 1"
                ))?
                .query_row([], row)
                .optional()?;
            if z.is_some() {
                return Ok(z);
            }
            Ok(c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM billing_checks ORDER BY period_to DESC, id DESC LIMIT 1"
            ))?
            .query_row([], row)
            .optional()?)
        })
    }

    /// See [`Journal::unresolved_billing_checks`].
    pub(super) fn unresolved_billing_checks(
        &self,
        limit: usize,
    ) -> Result<(Vec<BillingCheckRow>, i64), JournalError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {COLUMNS} {UNRESOLVED} ORDER BY id DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit as i64], row)?
                .collect::<Result<Vec<_>, _>>()?;
            let all: i64 = c
                .prepare_cached(&format!("SELECT count(*) {UNRESOLVED}"))?
                .query_row([], |r| r.get(0))?;
            Ok((rows, all))
        })
    }
}

impl Journal {
    /// Store a reconciliation (insert, or update the row `check.id` names);
    /// returns after the commit with the row's id.
    pub async fn save_billing_check(&self, check: BillingCheckRow) -> Result<i64, JournalError> {
        Ok(self.store_billing_check(check).await?.id)
    }

    /// A shift's close bookkeeping (`counters` set) and its Z report's
    /// pending billing check stored in one transaction: a stop between the
    /// two cannot leave a closed shift without its check. Returns the
    /// check's id.
    pub async fn close_shift_with_billing_check(
        &self,
        counters: Vec<(&'static str, i64)>,
        check: Option<BillingCheckRow>,
    ) -> Result<Option<i64>, JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| {
            for (name, value) in &counters {
                c.prepare_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![name, value])?;
            }
            check
                .as_ref()
                .map(|check| save(c, ctx, check).map(|s| s.id))
                .transpose()
        })
        .await
    }

    /// [`Journal::save_billing_check`], saying whether the row was written
    /// (an update of a row no longer `delayed` is not).
    pub async fn store_billing_check(
        &self,
        check: BillingCheckRow,
    ) -> Result<SavedCheck, JournalError> {
        self.apply(WRITE_TIMEOUT, move |c, ctx| save(c, ctx, &check))
            .await
    }

    /// One stored check by its id.
    pub async fn billing_check(&self, id: i64) -> Result<Option<BillingCheckRow>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM billing_checks WHERE id = ?1"
                ))?
                .query_row([id], row)
                .optional()?)
            })
        })
        .await
    }

    /// The newest still-delayed check of exactly this period and trigger
    /// (an on-demand check asked again joins it).
    pub async fn delayed_billing_check_of(
        &self,
        period_from: String,
        period_to: String,
        trigger: &'static str,
    ) -> Result<Option<BillingCheckRow>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM billing_checks
                     WHERE period_from = ?1 AND trigger = ?2 AND period_to = ?3
                       AND result = 'delayed'
                     ORDER BY id DESC LIMIT 1"
                ))?
                .query_row(params![period_from, trigger, period_to], row)
                .optional()?)
            })
        })
        .await
    }

    /// The Z report check of the newest shift (the latest `period_to`; of
    /// two for the same end, the one created last) — or, before any Z
    /// report, the newest on-demand check: what the status shows. An older
    /// period's check settling later does not replace it, nor does an
    /// on-demand check hide the day's Z report check.
    pub async fn latest_billing_check(&self) -> Result<Option<BillingCheckRow>, JournalError> {
        self.read(|r| r.latest_billing_check()).await
    }

    /// Checks still not `equal` (different, delayed, refused) that no later
    /// `equal` check of a period covering theirs has settled, newest first
    /// (at most `limit`), and how many there are in all: what needs a
    /// person's attention.
    pub async fn unresolved_billing_checks(
        &self,
        limit: usize,
    ) -> Result<(Vec<BillingCheckRow>, i64), JournalError> {
        self.read(move |r| r.unresolved_billing_checks(limit)).await
    }

    /// The fiscalized FiscalBox receipts with Uzbek data whose fiscal time
    /// (`YYYY-MM-DDTHH:MM:SS`, the journal's fiscal attributes) lies in
    /// `[from, to]`, in fiscal time order — read through the partial index
    /// `receipts_fiscalbox_by_fiscal_time` (migration 6), never the whole
    /// journal.
    ///
    /// Receipts stored with the fiscal time `unknown` (the box's time was
    /// unreadable) follow, when they were accepted in `[from, to]`, with
    /// `fiscal_time_known` false.
    pub async fn fiscalbox_sales(
        &self,
        from: String,
        to: String,
        unknown: &'static str,
    ) -> Result<Vec<FiscalboxSale>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                let sale = |known: bool| {
                    move |r: &rusqlite::Row<'_>| {
                        Ok(FiscalboxSale {
                            receipt_id: r.get(0)?,
                            kind: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                            seq: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                            date_time: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                            total_minor: r.get(4)?,
                            fiscal_time_known: known,
                        })
                    }
                };
                let mut rows = c
                    .prepare_cached(SALES)?
                    .query_map(params![from, to], sale(true))?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.extend(
                    c.prepare_cached(UNKNOWN_TIME_SALES)?
                        .query_map(params![unknown, from, to], sale(false))?
                        .collect::<Result<Vec<_>, _>>()?,
                );
                Ok(rows)
            })
        })
        .await
    }

    /// How many counted sales (of the kinds `kinds`) the period
    /// `[from, to]` holds and their total, as [`Journal::fiscalbox_sales`]
    /// would list them — counted in SQL.
    pub async fn fiscalbox_sales_totals(
        &self,
        from: String,
        to: String,
        unknown: &'static str,
        kinds: [&'static str; 2],
    ) -> Result<(i64, i64), JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                Ok(c.prepare_cached(&sales_totals_sql())?
                    .query_row(params![from, to, unknown, kinds[0], kinds[1]], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?)
            })
        })
        .await
    }

    /// The period's counted sales whose total lies in `[min, max]`, at most
    /// `limit` (the ones that may explain a difference).
    #[allow(clippy::too_many_arguments)]
    pub async fn fiscalbox_sales_between(
        &self,
        from: String,
        to: String,
        unknown: &'static str,
        kinds: [&'static str; 2],
        min: i64,
        max: i64,
        limit: usize,
    ) -> Result<Vec<FiscalboxSale>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                let mut stmt = c.prepare_cached(&sales_between_sql())?;
                let rows = stmt
                    .query_map(
                        params![
                            from,
                            to,
                            unknown,
                            kinds[0],
                            kinds[1],
                            min,
                            max,
                            limit as i64
                        ],
                        |r| {
                            Ok(FiscalboxSale {
                                receipt_id: r.get(0)?,
                                kind: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                                seq: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                                date_time: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                                total_minor: r.get(4)?,
                                fiscal_time_known: r.get::<_, i64>(5)? == 1,
                            })
                        },
                    )?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
        })
        .await
    }

    /// The newest check of `trigger` for the period starting at
    /// `period_from` (a shift's Z report check).
    pub async fn billing_check_from(
        &self,
        period_from: String,
        trigger: &'static str,
    ) -> Result<Option<BillingCheckRow>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM billing_checks WHERE period_from = ?1 AND trigger = ?2
                     ORDER BY id DESC LIMIT 1"
                ))?
                .query_row(params![period_from, trigger], row)
                .optional()?)
            })
        })
        .await
    }

    /// Checks still delayed (however often they were asked), Z report
    /// checks first, then oldest first (at most `limit`): the ones a restarted daemon takes up again. A
    /// refused check (`refused`) is not among them.
    pub async fn delayed_billing_checks(
        &self,
        limit: usize,
    ) -> Result<Vec<BillingCheckRow>, JournalError> {
        self.read(move |r| {
            r.with_conn(|c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM billing_checks INDEXED BY billing_checks_delayed
                     WHERE result = 'delayed' ORDER BY trigger != 'z_report', id LIMIT ?1"
                ))?;
                let rows = stmt
                    .query_map(params![limit as i64], row)?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use std::sync::Arc;

    fn check(result: &str) -> BillingCheckRow {
        BillingCheckRow {
            id: None,
            period_from: "2026-11-29T08:00:00".into(),
            period_to: "2026-11-29T20:00:00".into(),
            trigger: "z_report".into(),
            result: result.into(),
            journal_orders: 3,
            journal_amount: 67_200,
            billing_orders: None,
            billing_amount: None,
            outcome: format!("{{\"result\":\"{result}\"}}"),
            attempts: 1,
            checked_at: "2026-11-29T20:00:01+05:00".into(),
        }
    }

    fn journal(dir: &std::path::Path) -> Journal {
        let settings = crate::config::load_str(crate::config::DEMO_CONFIG).unwrap();
        let options = super::super::Options::from_settings(&settings, dir.join("j.sqlite"));
        Journal::open(options, Arc::new(SystemClock)).unwrap()
    }

    const UNKNOWN: &str = "1970-01-01T00:00:00";

    #[tokio::test]
    async fn a_periods_sales_are_read_through_the_partial_index_not_the_whole_journal() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        // Raw rows: FiscalBox sales in and out of the period, one not
        // fiscalized, one of another dialect, one without Uzbek data.
        j.apply(WRITE_TIMEOUT, |c, _| {
            let mut insert = c.prepare(
                "INSERT INTO receipts (number, id, source, state, idempotency_key, offline_url,
                    total_minor, fingerprint, body, created_at, updated_at, fiscal)
                 VALUES (?1, ?2, ?3, ?4, '', '', ?5, '', ?6, ?8, ?8, ?7)",
            )?;
            let uz = r#"{"kind":"sale","uz":{}}"#;
            for (n, source, state, body, time) in [
                (
                    1,
                    "fiscalbox",
                    "fiscalized",
                    uz,
                    Some("2026-11-28T23:59:59"),
                ),
                (
                    2,
                    "fiscalbox",
                    "fiscalized",
                    uz,
                    Some("2026-11-29T00:00:00"),
                ),
                (3, "fiscalbox", "accepted", uz, None),
                (4, "native", "fiscalized", uz, Some("2026-11-29T10:00:00")),
                (
                    5,
                    "fiscalbox",
                    "fiscalized",
                    r#"{"kind":"sale"}"#,
                    Some("2026-11-29T10:00:00"),
                ),
                (
                    6,
                    "fiscalbox",
                    "fiscalized",
                    r#"{"kind":"sale_return","uz":{}}"#,
                    Some("2026-11-29T11:00:00"),
                ),
                (
                    7,
                    "fiscalbox",
                    "fiscalized",
                    uz,
                    Some("2026-11-29T23:59:59"),
                ),
                (
                    8,
                    "fiscalbox",
                    "fiscalized",
                    uz,
                    Some("2026-11-30T00:00:00"),
                ),
                // The box's time was unreadable: accepted in the period or not.
                (9, "fiscalbox", "fiscalized", uz, Some(UNKNOWN)),
                (10, "fiscalbox", "fiscalized", uz, Some(UNKNOWN)),
            ] {
                let fiscal = time.map(|t| {
                    format!(
                        r#"{{"fiscal_document_number":{},"date_time":"{t}"}}"#,
                        n + 100
                    )
                });
                let created = if n == 10 {
                    "2026-11-30T08:00:00.000+05:00"
                } else {
                    "2026-11-29T08:00:00.000+05:00"
                };
                insert.execute(params![
                    n,
                    format!("r{n}"),
                    source,
                    state,
                    n * 1000,
                    body,
                    fiscal,
                    created
                ])?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let sales = j
            .fiscalbox_sales(
                "2026-11-29T00:00:00".into(),
                "2026-11-29T23:59:59".into(),
                UNKNOWN,
            )
            .await
            .unwrap();
        let got: Vec<(&str, &str, i64, i64, bool)> = sales
            .iter()
            .map(|s| {
                (
                    s.receipt_id.as_str(),
                    s.kind.as_str(),
                    s.seq,
                    s.total_minor,
                    s.fiscal_time_known,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("r2", "sale", 102, 2000, true),
                ("r6", "sale_return", 106, 6000, true),
                ("r7", "sale", 107, 7000, true),
                ("r9", "sale", 109, 9000, false),
            ]
        );
        assert_eq!(sales[0].date_time, "2026-11-29T00:00:00");
        assert_eq!(sales[3].date_time, "2026-11-29T08:00:00", "accepted then");
        // The plan: a range search of the partial index, no table scan.
        let plan: Vec<String> = j
            .read(|r| {
                r.with_conn(|c| {
                    let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {SALES}"))?;
                    let rows = stmt
                        .query_map(params!["a", "b"], |r| r.get::<_, String>(3))?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                })
            })
            .await
            .unwrap();
        let unknown_plan: Vec<String> = j
            .read(|r| {
                r.with_conn(|c| {
                    let mut stmt =
                        c.prepare(&format!("EXPLAIN QUERY PLAN {UNKNOWN_TIME_SALES}"))?;
                    let rows = stmt
                        .query_map(params!["u", "a", "b"], |r| r.get::<_, String>(3))?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(rows)
                })
            })
            .await
            .unwrap();
        // Counted and picked in SQL, both through the index.
        let kinds = ["sale", "sale"];
        let (from, to) = ("2026-11-29T00:00:00", "2026-11-29T23:59:59");
        assert_eq!(
            j.fiscalbox_sales_totals(from.into(), to.into(), UNKNOWN, kinds)
                .await
                .unwrap(),
            (3, 2000 + 7000 + 9000)
        );
        let picked = j
            .fiscalbox_sales_between(from.into(), to.into(), UNKNOWN, kinds, 5000, 9000, 10)
            .await
            .unwrap();
        let ids: Vec<(&str, bool)> = picked
            .iter()
            .map(|s| (s.receipt_id.as_str(), s.fiscal_time_known))
            .collect();
        assert_eq!(ids, [("r7", true), ("r9", false)]);
        assert_eq!(
            j.fiscalbox_sales_between(from.into(), to.into(), UNKNOWN, kinds, 0, 99_999, 1)
                .await
                .unwrap()
                .len(),
            1,
            "bounded"
        );
        let sql_plan: Vec<String> = j
            .read(|r| {
                r.with_conn(|c| {
                    let mut out = Vec::new();
                    for sql in [sales_totals_sql(), sales_between_sql()] {
                        let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                        let n = stmt.parameter_count();
                        let args: Vec<String> = (0..n).map(|i| format!("{i}")).collect();
                        out.extend(
                            stmt.query_map(rusqlite::params_from_iter(args), |r| {
                                r.get::<_, String>(3)
                            })?
                            .collect::<Result<Vec<_>, _>>()?,
                        );
                    }
                    Ok(out)
                })
            })
            .await
            .unwrap();
        let plan = plan.join("\n") + "\n" + &unknown_plan.join("\n") + "\n" + &sql_plan.join("\n");
        assert!(
            plan.contains("USING INDEX receipts_fiscalbox_by_fiscal_time"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN receipts"), "{plan}");
    }

    #[tokio::test]
    async fn the_status_shows_the_newest_period_and_lists_what_is_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let at = |result: &str, from: &str, to: &str| BillingCheckRow {
            period_from: from.into(),
            period_to: to.into(),
            ..check(result)
        };
        // Day 1 delayed, day 2 different; then day 1 settles to equal.
        let day1 = j
            .save_billing_check(at("delayed", "2026-11-28T08:00:00", "2026-11-28T20:00:00"))
            .await
            .unwrap();
        let day2 = j
            .save_billing_check(at(
                "different",
                "2026-11-29T08:00:00",
                "2026-11-29T20:00:00",
            ))
            .await
            .unwrap();
        let (open, all) = j.unresolved_billing_checks(10).await.unwrap();
        assert_eq!(all, 2);
        assert_eq!(
            open.iter().map(|r| r.id).collect::<Vec<_>>(),
            [Some(day2), Some(day1)]
        );
        let mut settled = at("equal", "2026-11-28T08:00:00", "2026-11-28T20:00:00");
        settled.id = Some(day1);
        j.save_billing_check(settled).await.unwrap();
        // The newest period's `different` stays shown although day 1's row
        // changed last.
        assert_eq!(
            j.latest_billing_check().await.unwrap().unwrap().id,
            Some(day2)
        );
        let (open, all) = j.unresolved_billing_checks(10).await.unwrap();
        assert_eq!((open.len(), all), (1, 1));
        assert_eq!(open[0].id, Some(day2));
        // An on-demand equal check over the whole of day 2 (stored later)
        // resolves it — and, ending later, does not hide the day's Z check.
        j.save_billing_check(BillingCheckRow {
            trigger: "on_demand".into(),
            ..at("equal", "2026-11-29T00:00:00", "2026-11-29T23:59:59")
        })
        .await
        .unwrap();
        assert_eq!(j.unresolved_billing_checks(10).await.unwrap().1, 0);
        assert_eq!(
            j.latest_billing_check().await.unwrap().unwrap().id,
            Some(day2)
        );
    }

    #[tokio::test]
    async fn a_delayed_check_becomes_equal_in_place_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        assert_eq!(j.latest_billing_check().await.unwrap(), None);
        let id = j.save_billing_check(check("delayed")).await.unwrap();
        assert_eq!(j.delayed_billing_checks(10).await.unwrap().len(), 1);
        let mut done = check("equal");
        done.id = Some(id);
        done.attempts = 2;
        done.billing_orders = Some(3);
        done.billing_amount = Some(67_200);
        assert_eq!(j.save_billing_check(done.clone()).await.unwrap(), id);
        assert!(j.delayed_billing_checks(10).await.unwrap().is_empty());
        tokio::task::spawn_blocking({
            let j = j.clone();
            move || j.close()
        })
        .await
        .unwrap();
        let j = journal(dir.path());
        let latest = j.latest_billing_check().await.unwrap().unwrap();
        assert_eq!(latest, done);
        let by_period = j
            .billing_check_from("2026-11-29T08:00:00".into(), "z_report")
            .await
            .unwrap();
        assert_eq!(by_period, Some(done));
        assert_eq!(
            j.billing_check_from("2026-11-29T08:00:00".into(), "on_demand")
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn every_delayed_check_is_taken_up_however_often_asked_and_no_refused_one() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let often = j
            .save_billing_check(BillingCheckRow {
                attempts: 5_000,
                ..check("delayed")
            })
            .await
            .unwrap();
        j.save_billing_check(check("refused")).await.unwrap();
        let never_asked = j
            .save_billing_check(BillingCheckRow {
                attempts: 0,
                ..check("delayed")
            })
            .await
            .unwrap();
        let ids: Vec<Option<i64>> = j
            .delayed_billing_checks(16)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [Some(often), Some(never_asked)]);
    }

    #[tokio::test]
    async fn a_settled_check_is_never_overwritten_by_a_stale_ask() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let id = j.save_billing_check(check("delayed")).await.unwrap();
        let settled = BillingCheckRow {
            id: Some(id),
            attempts: 2,
            ..check("equal")
        };
        assert!(
            j.store_billing_check(settled.clone())
                .await
                .unwrap()
                .written
        );
        // A task that read the row while it was delayed stores its result.
        let stale = BillingCheckRow {
            id: Some(id),
            ..check("delayed")
        };
        assert_eq!(
            j.store_billing_check(stale).await.unwrap(),
            SavedCheck { id, written: false }
        );
        assert_eq!(j.billing_check(id).await.unwrap(), Some(settled));
        assert_eq!(j.billing_check(id + 1).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_shifts_close_and_its_z_check_are_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        j.set_counters(None, vec![("test.shift_open", 1)])
            .await
            .unwrap();
        let id = j
            .close_shift_with_billing_check(vec![("test.shift_open", 0)], Some(check("delayed")))
            .await
            .unwrap()
            .expect("the check's id");
        assert_eq!(j.counter("test.shift_open").await.unwrap(), 0);
        assert_eq!(
            j.billing_check(id).await.unwrap().unwrap().result,
            "delayed"
        );
        // A check the journal refuses (a NULL column) rolls the close back.
        j.set_counters(None, vec![("test.shift_open", 1)])
            .await
            .unwrap();
        let refused = j
            .apply(WRITE_TIMEOUT, |c, _| {
                c.execute_batch(
                    "CREATE TRIGGER no_checks BEFORE INSERT ON billing_checks
                     BEGIN SELECT RAISE(ABORT, 'no'); END",
                )?;
                Ok(())
            })
            .await;
        refused.unwrap();
        assert!(
            j.close_shift_with_billing_check(vec![("test.shift_open", 0)], Some(check("delayed")))
                .await
                .is_err()
        );
        assert_eq!(
            j.counter("test.shift_open").await.unwrap(),
            1,
            "the shift stays open when its check cannot be stored"
        );
    }

    #[tokio::test]
    async fn pruning_drops_only_settled_equal_checks() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let mut unsettled = Vec::new();
        for result in ["delayed", "different", "refused"] {
            unsettled.push(j.save_billing_check(check(result)).await.unwrap());
        }
        let old_equal = j.save_billing_check(check("equal")).await.unwrap();
        let mut saves = tokio::task::JoinSet::new();
        for _ in 0..KEEP_CHECKS + 5 {
            let j = j.clone();
            saves.spawn(async move { j.save_billing_check(check("equal")).await.unwrap() });
        }
        while saves.join_next().await.is_some() {}
        for id in unsettled {
            assert!(j.billing_check(id).await.unwrap().is_some(), "{id} kept");
        }
        assert_eq!(j.billing_check(old_equal).await.unwrap(), None);
        assert_eq!(j.delayed_billing_checks(16).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn z_report_checks_are_taken_up_first() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        let on_demand = j
            .save_billing_check(BillingCheckRow {
                trigger: "on_demand".into(),
                ..check("delayed")
            })
            .await
            .unwrap();
        let z = j.save_billing_check(check("delayed")).await.unwrap();
        let ids: Vec<Option<i64>> = j
            .delayed_billing_checks(16)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, [Some(z), Some(on_demand)]);
        let joined = j
            .delayed_billing_check_of(
                "2026-11-29T08:00:00".into(),
                "2026-11-29T20:00:00".into(),
                "on_demand",
            )
            .await
            .unwrap();
        assert_eq!(joined.and_then(|r| r.id), Some(on_demand));
    }

    #[tokio::test]
    async fn only_the_newest_checks_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let j = journal(dir.path());
        // Sent at once, so the writer commits them in a few batches.
        let mut saves = tokio::task::JoinSet::new();
        for _ in 0..KEEP_CHECKS + 5 {
            let j = j.clone();
            saves.spawn(async move { j.save_billing_check(check("equal")).await.unwrap() });
        }
        let mut last = 0;
        while let Some(id) = saves.join_next().await {
            last = last.max(id.unwrap());
        }
        let kept: i64 = j
            .read(|r| {
                r.with_conn(|c| {
                    Ok(c.query_row("SELECT count(*) FROM billing_checks", [], |r| r.get(0))?)
                })
            })
            .await
            .unwrap();
        assert_eq!(kept, KEEP_CHECKS);
        assert_eq!(
            j.latest_billing_check().await.unwrap().unwrap().id,
            Some(last)
        );
    }
}
