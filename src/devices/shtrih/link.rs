//! The host side of the link discipline (protocol note §2) as a pure state
//! machine: bytes and timeouts in, bytes to write and how long to wait out.
//! The driver is a thin loop that performs each [`Step`] on a port.
//!
//! One exchange = one command:
//! 1. `ENQ` (up to `enq_tries`): `NAK` = idle, send the frame; `ACK` = a stale
//!    reply is pending: read it, `ACK` it, then send the frame; anything else
//!    is noise: drain and try again.
//! 2. After the frame: `ACK` = it executes, the reply follows; `NAK` = resend
//!    (up to `send_tries`); silence or noise = ask with `ENQ` rather than
//!    resend blindly (`ACK` → the reply follows, `NAK` → it never arrived:
//!    resend).
//! 3. The reply: good LRC → `ACK`, done. Bad LRC → `NAK`, `ENQ`, expect `ACK`
//!    and the reply again (up to `bad_replies`). Silence → `ENQ` to ask for it.

use super::frame::{ACK, ENQ, Frame, FrameParser, NAK, Parsed};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkLimits {
    /// Wait for the first byte of an answer (ENQ answer, ACK, reply start).
    pub reply_timeout: Duration,
    /// Wait between two bytes of one frame.
    pub byte_timeout: Duration,
    pub enq_tries: u32,
    pub send_tries: u32,
    pub bad_replies: u32,
    /// `ENQ` queries after silence while waiting for an ACK or a reply.
    pub queries: u32,
    /// Noise bytes tolerated in one exchange before giving up.
    pub max_noise: u32,
}

impl Default for LinkLimits {
    fn default() -> LinkLimits {
        LinkLimits {
            reply_timeout: Duration::from_secs(3),
            byte_timeout: Duration::from_millis(100),
            enq_tries: 3,
            send_tries: 10,
            bad_replies: 10,
            queries: 3,
            max_noise: 4096,
        }
    }
}

/// What to do next: drop unread input if `discard`, write `write`, then `then`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub discard: bool,
    pub write: Vec<u8>,
    pub then: Then,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Then {
    /// Wait at most this long for more bytes; report them with
    /// [`HostLink::on_bytes`], or silence with [`HostLink::on_timeout`].
    Wait(Duration),
    /// The reply arrived (after `write`, its ACK, is sent).
    Done(Frame),
    /// The exchange failed.
    Failed(LinkFailure),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkFailure {
    #[error("no answer to ENQ after {0} tries")]
    NoAnswer(u32),
    #[error("the register NAKed the command {0} times")]
    TooManyNaks(u32),
    #[error("{0} replies in a row had a bad checksum")]
    BadReplies(u32),
    #[error("no reply after {0} queries (the command may have executed)")]
    NoReply(u32),
    #[error("the register lost its reply after a NAK (the command may have executed)")]
    ReplyLost,
    #[error("line noise: {0} unexpected bytes")]
    Noise(u32),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    Enq,
    StaleReply,
    AwaitAck,
    Query,
    Reply,
    AfterNak,
    Finished,
}

/// One command exchange, host side.
#[derive(Debug)]
pub struct HostLink {
    frame: Vec<u8>,
    limits: LinkLimits,
    state: State,
    parser: FrameParser,
    enqs: u32,
    sends: u32,
    bad: u32,
    queries: u32,
    noise: u32,
}

impl HostLink {
    /// Starts an exchange for `frame`; perform the returned step first.
    pub fn start(frame: &Frame, limits: LinkLimits) -> (HostLink, Step) {
        let link = HostLink {
            frame: frame.encode(),
            limits,
            state: State::Enq,
            parser: FrameParser::new(),
            enqs: 1,
            sends: 0,
            bad: 0,
            queries: 0,
            noise: 0,
        };
        let step = Step {
            discard: true,
            write: vec![ENQ],
            then: Then::Wait(link.limits.reply_timeout),
        };
        (link, step)
    }

    fn wait(&self, write: Vec<u8>) -> Step {
        let t = if self.parser.in_frame() {
            self.limits.byte_timeout
        } else {
            self.limits.reply_timeout
        };
        Step {
            discard: false,
            write,
            then: Then::Wait(t),
        }
    }

    fn fail(&mut self, f: LinkFailure) -> Step {
        self.state = State::Finished;
        Step {
            discard: false,
            write: vec![],
            then: Then::Failed(f),
        }
    }

    fn send_frame(&mut self, mut write: Vec<u8>) -> Step {
        if self.sends >= self.limits.send_tries {
            return self.fail(LinkFailure::TooManyNaks(self.sends));
        }
        self.sends += 1;
        self.state = State::AwaitAck;
        self.parser.reset();
        write.extend_from_slice(&self.frame);
        self.wait(write)
    }

    fn retry_enq(&mut self) -> Step {
        if self.enqs >= self.limits.enq_tries {
            return self.fail(LinkFailure::NoAnswer(self.enqs));
        }
        self.enqs += 1;
        self.state = State::Enq;
        self.parser.reset();
        Step {
            discard: true,
            write: vec![ENQ],
            then: Then::Wait(self.limits.reply_timeout),
        }
    }

    fn query(&mut self) -> Step {
        if self.queries >= self.limits.queries {
            return self.fail(LinkFailure::NoReply(self.queries));
        }
        self.queries += 1;
        self.state = State::Query;
        self.parser.reset();
        Step {
            discard: true,
            write: vec![ENQ],
            then: Then::Wait(self.limits.reply_timeout),
        }
    }

    /// Bytes arrived. Bytes after a finished exchange are ignored (the next
    /// exchange drains them).
    pub fn on_bytes(&mut self, bytes: &[u8]) -> Step {
        let mut write = Vec::new();
        for &b in bytes {
            let step = self.on_byte(b);
            write.extend_from_slice(&step.write);
            match step.then {
                Then::Wait(_) if !step.discard => {}
                Then::Wait(_) => {
                    // A drain: whatever else is in this buffer is dropped.
                    return Step {
                        discard: true,
                        write,
                        then: step.then,
                    };
                }
                then => {
                    return Step {
                        discard: false,
                        write,
                        then,
                    };
                }
            }
        }
        self.wait(write)
    }

    fn noise(&mut self) -> Option<Step> {
        self.noise += 1;
        (self.noise > self.limits.max_noise).then(|| self.fail(LinkFailure::Noise(self.noise)))
    }

    fn on_byte(&mut self, b: u8) -> Step {
        match self.state {
            State::Finished => self.wait(vec![]),
            State::Enq => match b {
                NAK => self.send_frame(vec![]),
                ACK => {
                    self.state = State::StaleReply;
                    self.wait(vec![])
                }
                _ => match self.noise() {
                    Some(s) => s,
                    None => self.retry_enq(),
                },
            },
            State::AwaitAck => match b {
                ACK => {
                    self.state = State::Reply;
                    self.wait(vec![])
                }
                NAK => self.send_frame(vec![]),
                _ => match self.noise() {
                    Some(s) => s,
                    None => self.query(),
                },
            },
            State::Query | State::AfterNak => match b {
                ACK => {
                    self.state = State::Reply;
                    self.wait(vec![])
                }
                NAK if self.state == State::Query => self.send_frame(vec![]),
                NAK => self.fail(LinkFailure::ReplyLost),
                _ => self.noise().unwrap_or_else(|| self.wait(vec![])),
            },
            State::StaleReply | State::Reply => match self.parser.push(b) {
                Parsed::More => self.wait(vec![]),
                Parsed::Outside(_) => self.noise().unwrap_or_else(|| self.wait(vec![])),
                Parsed::BadFrame => {
                    self.bad += 1;
                    if self.bad >= self.limits.bad_replies {
                        return self.fail(LinkFailure::BadReplies(self.bad));
                    }
                    self.state = if self.state == State::StaleReply {
                        State::Enq
                    } else {
                        State::AfterNak
                    };
                    Step {
                        discard: true,
                        write: vec![NAK, ENQ],
                        then: Then::Wait(self.limits.reply_timeout),
                    }
                }
                Parsed::Frame(frame) => {
                    if self.state == State::StaleReply {
                        // A reply nobody collected: acknowledge it, then send ours.
                        self.send_frame(vec![ACK])
                    } else {
                        self.state = State::Finished;
                        Step {
                            discard: false,
                            write: vec![ACK],
                            then: Then::Done(frame),
                        }
                    }
                }
            },
        }
    }

    /// Nothing arrived within the last wait.
    pub fn on_timeout(&mut self) -> Step {
        match self.state {
            State::Finished => self.wait(vec![]),
            State::Enq | State::StaleReply => self.retry_enq(),
            State::AwaitAck | State::Reply | State::Query | State::AfterNak => self.query(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LinkLimits {
        LinkLimits::default()
    }

    fn cmd() -> Frame {
        Frame::new(0x10, vec![1, 0, 0, 0])
    }

    fn reply() -> Frame {
        Frame::new(0x10, vec![0, 1, 2, 3])
    }

    fn acked_reply() -> Vec<u8> {
        let mut v = vec![ACK];
        v.extend(reply().encode());
        v
    }

    #[test]
    fn the_happy_path_is_enq_nak_frame_ack_reply_ack() {
        let (mut l, s) = HostLink::start(&cmd(), limits());
        assert_eq!((s.discard, s.write.as_slice()), (true, &[ENQ][..]));
        let s = l.on_bytes(&[NAK]);
        assert_eq!(s.write, cmd().encode());
        let s = l.on_bytes(&acked_reply());
        assert_eq!(s.write, vec![ACK]);
        assert_eq!(s.then, Then::Done(reply()));
    }

    #[test]
    fn a_stale_reply_is_collected_and_acked_before_the_command() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        let stale = Frame::new(0x85, vec![0, 1, 0, 0, 0, 0, 0]);
        let mut bytes = vec![ACK];
        bytes.extend(stale.encode());
        let s = l.on_bytes(&bytes);
        let mut expected = vec![ACK];
        expected.extend(cmd().encode());
        assert_eq!(s.write, expected);
        assert_eq!(l.on_bytes(&acked_reply()).then, Then::Done(reply()));
    }

    #[test]
    fn naks_resend_the_frame_until_the_limit() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        for _ in 1..10 {
            assert_eq!(l.on_bytes(&[NAK]).write, cmd().encode());
        }
        assert_eq!(
            l.on_bytes(&[NAK]).then,
            Then::Failed(LinkFailure::TooManyNaks(10))
        );
    }

    #[test]
    fn a_bad_reply_is_naked_and_asked_for_again() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        let mut bad = reply().encode();
        *bad.last_mut().unwrap() ^= 1;
        let mut bytes = vec![ACK];
        bytes.extend(&bad);
        let s = l.on_bytes(&bytes);
        assert_eq!((s.discard, s.write), (true, vec![NAK, ENQ]));
        assert_eq!(l.on_bytes(&acked_reply()).then, Then::Done(reply()));
    }

    #[test]
    fn garbage_before_the_reply_is_skipped() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        l.on_bytes(&[ACK]);
        let mut bytes = vec![0xAA, 0x55, 0x06, 0x15, 0xFF];
        bytes.extend(reply().encode());
        assert_eq!(l.on_bytes(&bytes).then, Then::Done(reply()));
    }

    #[test]
    fn waits_are_reply_timeout_between_frames_and_byte_timeout_inside() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        assert_eq!(l.on_bytes(&[ACK]).then, Then::Wait(Duration::from_secs(3)));
        assert_eq!(
            l.on_bytes(&[0x02, 0x05]).then,
            Then::Wait(Duration::from_millis(100))
        );
        // Silence mid-frame: ask with ENQ, get the reply again.
        let s = l.on_timeout();
        assert_eq!(s.write, vec![ENQ]);
        assert_eq!(l.on_bytes(&acked_reply()).then, Then::Done(reply()));
    }

    #[test]
    fn a_lost_ack_is_resolved_by_asking_never_by_resending_blindly() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        // Silence after the frame: ENQ, not the frame again.
        assert_eq!(l.on_timeout().write, vec![ENQ]);
        // The register has a reply: it executed once; we read that reply.
        assert_eq!(l.on_bytes(&acked_reply()).then, Then::Done(reply()));

        // Silence, then ENQ answered NAK: it never got the frame: resend.
        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        l.on_timeout();
        assert_eq!(l.on_bytes(&[NAK]).write, cmd().encode());
    }

    #[test]
    fn silence_fails_after_bounded_tries() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        assert_eq!(l.on_timeout().write, vec![ENQ]);
        assert_eq!(l.on_timeout().write, vec![ENQ]);
        assert_eq!(l.on_timeout().then, Then::Failed(LinkFailure::NoAnswer(3)));

        let (mut l, _) = HostLink::start(&cmd(), limits());
        l.on_bytes(&[NAK]);
        for _ in 0..3 {
            assert_eq!(l.on_timeout().write, vec![ENQ]);
        }
        assert_eq!(l.on_timeout().then, Then::Failed(LinkFailure::NoReply(3)));
    }

    #[test]
    fn noise_after_enq_drains_and_retries() {
        let (mut l, _) = HostLink::start(&cmd(), limits());
        let s = l.on_bytes(&[0x33, 0x44]);
        assert!(s.discard);
        assert_eq!(s.write, vec![ENQ]);
        assert_eq!(l.on_bytes(&[NAK]).write, cmd().encode());
    }
}
