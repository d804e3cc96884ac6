//! FFD TLVs as the register takes them in FF0C/FF4D/FF61 (pure).
//!
//! Layout (javapos_shtrih `fp/TLVWriter.java`, shtrih-m-ffd12.md §3.2): tag
//! u16 LE, length u16 LE, value. Strings are CP866; integers little-endian at
//! the tag's size; UNIXTIME is u32 LE seconds; an STLV's value is its child
//! TLVs concatenated.

use chrono::NaiveDate;

/// One TLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

impl Tlv {
    pub fn bytes(tag: u16, value: Vec<u8>) -> Tlv {
        Tlv { tag, value }
    }

    /// A string tag, CP866 (unmappable characters become `?`).
    pub fn string(tag: u16, text: &str) -> Tlv {
        let (bytes, _, _) = encoding_rs::IBM866.encode(text);
        Tlv::bytes(tag, bytes.into_owned())
    }

    pub fn byte(tag: u16, v: u8) -> Tlv {
        Tlv::bytes(tag, vec![v])
    }

    /// UNIXTIME of a date: J builds it at 00:00 UTC of the day (§3.2).
    pub fn date(tag: u16, d: NaiveDate) -> Tlv {
        let secs = d
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
            .timestamp();
        Tlv::bytes(tag, (secs as u32).to_le_bytes().to_vec())
    }

    pub fn stlv(tag: u16, children: &[Tlv]) -> Tlv {
        Tlv::bytes(tag, encode(children))
    }

    /// The value as CP866 text.
    pub fn text(&self) -> String {
        let (t, _) = encoding_rs::IBM866.decode_without_bom_handling(&self.value);
        t.into_owned()
    }

    /// The children of an STLV.
    pub fn children(&self) -> Option<Vec<Tlv>> {
        decode(&self.value)
    }
}

pub fn encode(list: &[Tlv]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in list {
        out.extend_from_slice(&t.tag.to_le_bytes());
        out.extend_from_slice(&(t.value.len() as u16).to_le_bytes());
        out.extend_from_slice(&t.value);
    }
    out
}

/// Splits concatenated TLVs; `None` when they do not add up.
pub fn decode(mut b: &[u8]) -> Option<Vec<Tlv>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 4 {
            return None;
        }
        let tag = u16::from_le_bytes([b[0], b[1]]);
        let len = u16::from_le_bytes([b[2], b[3]]) as usize;
        let value = b.get(4..4 + len)?.to_vec();
        out.push(Tlv { tag, value });
        b = &b[4 + len..];
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendor_examples_encode_byte_for_byte() {
        // shtrih-m-ffd12.md §3.2: FF0C, 1008 = "a@b.ru" → F0 03 06 00 61 40 62 2E 72 75
        assert_eq!(
            encode(&[Tlv::string(1008, "a@b.ru")]),
            [0xF0, 0x03, 0x06, 0x00, 0x61, 0x40, 0x62, 0x2E, 0x72, 0x75]
        );
        // UNIXTIME: "24122017" → 00 EE 3E 5A
        let d = Tlv::date(1178, NaiveDate::from_ymd_opt(2017, 12, 24).unwrap());
        assert_eq!(d.value, [0x00, 0xEE, 0x3E, 0x5A]);
        let s = Tlv::stlv(1174, &[d.clone(), Tlv::string(1179, "№ 5")]);
        let back = decode(&encode(std::slice::from_ref(&s))).unwrap();
        assert_eq!(back, vec![s.clone()]);
        assert_eq!(back[0].children().unwrap()[1].text(), "№ 5");
        assert_eq!(decode(&[0x01, 0x00, 0x05]), None);
    }
}
