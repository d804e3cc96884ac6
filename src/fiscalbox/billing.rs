//! The FiscalBox billing: its client (login → token, kept in the journal's
//! secrets table, rotated by age and renewed on 401) and the reconciliation
//! of the journal's fiscalized Uzbek sales with the billing's orders count
//! for a period ([`reconcile`], pure).
//!
//! Wire facts (paths, shapes, units, date format) live in [`super::facts`].
//! The password and the token never reach a log line, an error message, a
//! reply or the status page: errors carry statuses and the billing's words.
//! Retries follow the cloud sync's [`RetryPolicy`]; a billing outage delays
//! the check (and says so), it never touches sales.

use super::facts::{
    self, BILLING_COUNT_PATH, BILLING_DATE_FORMAT, BILLING_LOGIN_PATH, BillingCountReply,
    BillingLogin, BillingToken,
};
use crate::clock::Clock;
use crate::config::{BillingSettings, Secret};
use crate::domain::receipt::ReceiptKind;
use crate::journal::{BillingCheckRow, FiscalboxSale, Journal};
use crate::sync::client::transport_failure;
use crate::sync::policy::{Decision, Failure, RetryPolicy, parse_retry_after};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;

/// The journal's secrets-table name of the billing token.
pub const BILLING_TOKEN: &str = "fiscalbox.billing_token";

/// One fiscalized sale of the journal, as the reconciliation sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalOrder {
    pub receipt_id: String,
    /// The box's receipt sequence number.
    pub receipt_seq: u64,
    /// The fiscal time; the acceptance time when the box's time was
    /// unreadable (`fiscal_time_unknown`).
    pub date_time: NaiveDateTime,
    pub amount_tiyin: i64,
    /// The box's time of this receipt was unreadable: it is counted in the
    /// period it was accepted in.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fiscal_time_unknown: bool,
}

/// What the billing counted for a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingCount {
    pub orders: i64,
    pub amount_tiyin: i64,
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Equal,
    Different {
        /// Journal minus billing.
        orders_difference: i64,
        amount_difference_tiyin: i64,
        /// The journal's receipts whose count and amount match the
        /// difference exactly (the receipts the billing is missing, or the
        /// journal's extra ones); empty when no subset explains it. At
        /// most [`EXPLAIN_SHOWN`] of them.
        explained_by: Vec<JournalOrder>,
        /// How many more receipts would explain it than are listed (at
        /// most [`EXPLAIN_PAIRS_UP_TO`] are read: beyond, at least this
        /// many).
        #[serde(default, skip_serializing_if = "is_zero")]
        explained_more: usize,
    },
    /// The billing could not be asked (yet); the check is asked again.
    Delayed {
        reason: String,
    },
    /// The billing refused the request itself (HTTP 400/422: a wrong login
    /// or INN, a period it does not take); not asked again until a person
    /// fixes the cause and checks by hand.
    Refused {
        reason: String,
    },
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The most receipts a difference names (stored and shown); the rest are
/// counted in `explained_more`.
pub const EXPLAIN_SHOWN: usize = 20;
/// Pairs of receipts are searched for a two-order difference only among at
/// most this many candidates (200² / 2 = 20 000 sums); beyond it only the
/// difference is reported.
pub const EXPLAIN_PAIRS_UP_TO: usize = 200;

/// What started a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The shift's Z report (the period is the shift).
    ZReport,
    /// `POST /v1/billing/check` / `fiscald billing check`.
    OnDemand,
}

impl Trigger {
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::ZReport => "z_report",
            Trigger::OnDemand => "on_demand",
        }
    }

    fn from_code(code: &str) -> Option<Trigger> {
        [Trigger::ZReport, Trigger::OnDemand]
            .into_iter()
            .find(|t| t.as_str() == code)
    }
}

/// One reconciliation, as stored in the journal and shown by the status,
/// the page, the shift report and `POST /v1/billing/check`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    /// The journal's row; absent before it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub start: String,
    pub end: String,
    pub trigger: Trigger,
    pub journal: BillingCount,
    pub billing: Option<BillingCount>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// How many times the billing was asked for this check (a delayed
    /// check is retried and its stored result replaced).
    pub attempts: u32,
    pub checked_at: String,
}

impl Reconciliation {
    pub fn is_delayed(&self) -> bool {
        matches!(self.outcome, Outcome::Delayed { .. })
    }

    /// The journal's row for it.
    pub fn to_row(&self) -> BillingCheckRow {
        BillingCheckRow {
            id: self.id,
            period_from: self.start.clone(),
            period_to: self.end.clone(),
            trigger: self.trigger.as_str().to_string(),
            result: match self.outcome {
                Outcome::Equal => "equal",
                Outcome::Different { .. } => "different",
                Outcome::Delayed { .. } => "delayed",
                Outcome::Refused { .. } => "refused",
            }
            .to_string(),
            journal_orders: self.journal.orders,
            journal_amount: self.journal.amount_tiyin,
            billing_orders: self.billing.map(|b| b.orders),
            billing_amount: self.billing.map(|b| b.amount_tiyin),
            outcome: serde_json::to_string(&self.outcome).expect("an outcome serializes"),
            attempts: self.attempts,
            checked_at: self.checked_at.clone(),
        }
    }

    /// Back from the journal's row; `None` for a row this release cannot
    /// read (an unknown trigger or outcome).
    pub fn from_row(row: BillingCheckRow) -> Option<Reconciliation> {
        Some(Reconciliation {
            id: row.id,
            start: row.period_from,
            end: row.period_to,
            trigger: Trigger::from_code(&row.trigger)?,
            journal: BillingCount {
                orders: row.journal_orders,
                amount_tiyin: row.journal_amount,
            },
            billing: match (row.billing_orders, row.billing_amount) {
                (Some(orders), Some(amount_tiyin)) => Some(BillingCount {
                    orders,
                    amount_tiyin,
                }),
                _ => None,
            },
            outcome: serde_json::from_str(&row.outcome).ok()?,
            attempts: row.attempts,
            checked_at: row.checked_at,
        })
    }

    /// The period back as local times.
    fn period(&self) -> Option<(NaiveDateTime, NaiveDateTime)> {
        Some((
            NaiveDateTime::parse_from_str(&self.start, BILLING_DATE_FORMAT).ok()?,
            NaiveDateTime::parse_from_str(&self.end, BILLING_DATE_FORMAT).ok()?,
        ))
    }
}

/// Store a reconciliation in the journal (a new row, or its own row again
/// when it has an id); returns it with its id. A journal that cannot be
/// written costs only the record, never a sale: logged.
pub async fn store(journal: &Journal, r: Reconciliation) -> Reconciliation {
    store_settled(journal, r).await.0
}

/// [`store`], and whether it was written: an update of a check that
/// another ask settled meanwhile is not — the settled row is returned
/// instead of the stale one.
async fn store_settled(journal: &Journal, mut r: Reconciliation) -> (Reconciliation, bool) {
    match journal.store_billing_check(r.to_row()).await {
        Ok(saved) if saved.written => r.id = Some(saved.id),
        Ok(saved) => {
            let settled = journal
                .billing_check(saved.id)
                .await
                .ok()
                .flatten()
                .and_then(Reconciliation::from_row);
            return (settled.unwrap_or(r), false);
        }
        Err(e) => tracing::warn!(error = %e, "billing reconciliation not stored"),
    }
    (r, true)
}

/// The stored check of the newest period (what `/v1/status` and the page
/// show).
pub async fn latest(journal: &Journal) -> Option<Reconciliation> {
    journal
        .latest_billing_check()
        .await
        .ok()
        .flatten()
        .and_then(Reconciliation::from_row)
}

/// How many unresolved checks the status lists (the rest are counted).
pub const UNRESOLVED_SHOWN: usize = 5;

/// The checks not settled `equal` by a later check of a covering period,
/// newest first (at most [`UNRESOLVED_SHOWN`]), and how many in all.
pub async fn unresolved(journal: &Journal) -> (Vec<Reconciliation>, i64) {
    match journal.unresolved_billing_checks(UNRESOLVED_SHOWN).await {
        Ok((rows, all)) => (
            rows.into_iter()
                .filter_map(Reconciliation::from_row)
                .collect(),
            all,
        ),
        Err(e) => {
            tracing::warn!(error = %e, "billing checks unreadable");
            (Vec::new(), 0)
        }
    }
}

/// The Z report check of the shift that opened at `start` (local time).
pub async fn of_shift(journal: &Journal, start: NaiveDateTime) -> Option<Reconciliation> {
    journal
        .billing_check_from(
            start.format(BILLING_DATE_FORMAT).to_string(),
            Trigger::ZReport.as_str(),
        )
        .await
        .ok()
        .flatten()
        .and_then(Reconciliation::from_row)
}

/// The journal's fiscalized Uzbek sales (as [`Journal::fiscalbox_sales`]
/// reads them for the period) that the billing counts as orders, whose
/// fiscal time lies in `[start, end]` (local time, both ends included).
/// Pure.
pub fn journal_orders(
    sales: &[FiscalboxSale],
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> Vec<JournalOrder> {
    sales
        .iter()
        .filter(|r| {
            r.kind == ReceiptKind::Sale.code()
                || (facts::BILLING_COUNTS_REFUNDS && r.kind == ReceiptKind::SaleReturn.code())
        })
        .filter_map(|r| {
            let date_time = r.date_time.parse::<NaiveDateTime>().ok()?;
            (date_time >= start && date_time <= end).then(|| JournalOrder {
                receipt_id: r.receipt_id.clone(),
                receipt_seq: r.seq.max(0) as u64,
                date_time,
                amount_tiyin: facts::tiyin(crate::domain::Money(r.total_minor)),
                fiscal_time_unknown: !r.fiscal_time_known,
            })
        })
        .collect()
}

/// The billing period of a closed shift, till-local: the box's own Z
/// report `open_time` – `close_time` when readable, else the journal's
/// shift opening (`journal_open`) and the POS's close `time`, else `now`
/// (the till's clock) for the end and the end's midnight for the start.
/// A period is always given; the third value says what was guessed (for
/// the log). Pure.
pub fn shift_period(
    box_open: &str,
    box_close: &str,
    pos_time: &str,
    journal_open: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> (NaiveDateTime, NaiveDateTime, Vec<&'static str>) {
    let mut guessed = Vec::new();
    let end = facts::zreport_time(box_close)
        .or_else(|| NaiveDateTime::parse_from_str(pos_time, facts::REQUEST_TIME_FORMAT).ok())
        .unwrap_or_else(|| {
            guessed.push(
                "neither the box's close_time nor the POS's time is readable; the period ends now (till clock)",
            );
            now
        });
    let start = facts::zreport_time(box_open)
        .or(journal_open)
        .unwrap_or_else(|| {
            guessed.push("the shift's opening is unknown; the period starts at the end's midnight");
            end.date().and_time(chrono::NaiveTime::MIN)
        });
    (start.min(end), end, guessed)
}

/// The receipt kinds the billing counts as orders (twice the same when
/// refunds are not counted: the journal's query takes two).
const COUNTED_KINDS: [&str; 2] = [
    "sale",
    if facts::BILLING_COUNTS_REFUNDS {
        "sale_return"
    } else {
        "sale"
    },
];

/// Compare the journal's orders with the billing's count. Pure.
pub fn reconcile(orders: &[JournalOrder], billing: BillingCount) -> Outcome {
    reconcile_counted(totals(orders), billing, orders)
}

/// Compare the journal's count with the billing's, naming the receipts
/// among `candidates` (the journal's orders that may explain the
/// difference, possibly only some of them) that do. Pure.
pub fn reconcile_counted(
    journal: BillingCount,
    billing: BillingCount,
    orders: &[JournalOrder],
) -> Outcome {
    let dn = journal.orders - billing.orders;
    let da = journal.amount_tiyin - billing.amount_tiyin;
    if dn == 0 && da == 0 {
        return Outcome::Equal;
    }
    let (explained_by, explained_more) = explain(orders, dn, da);
    Outcome::Different {
        orders_difference: dn,
        amount_difference_tiyin: da,
        explained_by,
        explained_more,
    }
}

pub fn totals(orders: &[JournalOrder]) -> BillingCount {
    BillingCount {
        orders: orders.len() as i64,
        amount_tiyin: orders.iter().map(|o| o.amount_tiyin).sum(),
    }
}

/// The journal's receipts that account for `dn` orders and `da` tiyin more
/// than the billing saw: for one missing order, the receipts of exactly
/// that amount; for two, the receipts of the pairs whose amounts sum to it
/// (searched only among at most [`EXPLAIN_PAIRS_UP_TO`] candidates) —
/// every candidate when several would. At most [`EXPLAIN_SHOWN`] are
/// returned, with the count of the others. Pure.
fn explain(orders: &[JournalOrder], dn: i64, da: i64) -> (Vec<JournalOrder>, usize) {
    let found: Vec<&JournalOrder> = match dn {
        1 => orders.iter().filter(|o| o.amount_tiyin == da).collect(),
        2 => {
            // Both of a pair are positive amounts below the difference.
            let candidates: Vec<&JournalOrder> = orders
                .iter()
                .filter(|o| o.amount_tiyin > 0 && o.amount_tiyin < da)
                .collect();
            if candidates.len() > EXPLAIN_PAIRS_UP_TO {
                Vec::new()
            } else {
                let mut hit = vec![false; candidates.len()];
                for i in 0..candidates.len() {
                    for k in i + 1..candidates.len() {
                        if candidates[i].amount_tiyin + candidates[k].amount_tiyin == da {
                            hit[i] = true;
                            hit[k] = true;
                        }
                    }
                }
                candidates
                    .into_iter()
                    .zip(hit)
                    .filter_map(|(o, h)| h.then_some(o))
                    .collect()
            }
        }
        _ => Vec::new(),
    };
    let more = found.len().saturating_sub(EXPLAIN_SHOWN);
    (
        found.into_iter().take(EXPLAIN_SHOWN).cloned().collect(),
        more,
    )
}

/// Counters for the status page.
#[derive(Debug, Default)]
pub struct BillingCounters {
    pub logins: AtomicU64,
    pub checks: AtomicU64,
}

struct Token {
    value: Secret,
    /// Log in again at this time (the configured rotation age).
    rotate_at: DateTime<Utc>,
}

pub struct BillingClient {
    http: reqwest::Client,
    settings: BillingSettings,
    journal: Journal,
    clock: Arc<dyn Clock>,
    token: Mutex<Option<Token>>,
    pub policy: RetryPolicy,
    pub counters: BillingCounters,
    /// Background checks and retries, stopped with the daemon.
    tasks: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// The stored checks being asked now (by row id): one task per check.
    in_flight: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Held while an on-demand check looks for one of its period to join
    /// and stores its own: two requests at once make one row.
    on_demand: Mutex<()>,
}

impl BillingClient {
    pub fn new(
        settings: BillingSettings,
        journal: Journal,
        clock: Arc<dyn Clock>,
    ) -> Result<BillingClient, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .user_agent(concat!("fiscald/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the billing HTTP client: {e}"))?;
        Ok(BillingClient {
            http,
            policy: RetryPolicy {
                base: settings.retry_base,
                cap: settings.retry_cap,
                ..RetryPolicy::default()
            },
            settings,
            journal,
            clock,
            token: Mutex::new(None),
            counters: BillingCounters::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
            in_flight: std::sync::Mutex::new(std::collections::HashSet::new()),
            on_demand: Mutex::new(()),
        })
    }

    /// The billing's orders count for `[start, end]` (local time); logs in
    /// first when there is no token or it is due for rotation, and once
    /// more when the billing answers 401.
    pub async fn count(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
    ) -> Result<BillingCount, Failure> {
        let url = format!(
            "{}{}?start_date={}&end_date={}&inn={}",
            self.settings.url,
            BILLING_COUNT_PATH,
            start.format(BILLING_DATE_FORMAT),
            end.format(BILLING_DATE_FORMAT),
            self.settings.inn
        );
        let mut relogged = false;
        loop {
            let token = self.token().await?;
            let response = self
                .http
                .get(&url)
                .header(
                    reqwest::header::AUTHORIZATION,
                    facts::billing_authorization(token.expose()),
                )
                .send()
                .await
                .map_err(transport_failure)?;
            match read(response, self.clock.now()).await {
                Err(Failure::Status { code, .. })
                    if code == facts::BILLING_EXPIRED_TOKEN_STATUS && !relogged =>
                {
                    tracing::info!("billing: token refused; logging in again");
                    self.forget(&token).await;
                    relogged = true;
                }
                Err(e) => return Err(e),
                Ok(body) => {
                    self.counters.checks.fetch_add(1, Ordering::Relaxed);
                    let reply: BillingCountReply = serde_json::from_str(&body)
                        .map_err(|e| Failure::Protocol(format!("orders count reply: {e}")))?;
                    return Ok(BillingCount {
                        orders: reply.data.total_orders,
                        amount_tiyin: facts::billing_amount_tiyin(reply.data.total_amount),
                    });
                }
            }
        }
    }

    /// Stop the background checks (a stored delayed check is taken up by
    /// [`resume`] at the next start).
    pub fn stop(&self) {
        for t in self.tasks.lock().expect("billing tasks lock").drain(..) {
            t.abort();
        }
    }

    fn track(&self, task: &tokio::task::JoinHandle<()>) {
        let mut tasks = self.tasks.lock().expect("billing tasks lock");
        tasks.retain(|t| !t.is_finished());
        tasks.push(task.abort_handle());
    }

    async fn token(&self) -> Result<Secret, Failure> {
        let mut token = self.token.lock().await;
        let now = self.clock.now();
        if token.is_none()
            && let Ok(Some((value, Some(rotate_ms)))) = self.journal.secret(BILLING_TOKEN).await
            && let Some(rotate_at) = DateTime::from_timestamp_millis(rotate_ms)
        {
            *token = Some(Token {
                value: Secret::new(value),
                rotate_at,
            });
        }
        if let Some(t) = token.as_ref()
            && t.rotate_at > now
        {
            return Ok(t.value.clone());
        }
        let response = self
            .http
            .post(format!("{}{}", self.settings.url, BILLING_LOGIN_PATH))
            .json(&BillingLogin {
                username: self.settings.username.clone(),
                password: self.settings.password.expose().to_string(),
            })
            .send()
            .await
            .map_err(transport_failure)?;
        let body = read(response, now).await?;
        let reply: BillingToken = serde_json::from_str(&body)
            .map_err(|_| Failure::Protocol("login reply has no token".into()))?;
        self.counters.logins.fetch_add(1, Ordering::Relaxed);
        tracing::info!("billing: logged in");
        let rotate_at = now
            + chrono::Duration::from_std(self.settings.token_rotation)
                .unwrap_or(chrono::Duration::hours(1));
        // Kept across restarts; a failure to store it only costs a login.
        let _ = self
            .journal
            .save_secret(
                BILLING_TOKEN,
                Some(reply.token.clone()),
                Some(rotate_at.timestamp_millis()),
            )
            .await;
        let value = Secret::new(reply.token);
        *token = Some(Token {
            value: value.clone(),
            rotate_at,
        });
        Ok(value)
    }

    async fn forget(&self, refused: &Secret) {
        let mut token = self.token.lock().await;
        if token.as_ref().is_some_and(|t| &t.value == refused) {
            *token = None;
            let _ = self.journal.save_secret(BILLING_TOKEN, None, None).await;
        }
    }

    /// The whole check for a period, the billing asked once (a 401 costs
    /// one login more): the journal's orders, the billing's count, the
    /// outcome — `delayed` when the billing could not be asked, with the
    /// failure that says whether asking again may help.
    pub async fn check(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        trigger: Trigger,
    ) -> (Reconciliation, Option<Failure>) {
        let (from, to) = (
            start.format(JOURNAL_TIME_FORMAT).to_string(),
            end.format(JOURNAL_TIME_FORMAT).to_string(),
        );
        let journal = self
            .journal
            .fiscalbox_sales_totals(
                from.clone(),
                to.clone(),
                facts::UNKNOWN_RECEIPT_TIME,
                COUNTED_KINDS,
            )
            .await;
        let mut base = self.pending(start, end, trigger);
        base.attempts = 1;
        base.journal = match journal {
            Ok((orders, amount)) => BillingCount {
                orders,
                amount_tiyin: facts::tiyin(crate::domain::Money(amount)),
            },
            Err(e) => {
                base.outcome = Outcome::Delayed {
                    reason: format!("journal unreadable: {e}"),
                };
                return (base, None);
            }
        };
        match self.count(start, end).await {
            Ok(count) => {
                base.billing = Some(count);
                let (dn, da) = (
                    base.journal.orders - count.orders,
                    base.journal.amount_tiyin - count.amount_tiyin,
                );
                // Only the receipts that may explain the difference are
                // read, bounded.
                let range = match dn {
                    1 => Some((da, da)),
                    2 => Some((1, da - 1)),
                    _ => None,
                };
                let candidates = match range {
                    Some((min, max)) if (dn, da) != (0, 0) && min <= max => self
                        .journal
                        .fiscalbox_sales_between(
                            from,
                            to,
                            facts::UNKNOWN_RECEIPT_TIME,
                            COUNTED_KINDS,
                            min,
                            max,
                            EXPLAIN_PAIRS_UP_TO + 1,
                        )
                        .await
                        .map(|sales| journal_orders(&sales, start, end))
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                base.outcome = reconcile_counted(base.journal, count, &candidates);
                (base, None)
            }
            Err(e) => {
                tracing::warn!(error = %e.describe(), "billing check delayed");
                base.outcome = Outcome::Delayed {
                    reason: format!(
                        "billing unreachable ({}); the check is retried, sales go on",
                        e.describe()
                    ),
                };
                (base, Some(e))
            }
        }
    }

    /// A check not asked yet: `delayed`, 0 attempts.
    fn pending(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        trigger: Trigger,
    ) -> Reconciliation {
        Reconciliation {
            id: None,
            start: start.format(BILLING_DATE_FORMAT).to_string(),
            end: end.format(BILLING_DATE_FORMAT).to_string(),
            trigger,
            journal: BillingCount {
                orders: 0,
                amount_tiyin: 0,
            },
            billing: None,
            outcome: Outcome::Delayed {
                reason: "the billing is being asked".into(),
            },
            attempts: 0,
            checked_at: self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }

    /// The pending row of a check not stored yet (`delayed`, 0 attempts):
    /// the Z report stores it with the shift's close, then [`Self::ask`]s.
    pub fn pending_check(
        &self,
        start: NaiveDateTime,
        end: NaiveDateTime,
        trigger: Trigger,
    ) -> Reconciliation {
        self.pending(start, end, trigger)
    }

    /// Ask the billing for a stored check in the background until it
    /// settles ([`spawn_retries`]).
    pub fn ask(self: &Arc<Self>, r: Reconciliation) {
        spawn_retries(self.clone(), r, std::time::Duration::ZERO, None);
    }

    /// Check a period and answer within [`ANSWER_WITHIN`]: the check is
    /// stored first, asked in the background, and its first result
    /// returned — or, when the billing takes longer, the stored `delayed`
    /// row (its result replaces it later).
    ///
    /// A check of the same period and trigger still delayed is joined, not
    /// repeated: while it is being asked its stored row is the answer;
    /// otherwise it is asked again now (one row, one task however often a
    /// technician runs `fiscald billing check` during an outage).
    pub async fn check_and_store(
        self: &Arc<Self>,
        start: NaiveDateTime,
        end: NaiveDateTime,
        trigger: Trigger,
    ) -> Reconciliation {
        let joining = self.on_demand.lock().await;
        let pending = self.pending(start, end, trigger);
        let stored = self
            .journal
            .delayed_billing_check_of(pending.start.clone(), pending.end.clone(), trigger.as_str())
            .await
            .ok()
            .flatten()
            .and_then(Reconciliation::from_row);
        let r = match stored {
            Some(r) if r.id.is_some_and(|id| self.is_asking(id)) => {
                return Reconciliation {
                    outcome: Outcome::Delayed {
                        reason: format!(
                            "this period is already being asked (stored check #{}); it shows the result",
                            r.id.unwrap_or(0)
                        ),
                    },
                    ..r
                };
            }
            Some(r) => r,
            None => store(&self.journal, pending).await,
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn_retries(self.clone(), r.clone(), std::time::Duration::ZERO, Some(tx));
        drop(joining);
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(first)) => first,
            _ => Reconciliation {
                outcome: Outcome::Delayed {
                    reason: format!(
                        "the billing has not answered within {} s; it is asked again in the background and the stored check #{} shows the result",
                        ANSWER_WITHIN.as_secs(),
                        r.id.unwrap_or(0)
                    ),
                },
                ..r
            },
        }
    }

    /// Whether the stored check `id` is being asked by a task now.
    pub fn is_asking(&self, id: i64) -> bool {
        self.in_flight
            .lock()
            .expect("billing in-flight lock")
            .contains(&id)
    }

    /// How many stored checks are being asked now (one task each).
    pub fn asking(&self) -> usize {
        self.in_flight.lock().expect("billing in-flight lock").len()
    }

    /// After an ask: when to ask again (a delayed result), else the result
    /// as it stays — a refused one says why and how to ask by hand.
    fn next_step(
        &self,
        mut r: Reconciliation,
        failure: Option<&Failure>,
    ) -> (Reconciliation, Option<std::time::Duration>) {
        if !r.is_delayed() {
            return (r, None);
        }
        match ask_again(&self.policy, failure, r.attempts, rand_jitter()) {
            Some(after) => (r, Some(after)),
            None => {
                r.outcome = refused(&r, failure);
                (r, None)
            }
        }
    }
}

/// The longest period an on-demand check takes (the journal's side of a
/// check reads the period's sales through an index; a quarter bounds it).
pub const MAX_PERIOD_DAYS: i64 = 92;

/// How far past the till's clock a period may end (clocks of the
/// technician's machine and the till differ a little).
pub const FUTURE_TOLERANCE: chrono::Duration = chrono::Duration::minutes(5);

/// A period a person asked for that fiscald does not check: the query
/// field, the rule, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeriodRefused {
    pub field: &'static str,
    pub rule: &'static str,
    pub message: String,
}

/// The on-demand period to check, from the asked `from`/`to` (till-local)
/// and the till's clock `now`: `to` not before `from`; not later than now
/// (+ [`FUTURE_TOLERANCE`]) — except that a `to` given as a date (`to_is_day`)
/// may be today (the whole day: the billing has counted it up to now, and
/// a check repeated during the day is the same period, so it joins the
/// first); at most [`MAX_PERIOD_DAYS`] long. Pure.
pub fn on_demand_period(
    start: NaiveDateTime,
    end: NaiveDateTime,
    to_is_day: bool,
    now: NaiveDateTime,
) -> Result<(NaiveDateTime, NaiveDateTime), PeriodRefused> {
    if end > now + FUTURE_TOLERANCE && !(to_is_day && end.date() == now.date()) {
        return Err(PeriodRefused {
            field: "to",
            rule: "not_in_future",
            message: format!(
                "to must not be later than now ({}, the till's clock): the billing cannot have counted a future period",
                now.format(BILLING_DATE_FORMAT)
            ),
        });
    }
    if end < start {
        return Err(PeriodRefused {
            field: "to",
            rule: "after_from",
            message: "to must not be before from".into(),
        });
    }
    if end - start > chrono::Duration::days(MAX_PERIOD_DAYS) {
        return Err(PeriodRefused {
            field: "from",
            rule: "max_period",
            message: format!(
                "from and to must be at most {MAX_PERIOD_DAYS} days apart: check a long time in several periods"
            ),
        });
    }
    Ok((start, end))
}

/// The whole bound of `POST /v1/billing/check`: storing the check, asking
/// the billing and answering — shorter than `fiscald billing check`'s own
/// wait, so the daemon always answers before the command gives up.
pub const HANDLER_WITHIN: std::time::Duration = std::time::Duration::from_secs(20);

/// How long `POST /v1/billing/check` (and so `fiscald billing check`)
/// waits for the billing's answer before it answers with the stored
/// `delayed` check. One ask can take up to four requests (login, count,
/// login again after a 401, count), each bounded by the configured request
/// timeout; the check goes on in the background past this.
/// Within [`HANDLER_WITHIN`], which also bounds the store before it.
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(15);

/// The fiscal attributes' time format in the journal (chrono's
/// `NaiveDateTime` serialization, whole seconds from the box).
const JOURNAL_TIME_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Whether (and after how long) a delayed check is asked again after
/// `asked` asks, like the cloud sync: a transient failure (timeout, 5xx,
/// a refused connection, an unreadable reply) always, with capped
/// exponential back-off or the billing's `Retry-After` (never shorter than
/// the back-off for that ask); only the billing
/// refusing the request itself (400, 422) stops it. `failure` is `None`
/// when the journal could not be read (asked again too). Pure.
pub fn ask_again(
    policy: &RetryPolicy,
    failure: Option<&Failure>,
    asked: u32,
    jitter: f64,
) -> Option<std::time::Duration> {
    let backoff = policy.backoff(asked.max(1), jitter);
    // The billing's own statuses (facts) before the cloud sync's shared
    // policy: a wrong login refuses, an expired token re-authenticates.
    let decision = failure.map(|f| match f {
        Failure::Status { code, message, .. } if *code == facts::BILLING_BAD_LOGIN_STATUS => {
            Decision::Reject(message.clone())
        }
        Failure::Status { code, .. } if *code == facts::BILLING_EXPIRED_TOKEN_STATUS => {
            Decision::Reauthenticate
        }
        f => policy.decide(f, asked.max(1), jitter),
    });
    match decision {
        // Never sooner than the back-off: a `Retry-After: 0` (or a date
        // already past) would otherwise make a loop without a wait — an
        // HTTP round and a journal commit each turn.
        Some(Decision::Retry { after }) => Some(after.max(backoff)),
        // A 401 right after a fresh login, or a 409: not the request's
        // fault; asked again later.
        Some(Decision::Reauthenticate | Decision::Conflict(_)) | None => Some(backoff),
        Some(Decision::Reject(_)) => None,
    }
}

/// The outcome of a check the billing refused.
fn refused(r: &Reconciliation, failure: Option<&Failure>) -> Outcome {
    Outcome::Refused {
        reason: format!(
            "the billing refused the request ({}); fix the cause (login, INN) and run `fiscald billing check --from {} --to {}`",
            failure
                .map(Failure::describe)
                .unwrap_or_else(|| "no reason given".into()),
            r.start,
            r.end
        ),
    }
}

fn log(r: &Reconciliation) {
    let trigger = r.trigger.as_str();
    match &r.outcome {
        Outcome::Equal => tracing::info!(trigger, "billing reconciliation: equal"),
        Outcome::Different {
            orders_difference, ..
        } => tracing::warn!(
            trigger,
            orders_difference,
            "billing reconciliation: the billing's count differs from the journal"
        ),
        Outcome::Delayed { .. } => {
            tracing::info!(
                trigger,
                attempts = r.attempts,
                "billing reconciliation: delayed"
            )
        }
        Outcome::Refused { reason } => {
            tracing::warn!(trigger, reason, "billing reconciliation: refused")
        }
    }
}

/// Ask the billing for a stored check, first after `after`, then per the
/// retry policy until it answers (or refuses the request); every result
/// replaces the check's stored row, so the stored result becomes `equal`
/// or `different` once the billing is back. `first` receives the first
/// stored result. A check already being asked is not asked twice; when one
/// settles, stored delayed checks nobody asks yet are taken up
/// ([`take_up_delayed`]).
pub fn spawn_retries(
    client: Arc<BillingClient>,
    mut r: Reconciliation,
    after: std::time::Duration,
    mut first: Option<tokio::sync::oneshot::Sender<Reconciliation>>,
) -> Option<tokio::task::JoinHandle<()>> {
    if let Some(id) = r.id
        && !client
            .in_flight
            .lock()
            .expect("billing in-flight lock")
            .insert(id)
    {
        return None;
    }
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            let mut after = Some(after);
            // An on-demand check's own task asks a few times; still
            // delayed, it is left to the take-up (bounded, Z checks first).
            let mut asks_left = match r.trigger {
                Trigger::OnDemand => ON_DEMAND_ASKS,
                Trigger::ZReport => u32::MAX,
            };
            while let Some(wait) = after {
                if asks_left == 0 {
                    break;
                }
                asks_left -= 1;
                tokio::time::sleep(wait).await;
                let Some((start, end)) = r.period() else {
                    // Never asked again (and so never taken up again).
                    r.outcome = Outcome::Refused {
                        reason: format!(
                            "the stored period {:?} – {:?} is unreadable; run `fiscald billing check` for it",
                            r.start, r.end
                        ),
                    };
                    r = store(&client.journal, r).await;
                    log(&r);
                    break;
                };
                let (mut next, failure) = client.check(start, end, r.trigger).await;
                next.id = r.id;
                next.attempts = r.attempts.saturating_add(1);
                let (next, again) = client.next_step(next, failure.as_ref());
                let asked = r.id;
                let written;
                (r, written) = store_settled(&client.journal, next).await;
                if asked != r.id {
                    let mut in_flight = client.in_flight.lock().expect("billing in-flight lock");
                    if let Some(old) = asked {
                        in_flight.remove(&old);
                    }
                    if let Some(id) = r.id {
                        in_flight.insert(id);
                    }
                }
                if written {
                    log(&r);
                }
                if let Some(tx) = first.take() {
                    let _ = tx.send(r.clone());
                }
                // Settled by another ask meanwhile: its result stands.
                after = if written { again } else { None };
            }
            if let Some(id) = r.id {
                client
                    .in_flight
                    .lock()
                    .expect("billing in-flight lock")
                    .remove(&id);
            }
            take_up_delayed(&client, false).await;
        }
    });
    client.track(&task);
    Some(task)
}

/// How many times one task asks the billing for an on-demand check before
/// it leaves the check `delayed` for [`take_up_delayed`]: repeated checks
/// during an outage never pile up tasks that hold the take-up's room.
pub const ON_DEMAND_ASKS: u32 = 3;

/// How many stored delayed checks are asked at once when taken up (at a
/// start, and as others settle): a long outage leaves many, and each is
/// asked without end.
pub const TAKE_UP_AT_ONCE: usize = 16;

/// Take up stored delayed checks nobody is asking (however often they were
/// asked; oldest first) until [`TAKE_UP_AT_ONCE`] are in flight; refused
/// checks are not asked again. A check never asked yet and stored less
/// than a minute ago is left to the task that stored it (it is about to
/// ask), unless `never_asked` (at a start: a stopped daemon left them).
/// Returns how many were taken up.
pub async fn take_up_delayed(client: &Arc<BillingClient>, never_asked: bool) -> usize {
    let room = TAKE_UP_AT_ONCE.saturating_sub(
        client
            .in_flight
            .lock()
            .expect("billing in-flight lock")
            .len(),
    );
    if room == 0 {
        return 0;
    }
    let rows = match client
        .journal
        .delayed_billing_checks(TAKE_UP_AT_ONCE * 2)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "billing checks unreadable; delayed ones not taken up now");
            return 0;
        }
    };
    let mut n = 0;
    for r in rows
        .into_iter()
        .filter_map(Reconciliation::from_row)
        .filter(|r| {
            never_asked
                || r.attempts > 0
                || DateTime::parse_from_rfc3339(&r.checked_at).map_or(true, |at| {
                    client.clock.now() - at.with_timezone(&Utc) > chrono::Duration::minutes(1)
                })
        })
    {
        if n == room {
            break;
        }
        let (trigger, attempts) = (r.trigger.as_str(), r.attempts);
        // At a start at once; else after the back-off its asks have earned
        // (an on-demand check's task that gave up is not asked again at
        // once).
        let wait = if never_asked || attempts == 0 {
            std::time::Duration::ZERO
        } else {
            client.policy.backoff(attempts, rand_jitter())
        };
        if spawn_retries(client.clone(), r, wait, None).is_some() {
            tracing::info!(
                trigger,
                attempts,
                "billing reconciliation: taking up a delayed check"
            );
            n += 1;
        }
    }
    n
}

/// At start: take up the checks a stopped daemon left delayed
/// ([`take_up_delayed`]). Returns how many.
pub async fn resume(client: &Arc<BillingClient>) -> usize {
    take_up_delayed(client, true).await
}

fn rand_jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    (h.finish() % 1000) as f64 / 1000.0
}

/// The body of a 2xx reply, or the failure it means (the billing's words,
/// bounded; never a request header) with its `Retry-After` read like the
/// cloud sync reads it.
async fn read(response: reqwest::Response, now: DateTime<Utc>) -> Result<String, Failure> {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, now));
    let body = response.text().await.map_err(transport_failure)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::Status {
            code: status.as_u16(),
            retry_after,
            message: body.chars().take(200).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, seq: u64, amount: i64) -> JournalOrder {
        JournalOrder {
            receipt_id: id.into(),
            receipt_seq: seq,
            date_time: NaiveDateTime::parse_from_str("2026-11-29 10:00:00", "%Y-%m-%d %H:%M:%S")
                .unwrap(),
            amount_tiyin: amount,
            fiscal_time_unknown: false,
        }
    }

    #[test]
    fn equal_when_count_and_amount_agree() {
        let o = [order("a", 1, 50_000), order("b", 2, 70_000)];
        assert_eq!(
            reconcile(
                &o,
                BillingCount {
                    orders: 2,
                    amount_tiyin: 120_000
                }
            ),
            Outcome::Equal
        );
    }

    #[test]
    fn a_missing_order_is_named_by_its_amount() {
        let o = [order("a", 1, 50_000), order("b", 2, 70_000)];
        let out = reconcile(
            &o,
            BillingCount {
                orders: 1,
                amount_tiyin: 50_000,
            },
        );
        assert_eq!(
            out,
            Outcome::Different {
                orders_difference: 1,
                amount_difference_tiyin: 70_000,
                explained_by: vec![o[1].clone()],
                explained_more: 0,
            }
        );
        // Two candidates of the same amount: both named.
        let o = [order("a", 1, 50_000), order("b", 2, 50_000)];
        let Outcome::Different { explained_by, .. } = reconcile(
            &o,
            BillingCount {
                orders: 1,
                amount_tiyin: 50_000,
            },
        ) else {
            panic!()
        };
        assert_eq!(explained_by.len(), 2);
        // An amount-only difference names nobody.
        let Outcome::Different { explained_by, .. } = reconcile(
            &o,
            BillingCount {
                orders: 2,
                amount_tiyin: 90_000,
            },
        ) else {
            panic!()
        };
        assert!(explained_by.is_empty());
    }

    #[test]
    fn a_delayed_check_is_asked_again_without_end_and_only_a_refusal_stops_it() {
        let policy = RetryPolicy {
            base: std::time::Duration::from_millis(100),
            cap: std::time::Duration::from_secs(300),
            ..RetryPolicy::default()
        };
        let ms = std::time::Duration::from_millis;
        let down = Failure::Connect("refused".into());
        assert_eq!(ask_again(&policy, Some(&down), 1, 0.0), Some(ms(50)));
        assert_eq!(ask_again(&policy, Some(&down), 2, 0.0), Some(ms(100)));
        // However often: capped, never given up.
        for asked in [20, 1_000, u32::MAX] {
            assert_eq!(
                ask_again(&policy, Some(&down), asked, 0.0),
                Some(std::time::Duration::from_secs(150)),
                "{asked}"
            );
            assert_eq!(
                ask_again(&policy, Some(&down), asked, 0.999).map(|d| d <= policy.cap),
                Some(true)
            );
        }
        for transient in [
            Failure::Timeout("read".into()),
            Failure::Transport("reset".into()),
            Failure::Protocol("html".into()),
            Failure::Status {
                code: 500,
                retry_after: None,
                message: String::new(),
            },
            Failure::Status {
                code: 401,
                retry_after: None,
                message: "Invalid token.".into(),
            },
        ] {
            assert!(
                ask_again(&policy, Some(&transient), 50, 0.5).is_some(),
                "{transient:?}"
            );
        }
        // The billing refused the request itself: asking again cannot help.
        for code in [400, 422] {
            let refused = Failure::Status {
                code,
                retry_after: None,
                message: "bad inn".into(),
            };
            assert_eq!(ask_again(&policy, Some(&refused), 1, 0.0), None, "{code}");
        }
        // An unreadable journal backs off.
        assert_eq!(ask_again(&policy, None, 1, 0.0), Some(ms(50)));
    }

    /// A client of a billing at `url` (retry base `base`) over a fresh
    /// journal in `dir`.
    fn client_at(
        url: String,
        base: std::time::Duration,
        dir: &std::path::Path,
    ) -> Arc<BillingClient> {
        let settings = crate::config::load_str(crate::config::DEMO_CONFIG).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let journal = Journal::open(
            crate::journal::Options::from_settings(&settings, dir.join("j.sqlite")),
            clock.clone(),
        )
        .unwrap();
        Arc::new(
            BillingClient::new(
                BillingSettings {
                    url,
                    username: "shop".into(),
                    password: Secret::new("pw-secret"),
                    inn: "306429662".into(),
                    token_rotation: std::time::Duration::from_secs(60),
                    connect_timeout: std::time::Duration::from_millis(500),
                    request_timeout: std::time::Duration::from_millis(1500),
                    retry_base: base,
                    retry_cap: std::time::Duration::from_secs(300),
                },
                journal,
                clock,
            )
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn repeated_on_demand_checks_in_an_outage_make_one_row_and_one_task() {
        use axum::response::IntoResponse;
        let asked = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new().fallback({
            let asked = asked.clone();
            move || async move {
                asked.fetch_add(1, Ordering::Relaxed);
                (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        // A long back-off: the first task stays in flight, waiting.
        let client = client_at(url, std::time::Duration::from_secs(60), dir.path());
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let (start, end) = (
            day.and_hms_opt(0, 0, 0).unwrap(),
            day.and_hms_opt(23, 59, 59).unwrap(),
        );
        let mut ids = std::collections::HashSet::new();
        for _ in 0..5 {
            let r = client.check_and_store(start, end, Trigger::OnDemand).await;
            assert!(r.is_delayed(), "{r:?}");
            ids.insert(r.id.unwrap());
        }
        // Five at once too.
        let mut at_once = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let client = client.clone();
            at_once.spawn(async move {
                client
                    .check_and_store(start, end, Trigger::OnDemand)
                    .await
                    .id
                    .unwrap()
            });
        }
        while let Some(id) = at_once.join_next().await {
            ids.insert(id.unwrap());
        }
        assert_eq!(ids.len(), 1, "one row: {ids:?}");
        assert_eq!(client.asking(), 1, "one task");
        assert_eq!(asked.load(Ordering::Relaxed), 1, "the billing asked once");
        assert_eq!(
            client
                .journal
                .delayed_billing_checks(100)
                .await
                .unwrap()
                .len(),
            1
        );
        // Another period is its own check.
        let r = client
            .check_and_store(start, end - chrono::Duration::hours(1), Trigger::OnDemand)
            .await;
        assert!(!ids.contains(&r.id.unwrap()));
        assert_eq!(client.asking(), 2);
        client.stop();
        server.abort();
        let journal = client.journal.clone();
        tokio::task::spawn_blocking(move || journal.close())
            .await
            .unwrap();
    }

    #[test]
    fn an_on_demand_period_is_not_in_the_future_nor_longer_than_a_quarter() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, BILLING_DATE_FORMAT).unwrap();
        let now = t("2026-11-29T15:00:00");
        // Today as a date: the whole day.
        assert_eq!(
            on_demand_period(
                t("2026-11-29T00:00:00"),
                t("2026-11-29T23:59:59"),
                true,
                now
            ),
            Ok((t("2026-11-29T00:00:00"), t("2026-11-29T23:59:59")))
        );
        // A little clock difference is taken as asked.
        assert_eq!(
            on_demand_period(
                t("2026-11-29T00:00:00"),
                t("2026-11-29T15:04:00"),
                false,
                now
            )
            .unwrap()
            .1,
            t("2026-11-29T15:04:00")
        );
        for (end, is_day) in [
            ("2026-11-29T23:59:59", false),
            ("2026-11-30T23:59:59", true),
            ("2027-01-01T00:00:00", false),
        ] {
            let e = on_demand_period(t("2026-11-29T00:00:00"), t(end), is_day, now).unwrap_err();
            assert_eq!((e.field, e.rule), ("to", "not_in_future"), "{end}");
        }
        let e = on_demand_period(
            t("2026-11-29T10:00:00"),
            t("2026-11-29T09:00:00"),
            false,
            now,
        )
        .unwrap_err();
        assert_eq!((e.field, e.rule), ("to", "after_from"));
        let e = on_demand_period(
            t("2026-08-01T00:00:00"),
            t("2026-11-28T23:59:59"),
            false,
            now,
        )
        .unwrap_err();
        assert_eq!((e.field, e.rule), ("from", "max_period"));
        assert!(
            on_demand_period(
                t("2026-09-01T00:00:00"),
                t("2026-11-28T23:59:59"),
                false,
                now
            )
            .is_ok()
        );
        // The daemon answers before the command gives up.
        assert!(ANSWER_WITHIN < HANDLER_WITHIN);
        assert!(HANDLER_WITHIN < crate::technician::BILLING_CHECK_TIMEOUT);
    }

    #[test]
    fn a_zero_or_past_retry_after_never_makes_a_loop_without_a_wait() {
        let policy = RetryPolicy {
            base: std::time::Duration::from_secs(2),
            cap: std::time::Duration::from_secs(300),
            ..RetryPolicy::default()
        };
        let now = Utc::now();
        let past = (now - chrono::Duration::hours(1)).to_rfc2822();
        for header in ["0", past.as_str()] {
            let after = parse_retry_after(header, now);
            assert_eq!(after, Some(std::time::Duration::ZERO), "{header}");
            let busy = Failure::Status {
                code: 503,
                retry_after: after,
                message: "busy".into(),
            };
            for asked in [1, 2, 5] {
                let wait = ask_again(&policy, Some(&busy), asked, 0.0).unwrap();
                assert!(
                    wait >= policy.backoff(asked, 0.0) && wait >= policy.base / 2,
                    "{header} after {asked}: {wait:?}"
                );
            }
        }
    }

    #[test]
    fn the_billings_statuses_are_the_facts() {
        let policy = RetryPolicy::default();
        let status = |code| Failure::Status {
            code,
            retry_after: None,
            message: "m".into(),
        };
        assert_eq!(
            ask_again(
                &policy,
                Some(&status(facts::BILLING_BAD_LOGIN_STATUS)),
                1,
                0.0
            ),
            None,
            "a wrong login is refused"
        );
        assert!(
            ask_again(
                &policy,
                Some(&status(facts::BILLING_EXPIRED_TOKEN_STATUS)),
                1,
                0.0
            )
            .is_some()
        );
    }

    #[tokio::test]
    async fn the_billings_retry_after_is_read_by_the_client_and_honoured() {
        use axum::response::IntoResponse;
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "7")],
                "busy",
            )
                .into_response()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::load_str(crate::config::DEMO_CONFIG).unwrap();
        let clock: Arc<dyn Clock> = Arc::new(crate::clock::SystemClock);
        let journal = Journal::open(
            crate::journal::Options::from_settings(&settings, dir.path().join("j.sqlite")),
            clock.clone(),
        )
        .unwrap();
        let client = BillingClient::new(
            BillingSettings {
                url,
                username: "shop".into(),
                password: Secret::new("pw-secret"),
                inn: "306429662".into(),
                token_rotation: std::time::Duration::from_secs(60),
                connect_timeout: std::time::Duration::from_millis(500),
                request_timeout: std::time::Duration::from_millis(1500),
                retry_base: std::time::Duration::from_millis(100),
                retry_cap: std::time::Duration::from_secs(300),
            },
            journal.clone(),
            clock,
        )
        .unwrap();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        let (r, failure) = client
            .check(
                day.and_hms_opt(0, 0, 0).unwrap(),
                day.and_hms_opt(23, 59, 59).unwrap(),
                Trigger::OnDemand,
            )
            .await;
        let failure = failure.expect("the login got a 503");
        assert!(
            matches!(
                failure,
                Failure::Status {
                    code: 503,
                    retry_after: Some(d),
                    ..
                } if d == std::time::Duration::from_secs(7)
            ),
            "{failure:?}"
        );
        let (r, next) = client.next_step(r, Some(&failure));
        assert!(r.is_delayed(), "{r:?}");
        assert_eq!(next, Some(std::time::Duration::from_secs(7)));
        server.abort();
        tokio::task::spawn_blocking(move || journal.close())
            .await
            .unwrap();
    }

    #[test]
    fn two_missing_orders_are_named_by_the_pairs_that_sum_to_the_difference() {
        let o = [
            order("a", 1, 10_000),
            order("b", 2, 20_000),
            order("c", 3, 30_000),
            order("d", 4, 45_000),
        ];
        // 50 000 = 20 000 + 30 000 only.
        let Outcome::Different {
            explained_by,
            explained_more,
            ..
        } = reconcile(
            &o,
            BillingCount {
                orders: 2,
                amount_tiyin: 55_000,
            },
        )
        else {
            panic!()
        };
        let ids: Vec<&str> = explained_by.iter().map(|o| o.receipt_id.as_str()).collect();
        assert_eq!(ids, ["b", "c"]);
        assert_eq!(explained_more, 0);
        // 40 000 = 10 000 + 30 000; also 20 000 + 20 000 needs two such.
        let o2 = [
            order("a", 1, 10_000),
            order("b", 2, 20_000),
            order("c", 3, 30_000),
            order("e", 5, 20_000),
        ];
        let Outcome::Different { explained_by, .. } = reconcile(
            &o2,
            BillingCount {
                orders: 2,
                amount_tiyin: 40_000,
            },
        ) else {
            panic!()
        };
        let ids: Vec<&str> = explained_by.iter().map(|o| o.receipt_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c", "e"]);
    }

    #[test]
    fn the_search_and_the_named_receipts_are_bounded() {
        // Many candidates of the missing amount: 20 named, the rest counted.
        let many: Vec<JournalOrder> = (0..500)
            .map(|i| order(&format!("r{i}"), i, 1_000))
            .collect();
        let Outcome::Different {
            explained_by,
            explained_more,
            ..
        } = reconcile(
            &many,
            BillingCount {
                orders: 499,
                amount_tiyin: 499_000,
            },
        )
        else {
            panic!()
        };
        assert_eq!(explained_by.len(), EXPLAIN_SHOWN);
        assert_eq!(explained_more, 500 - EXPLAIN_SHOWN);
        // Two missing among more than EXPLAIN_PAIRS_UP_TO candidates: no
        // pair search (it would be 125 000 sums), the difference alone.
        let Outcome::Different {
            orders_difference,
            explained_by,
            explained_more,
            ..
        } = reconcile(
            &many,
            BillingCount {
                orders: 498,
                amount_tiyin: 498_000,
            },
        )
        else {
            panic!()
        };
        assert_eq!(orders_difference, 2);
        assert!(explained_by.is_empty());
        assert_eq!(explained_more, 0);
        // At the bound the pairs are searched.
        let bounded = &many[..EXPLAIN_PAIRS_UP_TO];
        let Outcome::Different {
            explained_by,
            explained_more,
            ..
        } = reconcile(
            bounded,
            BillingCount {
                orders: EXPLAIN_PAIRS_UP_TO as i64 - 2,
                amount_tiyin: (EXPLAIN_PAIRS_UP_TO as i64 - 2) * 1_000,
            },
        )
        else {
            panic!()
        };
        assert_eq!(explained_by.len() + explained_more, EXPLAIN_PAIRS_UP_TO);
    }

    #[test]
    fn a_shifts_period_prefers_the_boxs_own_times_and_is_always_given() {
        let t = |s: &str| NaiveDateTime::parse_from_str(s, BILLING_DATE_FORMAT).unwrap();
        let now = t("2026-11-29T21:00:00");
        let opened = Some(t("2026-11-29T07:59:00"));
        // The box's own times win over the journal's and the POS's.
        assert_eq!(
            shift_period(
                "2026-11-29 08:00:00",
                "2026-11-29 20:00:00",
                "2026-11-29 20:00:05",
                opened,
                now
            ),
            (t("2026-11-29T08:00:00"), t("2026-11-29T20:00:00"), vec![])
        );
        // No box times (its shift was already closed): the journal's
        // opening and the POS's time.
        assert_eq!(
            shift_period("", "", "2026-11-29 20:00:05", opened, now),
            (t("2026-11-29T07:59:00"), t("2026-11-29T20:00:05"), vec![])
        );
        // Nothing readable: the till's clock, the end's midnight — said.
        let (start, end, guessed) = shift_period("", "", "yesterday", None, now);
        assert_eq!((start, end), (t("2026-11-29T00:00:00"), now));
        assert_eq!(guessed.len(), 2);
    }

    #[test]
    fn journal_orders_are_the_periods_sales() {
        let sale = |id: &str, kind: &str, time: &str| FiscalboxSale {
            receipt_id: id.into(),
            kind: kind.into(),
            seq: 3,
            date_time: time.into(),
            total_minor: 1_500,
            fiscal_time_known: time != "2026-11-29T12:00:00",
        };
        let t = |s: &str| NaiveDateTime::parse_from_str(s, BILLING_DATE_FORMAT).unwrap();
        let got = journal_orders(
            &[
                sale("a", "sale", "2026-11-29T00:00:00"),
                sale("b", "sale_return", "2026-11-29T10:00:00"),
                sale("c", "sale", "2026-11-29T23:59:59"),
                sale("d", "sale", "2026-11-30T00:00:00"),
                sale("e", "sale", "garbage"),
                sale("f", "sale", "2026-11-29T12:00:00"),
            ],
            t("2026-11-29T00:00:00"),
            t("2026-11-29T23:59:59"),
        );
        let ids: Vec<&str> = got.iter().map(|o| o.receipt_id.as_str()).collect();
        assert_eq!(ids, ["a", "c", "f"]);
        // The journal's SQL counts the same kinds.
        assert_eq!(COUNTED_KINDS[0], ReceiptKind::Sale.code());
        assert!(facts::BILLING_COUNTS_REFUNDS || COUNTED_KINDS[1] == ReceiptKind::Sale.code());
        assert!(got[2].fiscal_time_unknown && !got[0].fiscal_time_unknown);
        assert_eq!(got[0].amount_tiyin, 1_500);
        assert_eq!(got[0].receipt_seq, 3);
    }

    #[test]
    fn a_reconciliation_survives_its_journal_row() {
        let o = [order("a", 1, 50_000), order("b", 2, 70_000)];
        let billing = BillingCount {
            orders: 1,
            amount_tiyin: 50_000,
        };
        for (outcome, billing) in [
            (Outcome::Equal, Some(totals(&o))),
            (reconcile(&o, billing), Some(billing)),
            (
                Outcome::Delayed {
                    reason: "billing unreachable".into(),
                },
                None,
            ),
        ] {
            let r = Reconciliation {
                id: Some(7),
                start: "2026-11-29T00:00:00".into(),
                end: "2026-11-29T23:59:59".into(),
                trigger: Trigger::ZReport,
                journal: totals(&o),
                billing,
                outcome,
                attempts: 2,
                checked_at: "2026-11-29T19:00:00Z".into(),
            };
            let row = r.to_row();
            assert_eq!(row.trigger, "z_report");
            assert_eq!(Reconciliation::from_row(row), Some(r.clone()));
            // The reply is the stored row's fields, flat.
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["result"], r.to_row().result.as_str());
            assert_eq!(v["id"], 7);
        }
        let mut row = Reconciliation::from_row(BillingCheckRow {
            id: Some(1),
            period_from: "a".into(),
            period_to: "b".into(),
            trigger: "z_report".into(),
            result: "equal".into(),
            journal_orders: 0,
            journal_amount: 0,
            billing_orders: Some(0),
            billing_amount: Some(0),
            outcome: "{\"result\":\"equal\"}".into(),
            attempts: 1,
            checked_at: "t".into(),
        })
        .unwrap()
        .to_row();
        row.trigger = "sometime".into();
        assert_eq!(Reconciliation::from_row(row), None, "an unknown trigger");
    }

    #[test]
    fn billing_amounts_are_sum_floats() {
        assert_eq!(facts::billing_amount_tiyin(700.0), 70_000);
        assert_eq!(facts::billing_amount_tiyin(0.1 + 0.2), 30);
        assert_eq!(facts::billing_amount(12_345), 123.45);
    }
}
