//! The one accept path every dialect uses: a parsed [`Draft`] → the request
//! limits → `domain::validate` → the journal (commit) → an outcome the
//! dialect renders. Rule violations come back in the dialect's own field
//! paths. Workers are woken by the journal on commit, never from here.

use super::AppState;
use super::dialect::Dialect;
use super::error::ApiError;
use crate::config::Limits;
use crate::domain::{Draft, Violation, validate};
use crate::journal::{Accepted, NewReceipt, StoredReceipt};

/// What became of an accepted draft.
pub enum Outcome {
    /// Journaled now (201).
    Created(StoredReceipt),
    /// The caller key was seen with the same receipt: the original (200).
    Replayed(StoredReceipt),
}

impl Outcome {
    pub fn receipt(&self) -> &StoredReceipt {
        match self {
            Outcome::Created(r) | Outcome::Replayed(r) => r,
        }
    }
}

/// Validate `draft` and journal it; answers only after the commit.
pub async fn accept(
    app: &AppState,
    dialect: &Dialect,
    caller_key: Option<String>,
    draft: Draft,
) -> Result<Outcome, ApiError> {
    let in_dialect = |v: Vec<Violation>| {
        ApiError::invalid_receipt(
            v.into_iter()
                .map(|mut v| {
                    v.path = (dialect.field_path)(&v.path);
                    v
                })
                .collect(),
        )
    };
    let over = check_limits(&draft, &app.api.limits);
    if !over.is_empty() {
        return Err(in_dialect(over));
    }
    // The till's local date: the 2026 VAT rule depends on it.
    let today = app.clock.now().with_timezone(&app.tz).date_naive();
    let mut receipt = validate(draft, &app.profile, today).map_err(in_dialect)?;
    // With the register fiscalizing, a receipt its commands cannot express is
    // refused now (the planner is pure), not parked after it was accepted.
    if app.backend == crate::config::Backend::Register
        && let Err(e) = crate::devices::shtrih::plan_receipt(&receipt)
    {
        return Err(in_dialect(vec![e.violation()]));
    }
    super::operations::check_marking(app, dialect, caller_key.as_deref(), &mut receipt).await?;
    let new = NewReceipt {
        source: dialect.source,
        caller_key,
        receipt,
    };
    match app.journal.accept(new, app.write_timeout).await? {
        Accepted::Created(stored) => {
            tracing::info!(
                id = %stored.id,
                number = stored.number,
                total = %stored.receipt.total,
                source = dialect.source.code(),
                "receipt accepted"
            );
            Ok(Outcome::Created(stored))
        }
        Accepted::Replayed(stored) => {
            tracing::info!(id = %stored.id, number = stored.number, "receipt repeated with the same Idempotency-Key");
            Ok(Outcome::Replayed(stored))
        }
    }
}

/// `[api.limits]` on a draft: the number of lines and the length of every
/// text, each reported with its domain pointer.
pub fn check_limits(d: &Draft, limits: &Limits) -> Vec<Violation> {
    let mut out = Vec::new();
    if d.items.len() > limits.max_items {
        out.push(Violation::new(
            "/items",
            "max_items",
            format!(
                "a receipt may have at most {} lines (api.limits.max_items)",
                limits.max_items
            ),
        ));
    }
    let max = limits.max_string_chars;
    let mut text = |path: String, s: &str| {
        if s.chars().count() > max {
            out.push(Violation::new(
                path,
                "max_length",
                format!("at most {max} characters (api.limits.max_string_chars)"),
            ));
        }
    };
    if let Some(c) = &d.currency {
        text("/currency".into(), c);
    }
    if let Some(c) = &d.cashier {
        text("/cashier/name".into(), &c.name);
        if let Some(inn) = &c.inn {
            text("/cashier/inn".into(), inn);
        }
    }
    if let Some(b) = &d.buyer {
        if let Some(e) = &b.email {
            text("/buyer/email".into(), e);
        }
        if let Some(p) = &b.phone {
            text("/buyer/phone".into(), p);
        }
    }
    for (i, item) in d.items.iter().enumerate().take(limits.max_items) {
        let l = &item.line;
        text(format!("/items/{i}/name"), &l.name);
        for (key, value) in [
            ("barcode", &l.barcode),
            ("class_code", &l.class_code),
            ("package_code", &l.package_code),
        ] {
            if let Some(v) = value {
                text(format!("/items/{i}/{key}"), v);
            }
        }
        for (m, code) in l.marking.iter().enumerate() {
            text(format!("/items/{i}/marking/{m}"), code);
        }
    }
    out
}
