//! Framing: `STX LEN CMD[1|2] DATA LRC`, the LRC, and an incremental parser
//! that finds frames in a byte stream (skipping noise before an STX). Pure.

/// Start of a frame.
pub const STX: u8 = 0x02;
/// "Are you there / is a reply pending?"
pub const ENQ: u8 = 0x05;
/// Positive acknowledgement.
pub const ACK: u8 = 0x06;
/// Negative acknowledgement.
pub const NAK: u8 = 0x15;

/// XOR of every byte (LEN and the body).
pub fn lrc(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |acc, b| acc ^ b)
}

/// One decoded frame: a command code (`0xFFxx` for two-byte codes) and what
/// follows it (the request data, or ERR and the reply payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub command: u16,
    pub data: Vec<u8>,
}

impl Frame {
    pub fn new(command: u16, data: Vec<u8>) -> Frame {
        Frame { command, data }
    }

    /// The body (LEN counts it): the command byte(s) then the data.
    pub fn body(&self) -> Vec<u8> {
        let mut body = command_bytes(self.command);
        body.extend_from_slice(&self.data);
        body
    }

    /// The frame on the wire. Panics only if the body exceeds 255 bytes, which
    /// no encoder in this crate produces (the longest text field is 48 bytes).
    pub fn encode(&self) -> Vec<u8> {
        encode_body(&self.body())
    }

    /// Splits a body (command then data) into a frame.
    pub fn from_body(body: &[u8]) -> Option<Frame> {
        match body {
            [0xFF, sub, rest @ ..] => Some(Frame::new(0xFF00 | u16::from(*sub), rest.to_vec())),
            [0xFF] | [] => None,
            [cmd, rest @ ..] => Some(Frame::new(u16::from(*cmd), rest.to_vec())),
        }
    }
}

/// `0x85` → `[0x85]`, `0xFF01` → `[0xFF, 0x01]`.
pub fn command_bytes(command: u16) -> Vec<u8> {
    if command > 0xFF {
        vec![(command >> 8) as u8, command as u8]
    } else {
        vec![command as u8]
    }
}

/// `STX LEN body LRC`.
pub fn encode_body(body: &[u8]) -> Vec<u8> {
    let len = u8::try_from(body.len()).expect("a Shtrih-M frame body is at most 255 bytes");
    let mut out = Vec::with_capacity(body.len() + 3);
    out.push(STX);
    out.push(len);
    out.extend_from_slice(body);
    out.push(lrc(&out[1..]));
    out
}

/// What the parser made of one byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing complete yet.
    More,
    /// A byte outside any frame (not an STX): noise, or a control byte.
    Outside(u8),
    /// A whole frame with a good LRC.
    Frame(Frame),
    /// A whole frame whose LRC did not match (or whose body was empty).
    BadFrame,
}

#[derive(Clone, Debug, Default)]
enum State {
    #[default]
    Idle,
    Len,
    Body {
        len: usize,
        body: Vec<u8>,
    },
}

/// An incremental frame parser. Feed it bytes one at a time; call
/// [`FrameParser::reset`] when the line went quiet mid-frame (an inter-byte
/// timeout), so the next STX starts afresh.
#[derive(Clone, Debug, Default)]
pub struct FrameParser {
    state: State,
}

impl FrameParser {
    pub fn new() -> FrameParser {
        FrameParser::default()
    }

    /// True while a frame has started but not ended.
    pub fn in_frame(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    pub fn push(&mut self, byte: u8) -> Parsed {
        match std::mem::take(&mut self.state) {
            State::Idle if byte == STX => {
                self.state = State::Len;
                Parsed::More
            }
            State::Idle => Parsed::Outside(byte),
            State::Len => {
                self.state = State::Body {
                    len: usize::from(byte),
                    body: Vec::with_capacity(usize::from(byte) + 1),
                };
                Parsed::More
            }
            State::Body { len, mut body } => {
                if body.len() < len {
                    body.push(byte);
                    self.state = State::Body { len, body };
                    return Parsed::More;
                }
                // `byte` is the LRC.
                let expected = lrc(&body) ^ (len as u8);
                if expected != byte {
                    return Parsed::BadFrame;
                }
                match Frame::from_body(&body) {
                    Some(frame) => Parsed::Frame(frame),
                    None => Parsed::BadFrame,
                }
            }
        }
    }

    /// Feeds a slice and returns every outcome other than `More`.
    pub fn push_all(&mut self, bytes: &[u8]) -> Vec<Parsed> {
        bytes
            .iter()
            .map(|&b| self.push(b))
            .filter(|p| *p != Parsed::More)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples_encode_exactly() {
        assert_eq!(Frame::new(0xFC, vec![]).encode(), [0x02, 0x01, 0xFC, 0xFD]);
        assert_eq!(
            Frame::new(0x10, vec![1, 0, 0, 0]).encode(),
            [0x02, 0x05, 0x10, 0x01, 0x00, 0x00, 0x00, 0x14]
        );
        assert_eq!(
            Frame::new(0xFF01, vec![0x1E, 0, 0, 0]).encode(),
            [0x02, 0x06, 0xFF, 0x01, 0x1E, 0x00, 0x00, 0x00, 0xE6]
        );
        assert_eq!(
            Frame::new(0x88, vec![0x55]).encode(),
            [0x02, 0x02, 0x88, 0x55, 0xDF]
        );
    }

    #[test]
    fn parser_resyncs_after_noise_and_a_bad_frame() {
        let mut p = FrameParser::new();
        let mut stream = vec![0xAA, 0x06, 0x00];
        let mut bad = Frame::new(0x10, vec![1, 2]).encode();
        *bad.last_mut().unwrap() ^= 0xFF;
        stream.extend(&bad);
        stream.extend(Frame::new(0xFF0A, vec![0, 3]).encode());
        let out = p.push_all(&stream);
        assert_eq!(
            out,
            vec![
                Parsed::Outside(0xAA),
                Parsed::Outside(0x06),
                Parsed::Outside(0x00),
                Parsed::BadFrame,
                Parsed::Frame(Frame::new(0xFF0A, vec![0, 3])),
            ]
        );
        assert!(!p.in_frame());
    }

    #[test]
    fn reset_abandons_a_partial_frame() {
        let mut p = FrameParser::new();
        let f = Frame::new(0x11, vec![1, 0, 0, 0]).encode();
        p.push_all(&f[..3]);
        assert!(p.in_frame());
        p.reset();
        assert_eq!(
            p.push_all(&f),
            vec![Parsed::Frame(Frame::new(0x11, vec![1, 0, 0, 0]))]
        );
    }

    proptest! {
        #[test]
        fn any_frame_round_trips_after_noise(
            cmd in prop_oneof![0u16..0xFF, 0xFF00u16..=0xFFFF],
            data in proptest::collection::vec(any::<u8>(), 0..200),
            noise in proptest::collection::vec(any::<u8>().prop_filter("no STX", |b| *b != STX), 0..20),
        ) {
            let frame = Frame::new(cmd, data);
            let mut p = FrameParser::new();
            let mut stream = noise.clone();
            stream.extend(frame.encode());
            let out = p.push_all(&stream);
            prop_assert_eq!(out.len(), noise.len() + 1);
            prop_assert_eq!(out.last().unwrap(), &Parsed::Frame(frame));
        }

        #[test]
        fn a_flipped_byte_is_never_accepted(
            data in proptest::collection::vec(any::<u8>(), 1..60),
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let frame = Frame::new(0x80, data);
            let mut bytes = frame.encode();
            // Flip a body or LRC byte (not STX/LEN, which change the framing).
            let i = 2 + at.index(bytes.len() - 2);
            bytes[i] ^= flip;
            let mut p = FrameParser::new();
            let out = p.push_all(&bytes);
            prop_assert!(!out.contains(&Parsed::Frame(frame)));
        }
    }
}
