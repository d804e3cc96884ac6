//! FFD TLVs as the register takes them in `FF0C` (receipt) and `FF4D`
//! (the last item): tag u16 LE, length u16 LE, value. Pure, both ways: the
//! driver builds them, the emulator parses and keeps them.
//!
//! Encoding per the vendor driver (shtrih-m/javapos_shtrih
//! `fp/TLVWriter.java`, `fp/TLVTag.java`; `shared/spec/shtrih-m-ffd12.md`
//! §3.2): strings in CP866; INNs (1203, 1226, 1228) fixed at 12 characters,
//! space-padded; bytes and bit masks (1057, 1222, 2108) one byte; STLV = the
//! child TLVs concatenated.

/// FFD tag numbers fiscald sends to the register.
pub mod tag {
    /// Buyer's phone or email.
    pub const BUYER_CONTACT: u16 = 1008;
    /// Cashier's name.
    pub const CASHIER: u16 = 1021;
    /// Agent kinds of the receipt (bit mask).
    pub const AGENT_SIGN: u16 = 1057;
    /// Supplier's phone (inside 1224).
    pub const SUPPLIER_PHONE: u16 = 1171;
    /// Cashier's INN.
    pub const CASHIER_INN: u16 = 1203;
    /// Agent kind of a line (bit mask).
    pub const ITEM_AGENT_SIGN: u16 = 1222;
    /// Supplier data (STLV: 1225, 1171).
    pub const SUPPLIER_DATA: u16 = 1224;
    /// Supplier's name (inside 1224).
    pub const SUPPLIER_NAME: u16 = 1225;
    /// Supplier's INN.
    pub const SUPPLIER_INN: u16 = 1226;
    /// Buyer's name.
    pub const BUYER_NAME: u16 = 1227;
    /// Buyer's INN.
    pub const BUYER_INN: u16 = 1228;
    /// Unit of measure of a line.
    pub const UNIT: u16 = 2108;
}

/// Largest TLV one `FF0C`/`FF4D` carries (J `FSWriteTLV`: ≤ 250 bytes).
pub const MAX_TLV_BYTES: usize = 250;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

impl Tlv {
    /// A CP866 string.
    pub fn string(tag: u16, text: &str) -> Tlv {
        Tlv {
            tag,
            value: encode_cp866(text),
        }
    }

    /// A fixed-width string (INNs: 12), space-padded on the right.
    pub fn fixed(tag: u16, text: &str, width: usize) -> Tlv {
        let mut value = encode_cp866(text);
        value.resize(width.max(value.len()), b' ');
        Tlv { tag, value }
    }

    pub fn byte(tag: u16, b: u8) -> Tlv {
        Tlv {
            tag,
            value: vec![b],
        }
    }

    /// A structure of child TLVs.
    pub fn stlv(tag: u16, children: &[Tlv]) -> Tlv {
        Tlv {
            tag,
            value: children.iter().flat_map(Tlv::encode).collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.value.len());
        out.extend_from_slice(&self.tag.to_le_bytes());
        out.extend_from_slice(&(self.value.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.value);
        out
    }

    /// Every TLV in `b`, in order; `None` if `b` is not a whole number of TLVs.
    pub fn parse_all(mut b: &[u8]) -> Option<Vec<Tlv>> {
        let mut out = Vec::new();
        while !b.is_empty() {
            if b.len() < 4 {
                return None;
            }
            let tag = u16::from_le_bytes([b[0], b[1]]);
            let len = usize::from(u16::from_le_bytes([b[2], b[3]]));
            let value = b.get(4..4 + len)?.to_vec();
            b = &b[4 + len..];
            out.push(Tlv { tag, value });
        }
        Some(out)
    }

    /// The value as CP866 text, trailing spaces trimmed.
    pub fn text(&self) -> String {
        encoding_rs::IBM866
            .decode_without_bom_handling(&self.value)
            .0
            .trim_end()
            .to_string()
    }

    /// The children of an STLV.
    pub fn children(&self) -> Vec<Tlv> {
        Tlv::parse_all(&self.value).unwrap_or_default()
    }
}

/// The first TLV with `tag` in `tlvs`, looking inside STLVs too.
pub fn find(tlvs: &[Tlv], tag: u16) -> Option<Tlv> {
    tlvs.iter().find(|t| t.tag == tag).cloned().or_else(|| {
        tlvs.iter()
            .filter(|t| t.tag == tag::SUPPLIER_DATA)
            .find_map(|t| find(&t.children(), tag))
    })
}

/// CP866; a character it lacks becomes `?`.
pub fn encode_cp866(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut buf = [0u8; 4];
    for c in text.chars() {
        let (bytes, _, bad) = encoding_rs::IBM866.encode(c.encode_utf8(&mut buf));
        if bad || bytes.len() != 1 {
            out.push(b'?');
        } else {
            out.push(bytes[0]);
        }
    }
    out
}

/// UNIXTIME of a date (u32 LE seconds): J builds it at 00:00 UTC of the
/// day ("24122017" → `00 EE 3E 5A`, shtrih-m-ffd12.md §3.2).
pub fn date(tag: u16, d: chrono::NaiveDate) -> Tlv {
    let secs = d
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp();
    Tlv {
        tag,
        value: (secs as u32).to_le_bytes().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_vendor_examples() {
        // shtrih-m-ffd12.md §3.2: FF0C, 1008 = "a@b.ru" → F0 03 06 00 61 40 62 2E 72 75
        assert_eq!(
            Tlv::string(tag::BUYER_CONTACT, "a@b.ru").encode(),
            [0xF0, 0x03, 0x06, 0x00, 0x61, 0x40, 0x62, 0x2E, 0x72, 0x75]
        );
        // §3.4: FF4D, 2108 = 11 (kg) → 3C 08 01 00 0B
        assert_eq!(Tlv::byte(tag::UNIT, 11).encode(), [0x3C, 0x08, 1, 0, 0x0B]);
        let inn = Tlv::fixed(tag::SUPPLIER_INN, "7701234567", 12);
        assert_eq!(inn.value, b"7701234567  ");
        assert_eq!(inn.text(), "7701234567");
        let s = Tlv::stlv(
            tag::SUPPLIER_DATA,
            &[
                Tlv::string(tag::SUPPLIER_NAME, "ООО Ромашка"),
                Tlv::string(tag::SUPPLIER_PHONE, "+79001234567"),
            ],
        );
        let back = Tlv::parse_all(&s.encode()).unwrap();
        assert_eq!(back, vec![s.clone()]);
        assert_eq!(
            find(&back, tag::SUPPLIER_NAME).unwrap().text(),
            "ООО Ромашка"
        );
        assert_eq!(Tlv::string(1021, "Иванов").value[0], 0x88, "CP866 И");
        assert_eq!(Tlv::parse_all(&[1, 2, 5, 0, 1]), None);
    }

    #[test]
    fn a_date_is_unixtime_at_midnight_utc() {
        let d = date(1178, chrono::NaiveDate::from_ymd_opt(2017, 12, 24).unwrap());
        assert_eq!(d.value, [0x00, 0xEE, 0x3E, 0x5A]);
    }
}
