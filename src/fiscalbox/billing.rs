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
use crate::domain::ReceiptState;
use crate::domain::receipt::ReceiptKind;
use crate::journal::{BillingCheckRow, Journal, StoredReceipt};
use crate::sync::client::transport_failure;
use crate::sync::policy::{Decision, Failure, RetryPolicy};
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
    pub date_time: NaiveDateTime,
    pub amount_tiyin: i64,
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
        /// journal's extra ones); empty when no subset explains it.
        explained_by: Vec<JournalOrder>,
    },
    /// The billing could not be asked; the check is retried.
    Delayed {
        reason: String,
    },
}

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
pub async fn store(journal: &Journal, mut r: Reconciliation) -> Reconciliation {
    match journal.save_billing_check(r.to_row()).await {
        Ok(id) => r.id = Some(id),
        Err(e) => tracing::warn!(error = %e, "billing reconciliation not stored"),
    }
    r
}

/// The reconciliation stored last (what `/v1/status` and the page show).
pub async fn latest(journal: &Journal) -> Option<Reconciliation> {
    journal
        .latest_billing_check()
        .await
        .ok()
        .flatten()
        .and_then(Reconciliation::from_row)
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

/// The journal's fiscalized Uzbek sales whose fiscal time lies in
/// `[start, end]` (local time, both ends included).
pub fn journal_orders(
    receipts: &[StoredReceipt],
    start: NaiveDateTime,
    end: NaiveDateTime,
) -> Vec<JournalOrder> {
    receipts
        .iter()
        .filter(|r| r.state == ReceiptState::Fiscalized && r.receipt.uz.is_some())
        .filter(|r| {
            r.receipt.kind == ReceiptKind::Sale
                || (facts::BILLING_COUNTS_REFUNDS && r.receipt.kind == ReceiptKind::SaleReturn)
        })
        .filter_map(|r| {
            let f = r.fiscal.as_ref()?;
            (f.date_time >= start && f.date_time <= end).then(|| JournalOrder {
                receipt_id: r.id.clone(),
                receipt_seq: f.fiscal_document_number,
                date_time: f.date_time,
                amount_tiyin: facts::tiyin(r.receipt.total),
            })
        })
        .collect()
}

/// Compare the journal's orders with the billing's count. Pure.
pub fn reconcile(orders: &[JournalOrder], billing: BillingCount) -> Outcome {
    let journal = totals(orders);
    let dn = journal.orders - billing.orders;
    let da = journal.amount_tiyin - billing.amount_tiyin;
    if dn == 0 && da == 0 {
        return Outcome::Equal;
    }
    Outcome::Different {
        orders_difference: dn,
        amount_difference_tiyin: da,
        explained_by: explain(orders, dn, da),
    }
}

pub fn totals(orders: &[JournalOrder]) -> BillingCount {
    BillingCount {
        orders: orders.len() as i64,
        amount_tiyin: orders.iter().map(|o| o.amount_tiyin).sum(),
    }
}

/// The journal's receipts that account for `dn` orders and `da` tiyin more
/// than the billing saw: for one or two missing orders, the receipts whose
/// amounts sum to the difference — every candidate when several would.
fn explain(orders: &[JournalOrder], dn: i64, da: i64) -> Vec<JournalOrder> {
    match dn {
        1 => orders
            .iter()
            .filter(|o| o.amount_tiyin == da)
            .cloned()
            .collect(),
        2 => {
            let mut out: Vec<JournalOrder> = Vec::new();
            for (i, a) in orders.iter().enumerate() {
                for b in &orders[i + 1..] {
                    if a.amount_tiyin + b.amount_tiyin == da {
                        for o in [a, b] {
                            if !out.contains(o) {
                                out.push(o.clone());
                            }
                        }
                    }
                }
            }
            out
        }
        _ => Vec::new(),
    }
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
            match read(response).await {
                Err(Failure::Status { code: 401, .. }) if !relogged => {
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
        let body = read(response).await?;
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
        let orders = match self.journal.stats().await {
            Ok(stats) => self
                .journal
                .numbered(0, stats.last_number)
                .await
                .map(|r| journal_orders(&r, start, end)),
            Err(e) => Err(e),
        };
        let mut base = Reconciliation {
            id: None,
            start: start.format(BILLING_DATE_FORMAT).to_string(),
            end: end.format(BILLING_DATE_FORMAT).to_string(),
            trigger,
            journal: BillingCount {
                orders: 0,
                amount_tiyin: 0,
            },
            billing: None,
            outcome: Outcome::Equal,
            attempts: 1,
            checked_at: self
                .clock
                .now()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        let orders = match orders {
            Ok(o) => o,
            Err(e) => {
                base.outcome = Outcome::Delayed {
                    reason: format!("journal unreadable: {e}"),
                };
                return (base, None);
            }
        };
        base.journal = totals(&orders);
        match self.count(start, end).await {
            Ok(count) => {
                base.billing = Some(count);
                base.outcome = reconcile(&orders, count);
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

    /// Check a period now and store the result; a delayed result is asked
    /// again in the background ([`spawn_retries`]).
    pub async fn check_and_store(
        self: &Arc<Self>,
        start: NaiveDateTime,
        end: NaiveDateTime,
        trigger: Trigger,
    ) -> Reconciliation {
        let (r, failure) = self.check(start, end, trigger).await;
        let (r, next) = self.next_step(r, failure.as_ref());
        let r = store(&self.journal, r).await;
        log(&r);
        if let Some(after) = next {
            spawn_retries(self.clone(), r.clone(), after);
        }
        r
    }

    /// After an ask: when to ask again (a delayed result with asks to
    /// spare), else the result as it stays — a delayed one then says how
    /// to ask by hand.
    fn next_step(
        &self,
        mut r: Reconciliation,
        failure: Option<&Failure>,
    ) -> (Reconciliation, Option<std::time::Duration>) {
        if !r.is_delayed() {
            return (r, None);
        }
        let limit = self.settings.attempts.max(1);
        match ask_again(&self.policy, failure, r.attempts, limit, rand_jitter()) {
            Some(after) => (r, Some(after)),
            None => {
                r.outcome = gave_up(&r, failure);
                (r, None)
            }
        }
    }
}

/// Whether (and after how long) a delayed check is asked again, after
/// `asked` asks of at most `limit`: per the retry policy, never after the
/// billing refused the request itself (400, 422, 409: asking again cannot
/// help). `failure` is `None` when the journal could not be read. Pure.
pub fn ask_again(
    policy: &RetryPolicy,
    failure: Option<&Failure>,
    asked: u32,
    limit: u32,
    jitter: f64,
) -> Option<std::time::Duration> {
    if asked >= limit {
        return None;
    }
    match failure.map(|f| policy.decide(f, asked, jitter)) {
        Some(Decision::Retry { after }) => Some(after),
        Some(Decision::Reauthenticate) => Some(policy.base),
        Some(Decision::Reject(_) | Decision::Conflict(_)) => None,
        None => Some(policy.backoff(asked, jitter)),
    }
}

/// The outcome of a delayed check nobody will ask again for.
fn gave_up(r: &Reconciliation, failure: Option<&Failure>) -> Outcome {
    Outcome::Delayed {
        reason: format!(
            "billing not asked again after {} attempt(s) ({}); run `fiscald billing check --from {} --to {}` when it is back",
            r.attempts,
            failure
                .map(Failure::describe)
                .unwrap_or_else(|| "journal unreadable".into()),
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
    }
}

/// Check a period in the background (after a Z report): the result is
/// stored; a delayed one is asked again per the retry policy. Never
/// touches sales.
pub fn spawn_check(
    client: Arc<BillingClient>,
    start: NaiveDateTime,
    end: NaiveDateTime,
    trigger: Trigger,
) -> tokio::task::JoinHandle<()> {
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            client.check_and_store(start, end, trigger).await;
        }
    });
    client.track(&task);
    task
}

/// Ask the billing again for a stored delayed check, first after `after`,
/// then per the retry policy until it answers or the configured attempts
/// are spent; every result replaces the check's stored row, so the stored
/// result becomes `equal` or `different` once the billing is back.
pub fn spawn_retries(
    client: Arc<BillingClient>,
    mut r: Reconciliation,
    after: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            let mut after = Some(after);
            while let Some(wait) = after {
                tokio::time::sleep(wait).await;
                let Some((start, end)) = r.period() else {
                    return;
                };
                let (mut next, failure) = client.check(start, end, r.trigger).await;
                next.id = r.id;
                next.attempts = r.attempts + 1;
                let (next, again) = client.next_step(next, failure.as_ref());
                r = store(&client.journal, next).await;
                log(&r);
                after = again;
            }
        }
    });
    client.track(&task);
    task
}

/// At start: take up the checks a stopped daemon left delayed with
/// attempts to spare (at most 16). Returns how many.
pub async fn resume(client: &Arc<BillingClient>) -> usize {
    let rows = client
        .journal
        .delayed_billing_checks(client.settings.attempts.max(1), 16)
        .await
        .unwrap_or_default();
    let mut n = 0;
    for r in rows.into_iter().filter_map(Reconciliation::from_row) {
        tracing::info!(
            trigger = r.trigger.as_str(),
            "billing reconciliation: taking up a delayed check"
        );
        spawn_retries(client.clone(), r, client.policy.base);
        n += 1;
    }
    n
}

fn rand_jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    (h.finish() % 1000) as f64 / 1000.0
}

/// The body of a 2xx reply, or the failure it means (the billing's words,
/// bounded; never a request header).
async fn read(response: reqwest::Response) -> Result<String, Failure> {
    let status = response.status();
    let body = response.text().await.map_err(transport_failure)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(Failure::Status {
            code: status.as_u16(),
            retry_after: None,
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
    fn a_delayed_check_is_asked_again_per_the_policy_until_its_limit() {
        let policy = RetryPolicy {
            base: std::time::Duration::from_millis(100),
            cap: std::time::Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        let down = Failure::Connect("refused".into());
        assert_eq!(
            ask_again(&policy, Some(&down), 1, 3, 0.0),
            Some(std::time::Duration::from_millis(50))
        );
        assert_eq!(
            ask_again(&policy, Some(&down), 2, 3, 0.0),
            Some(std::time::Duration::from_millis(100))
        );
        assert_eq!(ask_again(&policy, Some(&down), 3, 3, 0.0), None);
        // The billing refused the request itself: asking again cannot help.
        let refused = Failure::Status {
            code: 400,
            retry_after: None,
            message: "bad inn".into(),
        };
        assert_eq!(ask_again(&policy, Some(&refused), 1, 3, 0.0), None);
        // Retry-After is honoured; an unreadable journal backs off.
        let busy = Failure::Status {
            code: 503,
            retry_after: Some(std::time::Duration::from_secs(2)),
            message: String::new(),
        };
        assert_eq!(
            ask_again(&policy, Some(&busy), 1, 3, 0.0),
            Some(std::time::Duration::from_secs(2))
        );
        assert!(ask_again(&policy, None, 1, 3, 0.0).is_some());
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
