//! Building a large journal quickly, through the journal's own operations:
//! the scale benchmark's million receipts and the retention tests' simulated
//! year. Each receipt is accepted by `ops::accept` at its own instant and then
//! taken to its outcome by the same operations the sync worker and the
//! operator use — only many per transaction and without the writer thread.
//! Never on a journal a daemon has open.

use super::wal::WalState;
use super::writer::{Ctx, open_writer};
use super::{Accepted, JournalError, NewReceipt, Options, ops};
use crate::domain::fiscal::FiscalAttributes;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use std::sync::Arc;

/// Where a bulk-loaded receipt ends up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted, its job waiting.
    Pending,
    Fiscalized,
    /// Parked by the processing: the operator's dead-letter list.
    Rejected,
    /// Rejected, then discarded by the operator.
    Discarded,
}

pub struct BulkReceipt {
    /// When it was accepted and reached its outcome.
    pub at: DateTime<Utc>,
    pub new: NewReceipt,
    pub outcome: Outcome,
}

/// Load `receipts`, `per_transaction` to a commit; returns how many were
/// created (a repeated caller key creates none).
pub fn load(
    options: &Options,
    receipts: impl IntoIterator<Item = BulkReceipt>,
    per_transaction: usize,
) -> Result<u64, JournalError> {
    if let Some(dir) = options.path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| JournalError::Unavailable(format!("{}: {e}", dir.display())))?;
    }
    let mut conn = open_writer(options, Arc::new(WalState::default()))?;
    // A rebuildable load: the durability of each transaction does not matter.
    conn.pragma_update(None, "synchronous", "OFF")?;
    let mut created = 0u64;
    let mut iter = receipts.into_iter().peekable();
    while iter.peek().is_some() {
        let tx = conn.transaction()?;
        for item in iter.by_ref().take(per_transaction.max(1)) {
            let ctx = Ctx {
                now: item.at,
                options,
            };
            let encoded = item.new.receipt.encoded();
            let Accepted::Created(stored) = ops::accept(&tx, &ctx, item.new, encoded)? else {
                continue;
            };
            created += 1;
            if item.outcome == Outcome::Pending {
                continue;
            }
            let job: Option<i64> = tx
                .prepare_cached("SELECT id FROM jobs WHERE receipt_id = ?1 AND kind = ?2")?
                .query_row(rusqlite::params![stored.id, options.fiscal_job], |r| {
                    r.get(0)
                })
                .optional()?;
            let job = job.ok_or_else(|| JournalError::NotFound("fiscal job".into()))?;
            match item.outcome {
                Outcome::Pending => {}
                Outcome::Fiscalized => {
                    let attrs = FiscalAttributes {
                        fiscal_document_number: stored.number,
                        fiscal_sign: format!("{:010}", stored.number * 7919 % 4_294_967_291),
                        fiscal_drive_number: "7281440500000001".into(),
                        kkt_reg_id: "0000000001012345".into(),
                        shift_number: 1 + stored.number / 500,
                        receipt_number_in_shift: 1 + stored.number % 500,
                        date_time: item.at.naive_utc(),
                        ofd_receipt_url: None,
                    };
                    let qr = format!("t=…&i={}", stored.number);
                    ops::record_fiscalized(&tx, &ctx, job, &attrs, &qr, "sync")?;
                }
                Outcome::Rejected => ops::park(&tx, &ctx, job, "400: simulated rejection")?,
                Outcome::Discarded => {
                    ops::park(&tx, &ctx, job, "400: simulated rejection")?;
                    ops::operator_discard(&tx, &ctx, &stored.id, "simulated: sold again")?;
                }
            }
        }
        tx.commit()?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(created)
}
