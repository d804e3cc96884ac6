//! The device side of the link discipline, pure: answers ENQ (NAK when idle,
//! ACK and the reply again while one is unacknowledged), NAKs bad frames,
//! hands good frames up, and recognises a retransmitted frame.
//!
//! Executing exactly once: a host that lost our ACK or reply may send the
//! same frame again (pyshtrih resends without asking). While the reply to a
//! frame is unacknowledged, the byte-identical frame is answered with that
//! reply instead of being executed again. Once the host ACKs a reply, an
//! identical frame is a new command (two equal sale lines are legal), and a
//! host that follows the discipline always collects a pending reply via ENQ
//! before sending a new frame.

use crate::devices::shtrih::frame::{ACK, ENQ, Frame, FrameParser, NAK, Parsed};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceEvent {
    /// Bytes to send to the host.
    Write(Vec<u8>),
    /// A good frame: decide with [`DeviceLink::accept`] or NAK it.
    Frame(Frame),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// New: ACK it, execute it, send the reply via [`DeviceLink::replied`].
    Execute,
    /// A retransmission of the frame whose reply is pending: send these bytes
    /// (ACK and the same reply), execute nothing.
    Repeat(Vec<u8>),
}

#[derive(Clone, Debug)]
struct Pending {
    request: Frame,
    reply: Vec<u8>,
}

#[derive(Clone, Debug, Default)]
pub struct DeviceLink {
    parser: FrameParser,
    pending: Option<Pending>,
}

impl DeviceLink {
    pub fn new() -> DeviceLink {
        DeviceLink::default()
    }

    /// True while a reply waits for the host's ACK.
    pub fn reply_pending(&self) -> bool {
        self.pending.is_some()
    }

    pub fn in_frame(&self) -> bool {
        self.parser.in_frame()
    }

    /// The line went quiet mid-frame: drop the partial frame.
    pub fn on_silence(&mut self) {
        self.parser.reset();
    }

    pub fn on_byte(&mut self, b: u8) -> Option<DeviceEvent> {
        match self.parser.push(b) {
            Parsed::More => None,
            Parsed::Outside(ENQ) => Some(DeviceEvent::Write(match &self.pending {
                Some(p) => {
                    let mut v = vec![ACK];
                    v.extend_from_slice(&p.reply);
                    v
                }
                None => vec![NAK],
            })),
            Parsed::Outside(ACK) => {
                self.pending = None;
                None
            }
            // NAK (the host got a bad reply: it will ENQ) and noise.
            Parsed::Outside(_) => None,
            Parsed::BadFrame => Some(DeviceEvent::Write(vec![NAK])),
            Parsed::Frame(f) => Some(DeviceEvent::Frame(f)),
        }
    }

    pub fn accept(&mut self, frame: &Frame) -> Accept {
        match &self.pending {
            Some(p) if p.request == *frame => {
                let mut v = vec![ACK];
                v.extend_from_slice(&p.reply);
                Accept::Repeat(v)
            }
            _ => {
                self.pending = None;
                Accept::Execute
            }
        }
    }

    /// Records the reply sent for `request`, kept until the host ACKs it.
    pub fn replied(&mut self, request: Frame, reply: Vec<u8>) {
        self.pending = Some(Pending { request, reply });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enq_is_nak_when_idle_and_the_reply_again_while_pending() {
        let mut l = DeviceLink::new();
        assert_eq!(l.on_byte(ENQ), Some(DeviceEvent::Write(vec![NAK])));
        let req = Frame::new(0x10, vec![1, 0, 0, 0]);
        let mut got = None;
        for b in req.encode() {
            got = l.on_byte(b).or(got);
        }
        assert_eq!(got, Some(DeviceEvent::Frame(req.clone())));
        assert_eq!(l.accept(&req), Accept::Execute);
        let reply = Frame::new(0x10, vec![0, 1]).encode();
        l.replied(req.clone(), reply.clone());
        let mut again = vec![ACK];
        again.extend(&reply);
        assert_eq!(l.on_byte(ENQ), Some(DeviceEvent::Write(again.clone())));
        // The same frame again while unacknowledged: repeat, don't execute.
        assert_eq!(l.accept(&req), Accept::Repeat(again));
        assert_eq!(l.on_byte(ACK), None);
        assert!(!l.reply_pending());
        // After the ACK the same frame is a new command.
        assert_eq!(l.accept(&req), Accept::Execute);
    }

    #[test]
    fn bad_frames_are_naked_and_partial_frames_dropped_on_silence() {
        let mut l = DeviceLink::new();
        let mut bad = Frame::new(0x10, vec![1, 0, 0, 0]).encode();
        *bad.last_mut().unwrap() ^= 0x40;
        let events: Vec<_> = bad.iter().filter_map(|&b| l.on_byte(b)).collect();
        assert_eq!(events, vec![DeviceEvent::Write(vec![NAK])]);
        l.on_byte(0x02);
        l.on_byte(0x05);
        assert!(l.in_frame());
        l.on_silence();
        assert_eq!(l.on_byte(ENQ), Some(DeviceEvent::Write(vec![NAK])));
    }
}
