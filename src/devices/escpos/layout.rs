//! Receipt layout: a [`Receipt`] (and what the till knows about it) turned into
//! ESC/POS bytes. Pure; the VAT arithmetic is [`vat_breakdown`].

use super::command::{Align, Commands, CutMode, LF, QrEc, TextEncoding, code_tables};
use crate::domain::fiscal::FiscalAttributes;
use crate::domain::money::Money;
use crate::domain::receipt::{
    AgentKind, CalculationMethod, Item, PaymentKind, Receipt, ReceiptKind, TaxSystem, Unit, Vat,
};

/// Vendor- and paper-dependent choices, each with a default for an
/// Epson-compatible 80 mm printer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutOptions {
    /// Characters per line in font A: 48 on 80 mm paper, 32 on 58 mm.
    pub width: usize,
    /// `ESC t n` for `encoding`: 17 = CP866 on Epson (see [`code_tables`]).
    pub code_table: u8,
    pub encoding: TextEncoding,
    pub cut: CutMode,
    /// QR module size in dots (1–16).
    pub qr_module_size: u8,
}

impl Default for LayoutOptions {
    fn default() -> LayoutOptions {
        LayoutOptions {
            width: 48,
            code_table: code_tables::CP866,
            encoding: TextEncoding::Cp866,
            // Feed to the cutter, then cut: no guess of the head-to-cutter distance.
            cut: CutMode::FeedPartial(0),
            qr_module_size: 4,
        }
    }
}

/// Everything one printed receipt shows.
#[derive(Clone, Debug)]
pub struct ReceiptPrint<'a> {
    /// Shop name, address, INN… each line centered.
    pub header: &'a [String],
    /// The till's receipt number.
    pub number: u64,
    pub receipt: &'a Receipt,
    /// Till-local acceptance time as it should be printed.
    pub local_time: String,
    pub fiscal: Option<&'a FiscalAttributes>,
    /// The fiscal QR string when fiscalized, else the offline link.
    pub qr: &'a str,
    pub qr_caption: &'a str,
    /// A reprint: marked КОПИЯ at the top and the bottom.
    pub copy: bool,
    /// Printed before fiscalization (cloud backend, the wait ran out): the
    /// title says it is not a cash receipt, and there is no fiscal block.
    pub slip: bool,
    pub footer: &'a [String],
}

/// One VAT rate's share of a receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VatLine {
    pub vat: Vat,
    /// Sum of the line totals at this rate (VAT included).
    pub base: Money,
    /// The VAT in `base`; zero for 0 % and "no VAT".
    pub amount: Money,
}

/// The VAT percentage a code charges; `None` for "no VAT". The calculated
/// rates (20/120…) charge the same fraction of a VAT-inclusive amount as
/// their plain rates do.
pub fn vat_percent(vat: Vat) -> Option<i64> {
    match vat {
        Vat::None => None,
        Vat::Vat0 => Some(0),
        Vat::Vat5 | Vat::Vat105 => Some(5),
        Vat::Vat7 | Vat::Vat107 => Some(7),
        Vat::Vat10 | Vat::Vat110 => Some(10),
        Vat::Vat12 => Some(12),
        Vat::Vat20 | Vat::Vat120 => Some(20),
        Vat::Vat22 | Vat::Vat122 => Some(22),
    }
}

/// The VAT included in `gross` at `percent`: gross × p / (100 + p), rounded
/// half away from zero to the kopeck.
pub fn vat_included(gross: Money, percent: i64) -> Money {
    let num = i128::from(gross.0) * i128::from(percent);
    let den = i128::from(100 + percent);
    let rounded = if num >= 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    };
    Money(rounded as i64)
}

/// VAT per rate, in the order of [`Vat::ALL`]. The VAT is computed once on the
/// sum of the line totals at each rate (as the receipt's per-rate VAT sums,
/// FFD tags 1102–1107, are), not summed from per-line roundings.
pub fn vat_breakdown(items: &[Item]) -> Vec<VatLine> {
    Vat::ALL
        .iter()
        .filter_map(|&vat| {
            let mut lines = items.iter().filter(|i| i.line.vat == vat).peekable();
            lines.peek()?;
            let base = Money(lines.map(|i| i.total.0).sum());
            let amount = vat_percent(vat).map_or(Money::ZERO, |p| vat_included(base, p));
            Some(VatLine { vat, base, amount })
        })
        .collect()
}

/// How a VAT code is printed.
pub fn vat_label(vat: Vat) -> String {
    match vat {
        Vat::None => "БЕЗ НДС".to_owned(),
        Vat::Vat105 | Vat::Vat107 | Vat::Vat110 | Vat::Vat120 | Vat::Vat122 => {
            format!("НДС {}", vat.code())
        }
        _ => format!("НДС {}%", vat.code()),
    }
}

/// The document title: the kind of settlement (fiscal tag 1054).
pub fn kind_title(kind: ReceiptKind) -> &'static str {
    match kind {
        ReceiptKind::Sale => "ПРИХОД",
        ReceiptKind::SaleReturn => "ВОЗВРАТ ПРИХОДА",
        ReceiptKind::Purchase => "РАСХОД",
        ReceiptKind::PurchaseReturn => "ВОЗВРАТ РАСХОДА",
    }
}

/// How the settlement method (tag 1214) is printed (FFD names).
pub fn method_label(m: CalculationMethod) -> &'static str {
    match m {
        CalculationMethod::FullPrepay => "ПРЕДОПЛАТА 100%",
        CalculationMethod::PartialPrepay => "ПРЕДОПЛАТА",
        CalculationMethod::Advance => "АВАНС",
        CalculationMethod::FullPay => "ПОЛНЫЙ РАСЧЕТ",
        CalculationMethod::PartialPayAndCredit => "ЧАСТИЧНЫЙ РАСЧЕТ И КРЕДИТ",
        CalculationMethod::CreditTransfer => "ПЕРЕДАЧА В КРЕДИТ",
        CalculationMethod::CreditPayment => "ОПЛАТА КРЕДИТА",
    }
}

/// How an agent kind (tag 1222) is printed.
pub fn agent_label(k: AgentKind) -> &'static str {
    match k {
        AgentKind::BankPayingAgent => "БАНК. ПЛ. АГЕНТ",
        AgentKind::BankPayingSubagent => "БАНК. ПЛ. СУБАГЕНТ",
        AgentKind::PayingAgent => "ПЛ. АГЕНТ",
        AgentKind::PayingSubagent => "ПЛ. СУБАГЕНТ",
        AgentKind::Attorney => "ПОВЕРЕННЫЙ",
        AgentKind::CommissionAgent => "КОМИССИОНЕР",
        AgentKind::Agent => "АГЕНТ",
    }
}

pub fn tax_system_label(t: TaxSystem) -> &'static str {
    match t {
        TaxSystem::Common => "ОСН",
        TaxSystem::Simplified => "УСН ДОХОД",
        TaxSystem::SimplifiedWithExpense => "УСН ДОХОД-РАСХОД",
        TaxSystem::Envd => "ЕНВД",
        TaxSystem::CommonAgricultural => "ЕСХН",
        TaxSystem::Patent => "ПСН",
    }
}

pub fn payment_label(kind: PaymentKind) -> &'static str {
    match kind {
        PaymentKind::Cash => "НАЛИЧНЫМИ",
        PaymentKind::Electronic => "БЕЗНАЛИЧНЫМИ",
        PaymentKind::Prepaid => "ПРЕДОПЛАТА (АВАНС)",
        PaymentKind::Credit => "ПОСТОПЛАТА (КРЕДИТ)",
        PaymentKind::Other => "ИНАЯ ФОРМА ОПЛАТЫ",
    }
}

/// Splits `text` into lines of at most `width` characters, at spaces where
/// possible; a word longer than a line is broken.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        if cur_len > 0 && cur_len + 1 + word.len() <= width {
            cur.push(' ');
            cur.extend(word.iter());
            cur_len += 1 + word.len();
            continue;
        }
        if cur_len > 0 {
            lines.push(std::mem::take(&mut cur));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        cur_len = word.len();
        cur = word.into_iter().collect();
    }
    if cur_len > 0 || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

/// `left` and `right` on one line of `width`, the right flush right; when
/// both do not fit, `left` (wrapped) first and `right` on a line of its own.
pub fn two_columns(left: &str, right: &str, width: usize) -> Vec<String> {
    let (l, r) = (left.chars().count(), right.chars().count());
    if l + 1 + r <= width {
        return vec![format!("{left}{}{right}", " ".repeat(width - l - r))];
    }
    let mut lines = wrap(left, width);
    lines.push(format!("{right:>width$}"));
    lines
}

/// The receipt as ESC/POS bytes, from `ESC @` to the cut.
/// The sign printed before a marked good's name: the result of checking its
/// codes (tag 2106's print form). **ASSUMED** (the FFD 1.2 table of print
/// forms could not be read here; the signs are the ones registers print, cf.
/// shtrih-m/javapos_shtrih#138 where 2106 = 5 printed "[M-]"): "[М+]" when
/// every code of the line was checked and confirmed before the sale, "[М]"
/// when any was not checked (no service answered, or checking is off). A
/// refused code is never sold (422 `marking_refused`), so "[М-]" is never
/// printed. `None` for a line without codes.
pub fn marking_sign(r: &Receipt, item: usize) -> Option<&'static str> {
    let codes = &r.items.get(item)?.line.marking;
    if codes.is_empty() {
        return None;
    }
    let confirmed = codes.iter().all(|code| {
        r.marking_checks
            .iter()
            .any(|c| c.item == item && &c.code == code && c.requisite.is_some())
    });
    Some(if confirmed { "[М+]" } else { "[М]" })
}

pub fn receipt(doc: &ReceiptPrint, opts: &LayoutOptions) -> Vec<u8> {
    let w = opts.width;
    let r = doc.receipt;
    let mut c = Commands::new(opts.encoding);
    let rule = "-".repeat(w);
    c.init().code_table(opts.code_table);

    if doc.copy {
        copy_mark(&mut c);
    }
    c.align(Align::Center);
    for line in doc.header {
        for l in wrap(line, w) {
            c.line(&l);
        }
    }
    if doc.slip {
        // 54-ФЗ: only a document the fiscal drive signed is a cash receipt.
        c.bold(true)
            .line("ПРЕДВАРИТЕЛЬНЫЙ ДОКУМЕНТ")
            .line("НЕ ЯВЛЯЕТСЯ КАССОВЫМ ЧЕКОМ")
            .line(kind_title(r.kind))
            .bold(false);
    } else {
        c.bold(true)
            .line("КАССОВЫЙ ЧЕК")
            .line(kind_title(r.kind))
            .bold(false);
    }
    c.align(Align::Left);
    let number = if doc.slip {
        "ДОКУМЕНТ №"
    } else {
        "ЧЕК №"
    };
    for l in two_columns(&format!("{number} {}", doc.number), &doc.local_time, w) {
        c.line(&l);
    }
    c.line(&rule);

    if let Some(date) = r.original_date {
        let what = match r.kind {
            ReceiptKind::SaleReturn | ReceiptKind::PurchaseReturn => "ВОЗВРАТ ПО ОПЕРАЦИИ ОТ",
            _ => "РАСЧЕТ ПО ОПЕРАЦИИ ОТ",
        };
        for l in two_columns(what, &date.format("%d.%m.%Y").to_string(), w) {
            c.line(&l);
        }
        c.line(&rule);
    }

    for (i, item) in r.items.iter().enumerate() {
        let sign = marking_sign(r, i).map_or(String::new(), |s| format!("{s} "));
        for l in wrap(&format!("{}. {sign}{}", i + 1, item.line.name), w) {
            c.line(&l);
        }
        let unit = match item.line.unit {
            Unit::Other => String::new(),
            u => format!(" {}", u.short_name()),
        };
        let calc = format!(
            "{}{unit} x {} = {}",
            item.line.quantity.to_decimal(),
            item.line.price.to_decimal(),
            item.gross().to_decimal()
        );
        for l in two_columns(&vat_label(item.line.vat), &calc, w) {
            c.line(&l);
        }
        if !item.discount().is_zero() {
            for l in two_columns("  СКИДКА", &format!("-{}", item.discount().to_decimal()), w)
            {
                c.line(&l);
            }
            for l in two_columns("  СТОИМОСТЬ", &item.total.to_decimal(), w) {
                c.line(&l);
            }
        }
        if item.line.calculation_method != CalculationMethod::FullPay {
            c.line(&format!("  {}", method_label(item.line.calculation_method)));
        }
        if let Some(a) = &item.line.agent {
            c.line(&format!("  ПРИЗНАК АГЕНТА: {}", agent_label(a.kind)));
            for l in wrap(&format!("  ПОСТАВЩИК: {}", a.supplier_name), w) {
                c.line(&l);
            }
            for l in two_columns("  ИНН ПОСТАВЩИКА", &a.supplier_inn, w) {
                c.line(&l);
            }
            if let Some(phone) = &a.supplier_phone {
                for l in two_columns("  ТЕЛ. ПОСТАВЩИКА", phone, w) {
                    c.line(&l);
                }
            }
        }
    }
    c.line(&rule);

    for v in vat_breakdown(&r.items) {
        // Without VAT and at 0 % the turnover is printed (FFD tags 1104,
        // 1105: "сумма расчета по чеку с НДС по ставке 0%", "без НДС").
        let (left, right) = match v.vat {
            Vat::None => ("СУММА БЕЗ НДС".to_owned(), v.base.to_decimal()),
            Vat::Vat0 => ("СУММА С НДС 0%".to_owned(), v.base.to_decimal()),
            _ => (format!("СУММА {}", vat_label(v.vat)), v.amount.to_decimal()),
        };
        for l in two_columns(&left, &right, w) {
            c.line(&l);
        }
    }
    if !r.discount.is_zero() {
        for l in two_columns("СКИДКА НА ЧЕК", &format!("-{}", r.discount.to_decimal()), w)
        {
            c.line(&l);
        }
    }

    // Double width halves the characters a line holds.
    c.bold(true).size(2, 2);
    for l in two_columns("ИТОГ", &format!("={}", r.total.to_decimal()), w / 2) {
        c.line(&l);
    }
    c.size(1, 1).bold(false);
    for p in &r.payments {
        for l in two_columns(payment_label(p.kind), &p.amount.to_decimal(), w) {
            c.line(&l);
        }
    }
    if r.change != Money::ZERO {
        for l in two_columns("СДАЧА", &r.change.to_decimal(), w) {
            c.line(&l);
        }
    }
    if let Some(cashier) = &r.cashier {
        for l in two_columns("КАССИР", &cashier.name, w) {
            c.line(&l);
        }
        if let Some(inn) = &cashier.inn {
            for l in two_columns("ИНН КАССИРА", inn, w) {
                c.line(&l);
            }
        }
    }
    if let Some(b) = &r.buyer {
        for (label, value) in [
            ("ПОКУПАТЕЛЬ", &b.name),
            ("ИНН ПОКУПАТЕЛЯ", &b.inn),
            ("ЭЛ. АДР. ПОКУПАТЕЛЯ", &b.email),
            ("ТЕЛ. ПОКУПАТЕЛЯ", &b.phone),
        ] {
            if let Some(value) = value {
                for l in two_columns(label, value, w) {
                    c.line(&l);
                }
            }
        }
    }
    for l in two_columns("СНО", tax_system_label(r.tax_system), w) {
        c.line(&l);
    }

    // An Uzbek receipt (FiscalBox): the fiscal module's facts; no QR and no
    // fiscal sign on advance and credit receipts (FiscalBox Order.md).
    let uz_type = r.uz.as_ref().map(|u| u.receipt_type);
    let plain_sale = !matches!(
        uz_type,
        Some(crate::domain::uz::UzReceiptType::Prepaid | crate::domain::uz::UzReceiptType::Credit)
    );
    if let (Some(f), Some(_)) = (doc.fiscal, &r.uz) {
        c.line(&rule);
        let mut rows = vec![
            ("FM", f.fiscal_drive_number.clone()),
            ("CHEK", f.fiscal_document_number.to_string()),
        ];
        if plain_sale {
            rows.push(("FISKAL BELGI", f.fiscal_sign.clone()));
        }
        rows.push(("SANA", f.date_time.format("%d.%m.%Y %H:%M:%S").to_string()));
        for (label, value) in rows {
            for l in two_columns(label, &value, w) {
                c.line(&l);
            }
        }
    } else if let Some(f) = doc.fiscal {
        c.line(&rule);
        let rows = [
            ("РН ККТ", f.kkt_reg_id.clone()),
            ("ФН", f.fiscal_drive_number.clone()),
            ("ФД", f.fiscal_document_number.to_string()),
            ("ФП", f.fiscal_sign.clone()),
            ("СМЕНА", f.shift_number.to_string()),
            ("ЧЕК В СМЕНЕ", f.receipt_number_in_shift.to_string()),
            ("ДАТА", f.date_time.format("%d.%m.%Y %H:%M").to_string()),
        ];
        for (label, value) in rows {
            for l in two_columns(label, &value, w) {
                c.line(&l);
            }
        }
    }

    c.align(Align::Center);
    if !doc.qr.is_empty() && plain_sale {
        c.qr(doc.qr, opts.qr_module_size, QrEc::M).raw(&[LF]);
    }
    for l in wrap(doc.qr_caption, w) {
        if !l.is_empty() {
            c.line(&l);
        }
    }
    for line in doc.footer {
        for l in wrap(line, w) {
            c.line(&l);
        }
    }
    c.align(Align::Left);
    if doc.copy {
        copy_mark(&mut c);
    }
    c.cut(opts.cut);
    c.into_bytes()
}

fn copy_mark(c: &mut Commands) {
    c.align(Align::Center)
        .bold(true)
        .size(2, 2)
        .line("КОПИЯ")
        .size(1, 1)
        .bold(false)
        .align(Align::Left);
}

/// What a printed block is (a banner of a POS: promotion text, a coupon
/// barcode, a QR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Text,
    Barcode,
    Qr,
}

/// One block with its style.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    pub data: String,
    pub bold: bool,
    /// Character magnification 1–8.
    pub width: u8,
    pub height: u8,
    pub align: Align,
    /// QR module size 1–16; `None`: the layout's.
    pub qr_size: Option<u8>,
    /// Cut after this block.
    pub cut: bool,
}

/// Blocks as one print job; cut after the last block in any case. Pure.
pub fn blocks(list: &[Block], opts: &LayoutOptions) -> Vec<u8> {
    let mut c = Commands::new(opts.encoding);
    c.init().code_table(opts.code_table);
    for (i, b) in list.iter().enumerate() {
        c.align(b.align);
        match b.kind {
            BlockKind::Text => {
                c.bold(b.bold)
                    .size(b.width.clamp(1, 8), b.height.clamp(1, 8));
                let per_line = (opts.width / usize::from(b.width.clamp(1, 8))).max(1);
                for line in b.data.lines() {
                    for l in wrap(line, per_line) {
                        c.line(&l);
                    }
                }
                c.size(1, 1).bold(false);
            }
            BlockKind::Barcode => {
                c.barcode_code128(&b.data).raw(&[LF]);
            }
            BlockKind::Qr => {
                c.qr(&b.data, b.qr_size.unwrap_or(opts.qr_module_size), QrEc::M)
                    .raw(&[LF]);
            }
        }
        if b.cut || i + 1 == list.len() {
            c.cut(opts.cut);
        }
    }
    c.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Quantity;
    use crate::domain::receipt::{CalculationMethod, Line, Payment, PaymentSubject, TaxSystem};

    pub(crate) fn item(name: &str, qty: i64, price: i64, vat: Vat) -> Item {
        Item {
            receipt_discount: Default::default(),
            line: Line {
                name: name.into(),
                quantity: Quantity(qty),
                price: Money(price),
                vat,
                payment_subject: PaymentSubject::Commodity,
                calculation_method: CalculationMethod::FullPay,
                barcode: None,
                class_code: None,
                package_code: None,
                marking: vec![],
                unit: Default::default(),
                discount: Default::default(),
                agent: None,
            },
            total: crate::domain::money::line_total(Money(price), Quantity(qty)).unwrap(),
        }
    }

    #[test]
    fn vat_is_the_included_fraction_rounded_half_away() {
        assert_eq!(vat_included(Money(12000), 20), Money(2000));
        // 100.00 × 20/120 = 16.666… → 16.67
        assert_eq!(vat_included(Money(10000), 20), Money(1667));
        // 0.11 × 10/110 = 0.01
        assert_eq!(vat_included(Money(11), 10), Money(1));
        // 0.21 × 10/110 = 0.0190… → 0.02; 0.05 × 5/105 = 0.00238 → 0.00
        assert_eq!(vat_included(Money(21), 10), Money(2));
        assert_eq!(vat_included(Money(5), 5), Money(0));
        assert_eq!(vat_included(Money(-10000), 20), Money(-1667));
        assert_eq!(vat_included(Money(10000), 0), Money(0));
    }

    #[test]
    fn breakdown_sums_line_totals_per_rate_then_rounds_once() {
        let items = [
            item("a", 1000, 3333, Vat::Vat20),
            item("b", 1000, 3333, Vat::Vat20),
            item("c", 2000, 4550, Vat::Vat10),
            item("d", 1000, 999, Vat::None),
            item("e", 1000, 100, Vat::Vat120),
        ];
        let got = vat_breakdown(&items);
        assert_eq!(
            got,
            [
                VatLine {
                    vat: Vat::None,
                    base: Money(999),
                    amount: Money(0)
                },
                VatLine {
                    vat: Vat::Vat10,
                    base: Money(9100),
                    amount: Money(827)
                },
                // 66.66 × 20/120 = 11.11; per-line rounding would give 5.56 × 2 = 11.12.
                VatLine {
                    vat: Vat::Vat20,
                    base: Money(6666),
                    amount: Money(1111)
                },
                VatLine {
                    vat: Vat::Vat120,
                    base: Money(100),
                    amount: Money(17)
                },
            ]
        );
    }

    #[test]
    fn wrapping_and_columns() {
        assert_eq!(wrap("Молоко 3,2% 1 л", 8), ["Молоко", "3,2% 1 л"]);
        assert_eq!(wrap("абвгдежзий", 4), ["абвг", "дежз", "ий"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(two_columns("ИТОГ", "=5.00", 12), ["ИТОГ   =5.00"]);
        assert_eq!(
            two_columns("ДЛИННОЕ", "1.00", 10),
            ["ДЛИННОЕ", "      1.00"]
        );
    }

    fn sample() -> Receipt {
        Receipt {
            correction: None,
            marking_checks: vec![],
            discount: Default::default(),
            original_date: None,
            kind: ReceiptKind::Sale,
            tax_system: TaxSystem::Common,
            currency: "RUB".into(),
            items: vec![
                item("Хлеб ржаной", 2000, 4550, Vat::Vat10),
                item("Сыр, весовой", 350, 89900, Vat::Vat22),
            ],
            payments: vec![Payment {
                kind: PaymentKind::Cash,
                amount: Money(50000),
            }],
            total: Money(40565),
            change: Money(9435),
            cashier: None,
            buyer: None,
            uz: None,
        }
    }

    #[test]
    fn receipt_starts_with_init_and_table_and_ends_with_the_cut() {
        let r = sample();
        let header = vec!["ООО Ромашка".to_owned()];
        let doc = ReceiptPrint {
            slip: false,
            header: &header,
            number: 7,
            receipt: &r,
            local_time: "01.02.2026 10:00".into(),
            fiscal: None,
            qr: "https://example.test/r/abc",
            qr_caption: "Чек не фискализирован",
            copy: true,
            footer: &[],
        };
        let bytes = receipt(&doc, &LayoutOptions::default());
        assert!(bytes.starts_with(&[0x1B, 0x40, 0x1B, 0x74, 17]));
        assert!(bytes.ends_with(&[0x1D, 0x56, 66, 0]));
        let text = TextEncoding::Cp866.decode(&bytes);
        assert_eq!(text.matches("КОПИЯ").count(), 2);
        for want in [
            "Хлеб ржаной",
            "2.000 шт x 45.50 = 91.00",
            "=405.65",
            "СДАЧА",
            "94.35",
            "НАЛИЧНЫМИ",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
        assert!(!text.contains("ФН"), "no fiscal block when not fiscalized");
    }

    #[test]
    fn an_uzbek_receipt_prints_the_fiscal_module_block_and_the_soliq_qr() {
        use crate::domain::uz::{UzReceipt, UzReceiptType};
        let mut r = sample();
        r.uz = Some(UzReceipt {
            receipt_type: UzReceiptType::Order,
            refund_of: None,
            lines: vec![],
            pos_number: None,
            pos_time: "2026-11-29 10:00:00".into(),
            card_type: None,
            ppt_id: None,
            qr_payment: None,
            open_cashbox: false,
        });
        let f = FiscalAttributes {
            fiscal_document_number: 643,
            fiscal_sign: "248429044289".into(),
            fiscal_drive_number: "UZ170703100189".into(),
            kkt_reg_id: "UZ170703100189".into(),
            shift_number: 0,
            receipt_number_in_shift: 0,
            date_time: chrono::NaiveDate::from_ymd_opt(2020, 5, 18)
                .unwrap()
                .and_hms_opt(22, 14, 3)
                .unwrap(),
            ofd_receipt_url: None,
        };
        let qr =
            "https://ofd.soliq.uz/check?t=UZ170703100189&r=643&c=20200518221403&s=248429044289";
        let print = |r: &Receipt| {
            let doc = ReceiptPrint {
                slip: false,
                header: &[],
                number: 7,
                receipt: r,
                local_time: "18.05.2020 22:14".into(),
                fiscal: Some(&f),
                qr,
                qr_caption: "",
                copy: false,
                footer: &[],
            };
            receipt(&doc, &LayoutOptions::default())
        };
        let bytes = print(&r);
        let text = TextEncoding::Cp866.decode(&bytes);
        for want in [
            "UZ170703100189",
            "643",
            "248429044289",
            "18.05.2020 22:14:03",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
        assert!(!text.contains("СМЕНА"), "no Russian shift rows");
        let has_qr = |b: &[u8]| b.windows(qr.len()).any(|w| w == qr.as_bytes());
        assert!(has_qr(&bytes), "the Soliq link is printed as the QR");
        // An advance receipt: neither QR nor fiscal sign (Order.md).
        r.uz.as_mut().unwrap().receipt_type = UzReceiptType::Prepaid;
        let bytes = print(&r);
        assert!(!has_qr(&bytes));
        assert!(!TextEncoding::Cp866.decode(&bytes).contains("248429044289"));
    }

    #[test]
    fn blocks_print_text_barcode_and_qr_with_their_styles() {
        use crate::sim::devices::printer::model::{Event, PrinterModel};
        let list = [
            Block {
                kind: BlockKind::Text,
                data: "Keyingi xarid uchun 5% chegirma".into(),
                bold: true,
                width: 2,
                height: 2,
                align: Align::Center,
                qr_size: None,
                cut: false,
            },
            Block {
                kind: BlockKind::Barcode,
                data: "23423423".into(),
                bold: false,
                width: 1,
                height: 1,
                align: Align::Center,
                qr_size: None,
                cut: false,
            },
            Block {
                kind: BlockKind::Qr,
                data: "https://example.uz/promo".into(),
                bold: false,
                width: 1,
                height: 1,
                align: Align::Center,
                qr_size: Some(6),
                cut: false,
            },
        ];
        let bytes = blocks(&list, &LayoutOptions::default());
        // ESC E 1 (bold) and GS ! 0x11 (double width and height) before the text.
        assert!(bytes.windows(3).any(|w| w == [0x1B, b'E', 1]));
        assert!(bytes.windows(3).any(|w| w == [0x1D, b'!', 0x11]));
        let mut printer = PrinterModel::default();
        printer.feed(&bytes);
        let out = printer.output();
        let doc = &out.documents[0];
        assert!(doc.text().contains("Keyingi xarid"), "{}", doc.text());
        assert_eq!(doc.qr, ["https://example.uz/promo"]);
        assert!(out.events.contains(&Event::Barcode {
            symbology: 73,
            data: "{B23423423".into()
        }));
    }

    /// `r` printed as a plain receipt (no header, fiscal block or QR), as text.
    fn plain_text(r: &Receipt) -> String {
        let doc = ReceiptPrint {
            slip: false,
            header: &[],
            number: 1,
            receipt: r,
            local_time: "01.02.2026 10:00".into(),
            fiscal: None,
            qr: "",
            qr_caption: "",
            copy: false,
            footer: &[],
        };
        TextEncoding::Cp866.decode(&receipt(&doc, &LayoutOptions::default()))
    }

    #[test]
    fn a_marked_good_shows_whether_its_codes_were_checked() {
        use crate::domain::receipt::{IndustryRequisite, MarkingCheck};
        let mut r = sample();
        r.items[0].line.marking = vec!["010460043993125621JgXJ5.T\u{1d}93a1b2".into()];
        let check = |requisite: bool| MarkingCheck {
            item: 0,
            code: r.items[0].line.marking[0].clone(),
            requisite: requisite.then(|| IndustryRequisite {
                foiv_id: "030".into(),
                doc_date: "21.11.2023".into(),
                doc_number: "1944".into(),
                value: "UUID=x&Time=1".into(),
            }),
            checked_by: "online".into(),
        };
        assert_eq!(marking_sign(&r, 0), Some("[М]"), "no check at all");
        assert_eq!(marking_sign(&r, 1), None, "no codes");
        r.marking_checks = vec![check(false)];
        assert_eq!(marking_sign(&r, 0), Some("[М]"), "unreachable");
        r.marking_checks = vec![check(true)];
        assert_eq!(marking_sign(&r, 0), Some("[М+]"));
        let text = plain_text(&r);
        assert!(text.contains("1. [М+] Хлеб ржаной"), "{text}");
        assert!(text.contains("2. Сыр, весовой"), "{text}");
    }

    #[test]
    fn zero_rate_lines_show_their_turnover_and_discounts_show_on_paper() {
        let mut r = sample();
        r.items[1].line.vat = Vat::Vat0;
        r.items[1].line.unit = crate::domain::receipt::Unit::Kilogram;
        r.items[0].line.discount = Money(100);
        r.items[0].total = Money(9000);
        r.discount = Money(65);
        r.items[1].receipt_discount = Money(65);
        r.items[1].total = Money(31400);
        r.total = Money(40400);
        r.change = Money(9600);
        let text = plain_text(&r);
        for want in [
            "2.000 шт x 45.50 = 91.00",
            "0.350 кг x 899.00 = 314.65",
            "-1.00",
            "-0.65",
            "СКИДКА НА ЧЕК",
            "СУММА С НДС 0%",
            "314.00",
            "=404.00",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
        let zero_line = text.lines().find(|l| l.contains("СУММА С НДС 0%")).unwrap();
        assert!(zero_line.trim_end().ends_with("314.00"), "{zero_line}");
    }
}
