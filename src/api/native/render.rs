//! The native dialect's replies: a stored receipt as API v1 shows it (money
//! and quantities as decimal strings).

use crate::domain::{Money, Unit};
use crate::journal::{Event, StoredReceipt};
use serde_json::{Value, json};

/// A stored receipt as the native API shows it.
pub fn render(r: &StoredReceipt) -> Value {
    let receipt = &r.receipt;
    let paid = receipt
        .payments
        .iter()
        .map(|p| p.amount.minor())
        .sum::<i64>();
    let items: Vec<Value> = receipt
        .items
        .iter()
        .map(|item| {
            let l = &item.line;
            let mut v = json!({
                "name": l.name,
                "quantity": l.quantity.to_decimal(),
                "price": l.price.to_decimal(),
                "total": item.total.to_decimal(),
                "vat": l.vat.code(),
                "payment_subject": l.payment_subject.code(),
                "calculation_method": l.calculation_method.code(),
            });
            let obj = v.as_object_mut().expect("object");
            for (key, value) in [
                ("barcode", &l.barcode),
                ("class_code", &l.class_code),
                ("package_code", &l.package_code),
            ] {
                if let Some(value) = value {
                    obj.insert(key.into(), json!(value));
                }
            }
            if !l.marking.is_empty() {
                obj.insert("marking".into(), json!(l.marking));
            }
            if l.unit != Unit::Piece {
                obj.insert("unit".into(), json!(l.unit.code()));
            }
            if !l.discount.is_zero() {
                obj.insert("discount".into(), json!(l.discount.to_decimal()));
            }
            if !item.receipt_discount.is_zero() {
                obj.insert(
                    "receipt_discount".into(),
                    json!(item.receipt_discount.to_decimal()),
                );
            }
            if let Some(a) = &l.agent {
                obj.insert(
                    "agent".into(),
                    serde_json::to_value(a).expect("agent serializes"),
                );
            }
            v
        })
        .collect();
    let payments: Vec<Value> = receipt
        .payments
        .iter()
        .map(|p| json!({"kind": p.kind.code(), "amount": p.amount.to_decimal()}))
        .collect();
    let mut v = json!({
        "id": r.id,
        "number": r.number,
        "state": r.state,
        "source": r.source.code(),
        "idempotency_key": r.idempotency_key,
        "offline_url": r.offline_url,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "type": receipt.kind.code(),
        "tax_system": receipt.tax_system.code(),
        "currency": receipt.currency,
        "total": receipt.total.to_decimal(),
        "paid": Money(paid).to_decimal(),
        "change": receipt.change.to_decimal(),
        "items": items,
        "payments": payments,
    });
    let obj = v.as_object_mut().expect("object");
    if let Some(key) = &r.caller_key {
        obj.insert("caller_key".into(), json!(key));
    }
    if let Some(c) = &receipt.cashier {
        obj.insert(
            "cashier".into(),
            serde_json::to_value(c).expect("cashier serializes"),
        );
    }
    if let Some(b) = &receipt.buyer {
        obj.insert(
            "buyer".into(),
            serde_json::to_value(b).expect("buyer serializes"),
        );
    }
    if let Some(c) = &receipt.correction {
        obj.insert(
            "correction".into(),
            json!({
                "type": c.kind.code(),
                "basis_date": c.basis_date.to_string(),
                "basis_number": c.basis_number,
            }),
        );
    }
    if !receipt.marking_checks.is_empty() {
        obj.insert(
            "marking_checks".into(),
            serde_json::to_value(&receipt.marking_checks).expect("checks serialize"),
        );
    }
    if !receipt.discount.is_zero() {
        obj.insert("discount".into(), json!(receipt.discount.to_decimal()));
    }
    if let Some(d) = receipt.original_date {
        obj.insert("original_date".into(), json!(d.to_string()));
    }
    if let Some(f) = &r.fiscal {
        obj.insert(
            "fiscal".into(),
            json!({
                "fiscal_document_number": f.fiscal_document_number,
                "fiscal_sign": f.fiscal_sign,
                "fiscal_drive_number": f.fiscal_drive_number,
                "kkt_reg_id": f.kkt_reg_id,
                "shift_number": f.shift_number,
                "receipt_number_in_shift": f.receipt_number_in_shift,
                "date_time": f.date_time.format("%Y-%m-%dT%H:%M:%S").to_string(),
                "ofd_receipt_url": f.ofd_receipt_url,
                "qr": r.fiscal_qr,
            }),
        );
    }
    if let Some(sync) = &r.sync {
        let next = (sync.job_state == crate::journal::JobState::Pending).then(|| {
            chrono::DateTime::from_timestamp_millis(sync.next_attempt_at)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        });
        obj.insert(
            "sync".into(),
            json!({
                "by": if sync.kind == crate::journal::JobKind::Register { "register" } else { "cloud" },
                "attempts": sync.attempts,
                "last_error": sync.last_error,
                "next_attempt_at": next.flatten(),
                "document_id": sync.document_id,
            }),
        );
    }
    if let Some(p) = &r.print {
        obj.insert(
            "print".into(),
            json!({
                "state": p.job_state,
                "attempts": p.attempts,
                "copies": p.copies,
                "last_error": p.last_error,
            }),
        );
    }
    if !r.history.is_empty() {
        obj.insert(
            "history".into(),
            json!(r.history.iter().map(render_event).collect::<Vec<_>>()),
        );
    }
    v
}

fn render_event(e: &Event) -> Value {
    json!({"at": e.at, "actor": e.actor, "state": e.state, "note": e.note})
}
