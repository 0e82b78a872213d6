//! The request parser: RESP2 requests (inline and multibulk) cut by `async_chat`
//! terminators, with Redis's exact leniencies and error texts.
//!
//! The parser is a state machine; each state names the [`Terminator`] that ends its next
//! frame, and [`RequestParser::frame`] takes that frame:
//!
//! ```text
//! state            terminator        frame                   then
//! Start            Count(1)          first byte of request   '*' -> MultibulkCount,
//!                                                            '\n' -> Start (empty line),
//!                                                            else -> Inline
//! Inline           "\n"              rest of the line        split (quotes, escapes) -> command
//! MultibulkCount   "\r"              "N" of "*N"             N <= 0 -> SkipThenStart,
//!                                                            else BulkLen (skip one byte)
//! BulkLen          "\r"              "$LEN"                  -> Payload
//! Payload          Count(1+LEN+2)    byte, LEN bytes, 2 bytes -> BulkLen, or command
//! SkipThenStart    Count(1)          the byte after "*N\r"   -> Start
//! Failing          Count(1)          the byte after "\r"     -> protocol error
//! ```
//!
//! Like Redis (`processMultibulkBuffer`), a header line ends at the first `\r` and the one
//! byte after it is skipped unseen (it is `\n` in every sane request); the two bytes after
//! a bulk payload are skipped unseen too; `*0` and negative multibulk counts are empty
//! requests, ignored; an inline line ends at `\n`, with one `\r` before it dropped. An error
//! found in a header line is reported once the byte after its `\r` has arrived, as Redis
//! does.

use super::reply::Reply;
use asyncore_chat::Terminator;
use bytes::Bytes;
use std::fmt;

/// The longest bulk argument accepted by default: 512 MiB, Redis's `proto-max-bulk-len`.
pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;

/// The longest inline request or header line: 64 KiB, Redis's `PROTO_INLINE_MAX_SIZE`.
pub const MAX_INLINE: usize = 64 * 1024;

/// The most one request may hold (its arguments, counting [`ARG_OVERHEAD`] each) by
/// default: 1 GiB, Redis's `client-query-buffer-limit`.
pub const DEFAULT_MAX_REQUEST: usize = 1024 * 1024 * 1024;

/// What one argument costs beyond its bytes, for the request limit (so a request of
/// millions of empty arguments is bounded too).
pub const ARG_OVERHEAD: usize = 32;

/// The parser's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk argument (`--max-bulk`); a longer one is a protocol error.
    pub max_bulk: usize,
    /// The most one request may hold; past it the connection is closed without a reply,
    /// as Redis closes a client over its query buffer limit.
    pub max_request: usize,
}

impl Limits {
    /// Limits for `--max-bulk BYTES`: the request limit is [`DEFAULT_MAX_REQUEST`], or
    /// more if one argument may be larger.
    pub fn with_max_bulk(max_bulk: usize) -> Limits {
        Limits {
            max_bulk,
            max_request: DEFAULT_MAX_REQUEST.max(max_bulk.saturating_add(ARG_OVERHEAD)),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::with_max_bulk(DEFAULT_MAX_BULK)
    }
}

/// A malformed request. The server replies with [`reply`](Self::reply) (if any), then
/// closes the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// An inline request with a quote not closed, or closed and followed by more text.
    UnbalancedQuotes,
    /// An inline request longer than [`MAX_INLINE`] without its `\n`.
    TooBigInline,
    /// `*N` where `N` is not a number or is over 2^31 - 1.
    InvalidMultibulkLength,
    /// A `*N` line longer than [`MAX_INLINE`] without its `\r`.
    TooBigMultibulkCount,
    /// An argument of a multibulk request does not start with `$`; the byte found.
    ExpectedDollar(u8),
    /// `$LEN` where `LEN` is not a number, is negative, or is over `--max-bulk`.
    InvalidBulkLength,
    /// A `$LEN` line longer than [`MAX_INLINE`] without its `\r`.
    TooBigBulkCount,
    /// The request grew past [`Limits::max_request`].
    RequestTooLarge {
        /// What the request would hold.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

impl ProtocolError {
    /// Redis's reply to this error, byte for byte; `None` when Redis closes without one.
    pub fn reply(&self) -> Option<Reply> {
        let mut text = b"ERR Protocol error: ".to_vec();
        match self {
            ProtocolError::ExpectedDollar(c) => {
                text.extend_from_slice(b"expected '$', got '");
                text.push(*c);
                text.push(b'\'');
            }
            ProtocolError::RequestTooLarge { .. } => return None,
            other => text.extend_from_slice(other.fixed_text().as_bytes()),
        }
        Some(Reply::error(text))
    }

    /// The text after "Protocol error: " for the errors whose text never varies.
    fn fixed_text(&self) -> &'static str {
        match self {
            ProtocolError::UnbalancedQuotes => "unbalanced quotes in request",
            ProtocolError::TooBigInline => "too big inline request",
            ProtocolError::InvalidMultibulkLength => "invalid multibulk length",
            ProtocolError::TooBigMultibulkCount => "too big mbulk count string",
            ProtocolError::InvalidBulkLength => "invalid bulk length",
            ProtocolError::TooBigBulkCount => "too big bulk count string",
            ProtocolError::ExpectedDollar(_) | ProtocolError::RequestTooLarge { .. } => "",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ExpectedDollar(c) => {
                write!(f, "protocol error: expected '$', got {:?}", char::from(*c))
            }
            ProtocolError::RequestTooLarge { len, limit } => write!(
                f,
                "request of {len} bytes exceeds the limit of {limit} (client-query-buffer-limit)"
            ),
            other => write!(f, "protocol error: {}", other.fixed_text()),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// What a frame completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Nothing yet: the request goes on (or was empty and is ignored).
    Incomplete,
    /// A whole request: the command name and its arguments (never empty).
    Command(Vec<Bytes>),
    /// A malformed request: reply and close.
    Error(ProtocolError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Start,
    Inline { first: u8 },
    MultibulkCount,
    SkipThenStart,
    BulkLen { skip: bool },
    Payload { len: usize },
    Failing(ProtocolError),
}

/// Turns the frames of a RESP2 request stream into commands; see the module docs.
///
/// Drive it from an `async_chat` protocol: start with [`terminator`](Self::terminator) and
/// [`max_input`](Self::max_input), give each frame to [`frame`](Self::frame), then set the
/// terminator and the input limit it asks for next.
///
/// ```
/// use asyncore_chat::{FrameSink, Framer, Framing};
/// use asyncore_core::HandlerResult;
/// use asyncore_examples::resp::{Parsed, RequestParser};
///
/// #[derive(Default)]
/// struct Commands { parser: RequestParser, got: Vec<Parsed> }
///
/// impl FrameSink for Commands {
///     fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
///         let parsed = self.parser.frame(framing.take_data());
///         if parsed != Parsed::Incomplete {
///             self.got.push(parsed);
///         }
///         framing.set_terminator(self.parser.terminator());
///         framing.set_max_input(self.parser.max_input());
///         Ok(())
///     }
/// }
///
/// let mut sink = Commands::default();
/// let mut framer = Framer::new(sink.parser.terminator());
/// framer.feed(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n", &mut sink)?;
/// assert_eq!(sink.got, [
///     Parsed::Command(vec!["ECHO".into(), "hi".into()]),
///     Parsed::Command(vec!["PING".into()]),
/// ]);
/// # Ok::<(), asyncore_core::BoxError>(())
/// ```
#[derive(Debug)]
pub struct RequestParser {
    state: State,
    args: Vec<Bytes>,
    /// Arguments still to come in the multibulk request.
    remaining: usize,
    /// What the request holds so far, for the request limit.
    request_len: usize,
    limits: Limits,
    cr: Terminator,
}

impl Default for RequestParser {
    fn default() -> RequestParser {
        RequestParser::new(Limits::default())
    }
}

impl RequestParser {
    /// A parser waiting for the first byte of a request.
    pub fn new(limits: Limits) -> RequestParser {
        RequestParser {
            state: State::Start,
            args: Vec::new(),
            remaining: 0,
            request_len: 0,
            limits,
            // A one-byte delimiter is never empty, so this cannot fail.
            cr: Terminator::bytes(Bytes::from_static(b"\r")).expect("non-empty delimiter"),
        }
    }

    /// The parser's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The terminator that ends the next frame.
    pub fn terminator(&self) -> Terminator {
        match &self.state {
            State::Start | State::SkipThenStart | State::Failing(_) => Terminator::Count(1),
            State::Inline { .. } => Terminator::LF,
            State::MultibulkCount | State::BulkLen { .. } => self.cr.clone(),
            State::Payload { len } => Terminator::Count(len.saturating_add(3)),
        }
    }

    /// The input limit for the next frame: [`MAX_INLINE`] for lines (counted from the
    /// start of the line, as Redis counts), none for a payload (its count bounds it).
    pub fn max_input(&self) -> Option<usize> {
        match &self.state {
            // The first byte of the line is already taken.
            State::Inline { .. } | State::MultibulkCount => Some(MAX_INLINE - 1),
            // The frame starts with the byte skipped after "*N\r".
            State::BulkLen { skip: true } => Some(MAX_INLINE + 1),
            State::BulkLen { skip: false } => Some(MAX_INLINE),
            State::Start | State::SkipThenStart | State::Failing(_) => Some(MAX_INLINE),
            State::Payload { .. } => None,
        }
    }

    /// The error to report when the frame in progress went over [`max_input`]
    /// (`async_chat`'s input limit): Redis's text for the line being read.
    ///
    /// [`max_input`]: Self::max_input
    pub fn input_limit_error(&self) -> ProtocolError {
        match &self.state {
            State::MultibulkCount => ProtocolError::TooBigMultibulkCount,
            State::BulkLen { .. } => ProtocolError::TooBigBulkCount,
            _ => ProtocolError::TooBigInline,
        }
    }

    /// Gives back the argument vector of a command that has run, so that the next
    /// request reuses its memory instead of allocating another.
    pub fn recycle(&mut self, mut args: Vec<Bytes>) {
        if self.args.capacity() == 0 {
            args.clear();
            self.args = args;
        }
    }

    /// Whether the next frame is an argument's payload, which the parser keeps (hand it
    /// over with [`frame`](Self::frame)); every other frame is only read, and can be
    /// given by reference to [`frame_ref`](Self::frame_ref).
    pub fn wants_payload(&self) -> bool {
        matches!(self.state, State::Payload { .. })
    }

    /// Takes the frame that ended at [`terminator`](Self::terminator) (without the
    /// terminator itself).
    pub fn frame(&mut self, frame: Bytes) -> Parsed {
        let State::Payload { len } = self.state else {
            return self.frame_ref(&frame);
        };
        self.state = State::Start;
        // The frame is exactly 1 + len + 2 bytes (a count terminator); clamp anyway.
        let end = (1 + len).min(frame.len());
        self.args.push(frame.slice(end.min(1)..end));
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 {
            return Parsed::Command(std::mem::take(&mut self.args));
        }
        self.state = State::BulkLen { skip: false };
        Parsed::Incomplete
    }

    /// As [`frame`](Self::frame), for a frame that is not a payload (see
    /// [`wants_payload`](Self::wants_payload)): nothing of it is kept, so it can be
    /// borrowed.
    pub fn frame_ref(&mut self, frame: &[u8]) -> Parsed {
        match std::mem::replace(&mut self.state, State::Start) {
            State::Start => match frame.first() {
                Some(b'*') => self.state = State::MultibulkCount,
                Some(b'\n') | None => {}
                Some(&first) => self.state = State::Inline { first },
            },
            State::Inline { first } => {
                let mut line = Vec::with_capacity(frame.len() + 1);
                line.push(first);
                line.extend_from_slice(frame);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return match split_args(&line) {
                    None => Parsed::Error(ProtocolError::UnbalancedQuotes),
                    Some(args) if args.is_empty() => Parsed::Incomplete,
                    Some(args) => Parsed::Command(args),
                };
            }
            State::MultibulkCount => match parse_i64(frame) {
                Some(n) if n > i64::from(i32::MAX) => {
                    self.state = State::Failing(ProtocolError::InvalidMultibulkLength);
                }
                None => self.state = State::Failing(ProtocolError::InvalidMultibulkLength),
                Some(n) if n <= 0 => self.state = State::SkipThenStart,
                Some(n) => {
                    // 0 < n <= i32::MAX fits a usize.
                    self.remaining = n as usize;
                    self.request_len = 0;
                    self.state = State::BulkLen { skip: true };
                }
            },
            State::SkipThenStart => {}
            State::BulkLen { skip } => return self.bulk_len(frame, skip),
            State::Payload { len } => {
                // Given by reference after all: keep a copy.
                self.state = State::Payload { len };
                return self.frame(Bytes::copy_from_slice(frame));
            }
            State::Failing(e) => return Parsed::Error(e),
        }
        Parsed::Incomplete
    }

    /// A `$LEN` line, after a skipped byte if `skip`.
    fn bulk_len(&mut self, frame: &[u8], skip: bool) -> Parsed {
        let line = if skip {
            if frame.is_empty() {
                // The skipped byte was a '\r' and ended this frame: the line comes next.
                self.state = State::BulkLen { skip: false };
                return Parsed::Incomplete;
            }
            &frame[1..]
        } else {
            frame
        };
        // An empty line starts with the '\r' that ended it.
        let first = line.first().copied().unwrap_or(b'\r');
        if first != b'$' {
            self.state = State::Failing(ProtocolError::ExpectedDollar(first));
            return Parsed::Incomplete;
        }
        let len = match parse_i64(&line[1..]).map(usize::try_from) {
            Some(Ok(len)) if len <= self.limits.max_bulk => len,
            _ => {
                self.state = State::Failing(ProtocolError::InvalidBulkLength);
                return Parsed::Incomplete;
            }
        };
        let total = self
            .request_len
            .saturating_add(len)
            .saturating_add(ARG_OVERHEAD);
        if total > self.limits.max_request {
            self.args = Vec::new();
            return Parsed::Error(ProtocolError::RequestTooLarge {
                len: total,
                limit: self.limits.max_request,
            });
        }
        self.request_len = total;
        self.state = State::Payload { len };
        Parsed::Incomplete
    }
}

/// Redis's `string2ll`: an optional `-`, then `0` alone or digits without a leading zero;
/// no `+`, no spaces, no `-0`, at most 20 bytes, within `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: splits an inline request into arguments. Outside quotes, space,
/// tab, `\r`, `\n` end an argument; `"..."` takes the escapes `\n \r \t \b \a \xHH \X`;
/// `'...'` takes `\'`; a closing quote must be followed by a space or the end. The line is
/// a C string to Redis, so it ends at its first NUL byte. `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match memchr_nul(line) {
        Some(i) => &line[..i],
        None => line,
    };
    // Byte `i` of the line, or NUL past its end (as C reads it).
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p == line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        // The quote we are inside, if any.
        let mut quote: Option<u8> = None;
        let mut done = false;
        while !done {
            let c = at(p);
            if let Some(q) = quote {
                let hex = (hex_value(at(p + 2)), hex_value(at(p + 3)));
                if let (b'"', b'\\', b'x', (Some(hi), Some(lo))) = (q, c, at(p + 1), hex) {
                    current.push(hi * 16 + lo);
                    p += 3;
                } else if q == b'"' && c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if q == b'\'' && c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == q {
                    // A closing quote must be followed by a blank or the end.
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None; // the line ended inside the quotes
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' | b'\'' => quote = Some(c),
                    _ => current.push(c),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        args.push(Bytes::from(current));
    }
}

fn memchr_nul(line: &[u8]) -> Option<usize> {
    line.iter().position(|&b| b == 0)
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
