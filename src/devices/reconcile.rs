//! The register's exactly-once decision, pure: from the job's durable marker,
//! what the register shows now and the documents read back so far, what to
//! do next. The device worker (`jobs.rs`) is the thin loop that performs
//! each [`Action`] and asks again; the property test below drives the same
//! function through every interleaving of crash points against a model
//! register.
//!
//! The protocol: before a byte of a receipt is sent, the marker records the
//! register's last fiscal document number (`fd_before`) and is committed.
//! Afterwards the register is the only source of truth: a check still open
//! was never registered (cancel it); a receipt document after `fd_before`
//! with this receipt's operation and total *is* this receipt (read it back,
//! send nothing); otherwise send it afresh. Register jobs run strictly in
//! acceptance order, so no other receipt of ours lands between a marker and
//! its reconciliation.

use super::shtrih::ShiftState;
use crate::domain::money::Money;
use serde::{Deserialize, Serialize};

/// The register job's durable progress marker (the job's `data`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterMarker {
    /// The register's last fiscal document number just before this receipt
    /// was sent to it; present once sending may have begun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_before: Option<u32>,
}

/// What a receipt document read back from the register says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocSummary {
    /// 1 income, 2 return of income, 3 expense, 4 return of expense.
    pub operation: u8,
    pub total: Money,
    /// A correction receipt (FFD document type 31), not a sale.
    pub correction: bool,
}

/// The register as last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed<'a> {
    pub document_open: bool,
    pub last_fd: u32,
    pub shift: ShiftState,
    /// Documents read back so far, in order from `fd_before + 1`: their
    /// number and, for a receipt, its summary (`None`: not a receipt, or no
    /// such document).
    pub documents: &'a [(u32, Option<DocSummary>)],
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A check is open: ours, interrupted before it closed, or a stray one.
    /// A check that never closed registered nothing; cancel it and look again.
    CancelOpenCheck,
    /// Read documents `from..=to` back and ask again.
    ReadBack { from: u32, to: u32 },
    /// The receipt is on the register as document `fd`: record its
    /// attributes; send nothing.
    Registered { fd: u32 },
    /// Open the shift (allowed by config) and look again.
    OpenShift,
    /// Not now: the register is not in a state to take the receipt.
    Wait(&'static str),
    /// The receipt is not on the register: commit the marker with
    /// `fd_before`, then send it.
    Send { fd_before: u32 },
}

/// The decision. `expected` is the receipt's own operation and total.
pub fn reconcile(
    marker: &RegisterMarker,
    seen: &Observed<'_>,
    expected: DocSummary,
    auto_open_shift: bool,
) -> Action {
    if seen.document_open {
        return Action::CancelOpenCheck;
    }
    if let Some(fd_before) = marker.fd_before {
        if let Some((fd, _)) = seen
            .documents
            .iter()
            .find(|(fd, doc)| *fd > fd_before && *doc == Some(expected))
        {
            return Action::Registered { fd: *fd };
        }
        let read_to = seen
            .documents
            .iter()
            .map(|(fd, _)| *fd)
            .max()
            .unwrap_or(fd_before)
            .max(fd_before);
        if read_to < seen.last_fd {
            return Action::ReadBack {
                from: read_to + 1,
                to: seen.last_fd,
            };
        }
    }
    match seen.shift {
        ShiftState::Open => Action::Send {
            fd_before: seen.last_fd,
        },
        ShiftState::Closed if auto_open_shift => Action::OpenShift,
        ShiftState::Closed => {
            Action::Wait("the shift is closed: open it with POST /v1/shifts/open")
        }
        ShiftState::Expired => Action::Wait(
            "the shift is over 24 hours old: close it (Z report) with POST /v1/shifts/close",
        ),
    }
}

/// After the register refused a receipt part-way (and any open check was
/// cancelled): park it only if the register provably registered nothing
/// since the marker; otherwise reconcile on the next attempt.
pub fn refusal_parks(fd_before: u32, seen_after: &Observed<'_>) -> bool {
    seen_after.last_fd == fd_before && !seen_after.document_open
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn summary(total: i64) -> DocSummary {
        DocSummary {
            operation: 1,
            total: Money(total),
            correction: false,
        }
    }

    #[test]
    fn decisions_follow_the_protocol() {
        let open = Observed {
            document_open: true,
            last_fd: 5,
            shift: ShiftState::Open,
            documents: &[],
        };
        let m = RegisterMarker { fd_before: Some(4) };
        assert_eq!(
            reconcile(&m, &open, summary(100), false),
            Action::CancelOpenCheck
        );
        let seen = Observed {
            document_open: false,
            ..open.clone()
        };
        assert_eq!(
            reconcile(&m, &seen, summary(100), false),
            Action::ReadBack { from: 5, to: 5 }
        );
        let docs = [(5, Some(summary(100)))];
        let seen = Observed {
            documents: &docs,
            ..seen
        };
        assert_eq!(
            reconcile(&m, &seen, summary(100), false),
            Action::Registered { fd: 5 }
        );
        // Another total at 5: not ours; send afresh after 5.
        assert_eq!(
            reconcile(&m, &seen, summary(200), false),
            Action::Send { fd_before: 5 }
        );
        // No marker: never read back (an identical earlier sale is not ours).
        assert_eq!(
            reconcile(&RegisterMarker::default(), &seen, summary(100), false),
            Action::Send { fd_before: 5 }
        );
        let closed = Observed {
            shift: ShiftState::Closed,
            documents: &[],
            ..seen.clone()
        };
        assert_eq!(
            reconcile(&RegisterMarker::default(), &closed, summary(1), true),
            Action::OpenShift
        );
        assert!(matches!(
            reconcile(&RegisterMarker::default(), &closed, summary(1), false),
            Action::Wait(_)
        ));
        assert!(refusal_parks(5, &closed));
        assert!(!refusal_parks(4, &closed));
    }

    // ------------------------------------------------------------ the model

    /// A register as the protocol sees it: documents (receipts with their
    /// operation and total, and other documents), an open check, the shift.
    #[derive(Default)]
    struct Reg {
        docs: Vec<Option<DocSummary>>,
        open: Option<DocSummary>,
        shift_open: bool,
    }

    impl Reg {
        fn last_fd(&self) -> u32 {
            self.docs.len() as u32
        }
        fn seen<'a>(&self, docs: &'a [(u32, Option<DocSummary>)]) -> Observed<'a> {
            Observed {
                document_open: self.open.is_some(),
                last_fd: self.last_fd(),
                shift: if self.shift_open {
                    ShiftState::Open
                } else {
                    ShiftState::Closed
                },
                documents: docs,
            }
        }
    }

    /// The journal's durable state of one register job.
    #[derive(Clone, Default)]
    struct Job {
        marker: RegisterMarker,
        recorded: Option<u32>,
    }

    /// Every effect spends one unit of fuel; at zero the daemon "crashes"
    /// (SIGKILL or a pulled cable) right there. The register keeps what it
    /// did; the journal keeps what was committed.
    struct Crashed;

    fn spend(fuel: &mut u32) -> Result<(), Crashed> {
        if *fuel == 0 {
            return Err(Crashed);
        }
        *fuel -= 1;
        Ok(())
    }

    /// One attempt of one job, as `jobs.rs` runs it.
    fn attempt(
        reg: &mut Reg,
        job: &mut Job,
        expected: DocSummary,
        fuel: &mut u32,
    ) -> Result<(), Crashed> {
        let mut docs: Vec<(u32, Option<DocSummary>)> = Vec::new();
        for _ in 0..8 {
            match reconcile(&job.marker, &reg.seen(&docs), expected, true) {
                Action::CancelOpenCheck => {
                    spend(fuel)?;
                    reg.open = None;
                }
                Action::ReadBack { from, to } => {
                    for fd in from..=to {
                        docs.push((fd, reg.docs[fd as usize - 1]));
                    }
                }
                Action::Registered { fd } => {
                    spend(fuel)?;
                    job.recorded = Some(fd);
                    return Ok(());
                }
                Action::OpenShift => {
                    spend(fuel)?;
                    reg.shift_open = true;
                    reg.docs.push(None); // the shift-open report is a document
                }
                Action::Wait(_) => unreachable!("auto-open is on"),
                Action::Send { fd_before } => {
                    // The marker is committed before a byte is sent.
                    spend(fuel)?;
                    job.marker = RegisterMarker {
                        fd_before: Some(fd_before),
                    };
                    // Open the check, add the line(s), close it.
                    spend(fuel)?;
                    reg.open = Some(expected);
                    spend(fuel)?;
                    spend(fuel)?;
                    let doc = reg.open.take();
                    reg.docs.push(doc);
                    let fd = reg.last_fd();
                    // The reply may be lost: the record is a separate step.
                    spend(fuel)?;
                    job.recorded = Some(fd);
                    return Ok(());
                }
            }
        }
        panic!("reconcile did not settle");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// Any receipts (equal totals included), any crash points on any
        /// attempt, shifts closed by Z reports in between: at the end every
        /// receipt is on the register exactly once, and the journal's FD for
        /// each is its own document.
        #[test]
        fn every_receipt_is_registered_exactly_once_whatever_the_crashes(
            totals in proptest::collection::vec(1i64..4, 1..5),
            crashes in proptest::collection::vec(0u32..9, 0..12),
            z_between in proptest::collection::vec(any::<bool>(), 5),
        ) {
            let mut reg = Reg::default();
            let mut jobs: Vec<Job> = vec![Job::default(); totals.len()];
            let mut crashes = crashes.into_iter();
            for (i, &total) in totals.iter().enumerate() {
                let expected = summary(total);
                loop {
                    // The next attempt's crash point, or none once they run out.
                    let mut fuel = crashes.next().unwrap_or(u32::MAX);
                    match attempt(&mut reg, &mut jobs[i], expected, &mut fuel) {
                        Ok(()) => break,
                        Err(Crashed) => continue,
                    }
                }
                if z_between[i] {
                    reg.shift_open = false;
                    reg.docs.push(None); // the Z report
                }
            }
            let receipts: Vec<DocSummary> = reg.docs.iter().flatten().copied().collect();
            prop_assert_eq!(receipts.len(), totals.len(), "one document per receipt");
            let fds: Vec<u32> = jobs.iter().map(|j| j.recorded.unwrap()).collect();
            for (job, &total) in jobs.iter().zip(&totals) {
                let fd = job.recorded.unwrap();
                prop_assert_eq!(reg.docs[fd as usize - 1], Some(summary(total)));
            }
            prop_assert!(fds.windows(2).all(|w| w[0] < w[1]), "distinct documents, in order: {:?}", fds);
            prop_assert!(reg.open.is_none());
        }
    }
}
