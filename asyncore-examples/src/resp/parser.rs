//! The request parser: RESP2 requests (inline and multibulk) cut straight out of the
//! input as it comes, with Redis's exact leniencies and error texts.
//!
//! [`RequestParser::parse`] looks at the input from the first byte of a request. A whole
//! request gives its length and its arguments, which borrow the input (nothing is copied
//! or allocated for it); a request not whole yet gives [`Parsed::Incomplete`], and the
//! parser remembers how far it got, so the next call, on the same bytes and what came
//! after them, goes on from there (no byte is parsed twice, however the request is cut).
//!
//! ```text
//! request      first byte '*': multibulk; anything else: inline
//! inline       a line up to the first '\n', one '\r' before it dropped, split at blanks
//!              (quotes and escapes as redis-cli writes them); an empty line is ignored
//! multibulk    "*N" up to the first '\r', one byte skipped, then N times:
//!              "$LEN" up to the first '\r', one byte skipped, LEN bytes, two bytes skipped
//!              N <= 0: an empty request, ignored
//! ```
//!
//! Like Redis (`processMultibulkBuffer`), a header line ends at the first `\r` and the one
//! byte after it is skipped unseen (it is `\n` in every sane request); the two bytes after
//! a payload are skipped unseen too; an error found in a header line is reported once the
//! byte after its `\r` has arrived. Bounds: a line (inline request or header) of at most
//! [`MAX_INLINE`] bytes, an argument of at most [`Limits::max_bulk`], a request of at most
//! [`Limits::max_request`]; so what a connection holds of a request it has not finished is
//! at most a line, or what the request's headers announced, within the limits.

use super::reply::Reply;
use super::text::split_args_into;
pub use super::text::{parse_i64, split_args};
use std::fmt;
use std::ops::Range;

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

/// What [`RequestParser::parse`] found at the front of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The request is not whole yet. Keep the input and call `parse` again with it and
    /// what follows; the request takes `need` bytes at least (a hint for reserving the
    /// memory of a large payload at once).
    Incomplete {
        /// Bytes the request takes at least, from its first byte.
        need: usize,
    },
    /// The first `len` bytes were a request with nothing to run (an empty line, `*0`,
    /// `*-1`): Redis ignores them.
    Empty {
        /// Its length in bytes.
        len: usize,
    },
    /// The first `len` bytes were a request: its arguments, the command name first, are
    /// [`RequestParser::args`] (never empty).
    Command {
        /// Its length in bytes.
        len: usize,
    },
    /// A malformed request: reply with [`ProtocolError::reply`] and close.
    Error(ProtocolError),
}

/// Where the parser is in the request at the front of the input. Positions count from
/// the request's first byte.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Nothing of the request is known yet.
    Start,
    /// An inline request: its line ends at the first `\n`.
    Inline,
    /// `*N`: the count ends at the first `\r`.
    Count,
    /// The `$LEN` line that starts at `at`.
    BulkLen { at: usize },
    /// A payload of `len` bytes at `at`, then two bytes skipped.
    Payload { at: usize, len: usize },
    /// A malformed header, reported once the byte at `at` (after its `\r`) has arrived.
    Failing { at: usize, error: ProtocolError },
}

/// Cuts RESP2 requests out of a connection's input; see the module docs.
///
/// Give [`parse`](Self::parse) the input from the first byte of a request; on
/// [`Parsed::Command`], run [`args`](Self::args) and drop the request's `len` bytes; on
/// [`Parsed::Incomplete`], keep the input and call again once more has come.
///
/// ```
/// use asyncore_examples::resp::{Parsed, RequestParser};
///
/// let mut parser = RequestParser::default();
/// let input = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\nGE";
/// assert_eq!(parser.parse(input), Parsed::Command { len: 22 });
/// assert_eq!(parser.args(input), [&b"ECHO"[..], b"hi"]);
///
/// let rest = &input[22..];
/// assert_eq!(parser.parse(rest), Parsed::Command { len: 6 });
/// assert_eq!(parser.args(rest), [&b"PING"[..]]);
///
/// // "GE" is the start of a request: keep it, and parse it again with what follows.
/// assert!(matches!(parser.parse(&rest[6..]), Parsed::Incomplete { .. }));
/// assert_eq!(parser.parse(b"GET k\n"), Parsed::Command { len: 6 });
/// assert_eq!(parser.args(b"GET k\n"), [&b"GET"[..], b"k"]);
/// ```
#[derive(Debug)]
pub struct RequestParser {
    limits: Limits,
    phase: Phase,
    /// Where to go on looking for the end of the current line: the bytes before it were
    /// searched already.
    scan: usize,
    /// Arguments still to come in the multibulk request.
    remaining: usize,
    /// What the request holds so far, for the request limit.
    request_len: usize,
    /// The arguments of the request: ranges of the input (multibulk) or of `inline`.
    ranges: Vec<Range<usize>>,
    /// Whether `ranges` point into `inline`.
    is_inline: bool,
    /// An inline request's arguments, with its quotes and escapes undone.
    inline: Vec<u8>,
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
            limits,
            phase: Phase::Start,
            scan: 0,
            remaining: 0,
            request_len: 0,
            ranges: Vec::new(),
            is_inline: false,
            inline: Vec::new(),
        }
    }

    /// The parser's limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// What the request being parsed has announced so far: its arguments' lengths, plus
    /// [`ARG_OVERHEAD`] each. What a connection holds of an unfinished request is at most
    /// this plus one line ([`MAX_INLINE`]) and the bytes of one read.
    pub fn announced(&self) -> usize {
        self.request_len
    }

    /// Parses the request at the front of `input`.
    ///
    /// `input` starts at the request's first byte. After [`Parsed::Incomplete`], call
    /// again with the same bytes and more after them; after anything else the parser
    /// starts afresh, for the request after this one.
    pub fn parse(&mut self, input: &[u8]) -> Parsed {
        let parsed = self.step(input);
        if !matches!(parsed, Parsed::Incomplete { .. }) {
            self.phase = Phase::Start;
            self.scan = 0;
            self.remaining = 0;
            self.request_len = 0;
        }
        parsed
    }

    /// The arguments of the request the last [`Parsed::Command`] found, the command name
    /// first; `input` is what that `parse` was given (an inline request's arguments are
    /// kept by the parser, a multibulk request's are read from `input`).
    pub fn args<'p>(&'p self, input: &'p [u8]) -> ArgSlices<'p> {
        let buf = if self.is_inline {
            &self.inline[..]
        } else {
            input
        };
        ArgSlices {
            buf,
            ranges: self.ranges.iter(),
        }
    }

    fn step(&mut self, input: &[u8]) -> Parsed {
        loop {
            match self.phase {
                Phase::Start => {
                    let Some(&first) = input.first() else {
                        return Parsed::Incomplete { need: 1 };
                    };
                    self.ranges.clear();
                    self.is_inline = first != b'*';
                    self.phase = if self.is_inline {
                        Phase::Inline
                    } else {
                        Phase::Count
                    };
                    self.scan = usize::from(!self.is_inline);
                }
                Phase::Inline => return self.inline_request(input),
                Phase::Count => {
                    let end = match self.line_end(input, 0, b'\r') {
                        Ok(end) => end,
                        Err(()) if input.len() > MAX_INLINE => {
                            return Parsed::Error(ProtocolError::TooBigMultibulkCount)
                        }
                        Err(()) => {
                            return Parsed::Incomplete {
                                need: input.len() + 1,
                            }
                        }
                    };
                    if end > MAX_INLINE {
                        return Parsed::Error(ProtocolError::TooBigMultibulkCount);
                    }
                    match parse_i64(&input[1..end]) {
                        Some(n) if n > i64::from(i32::MAX) => {
                            self.fail(end, ProtocolError::InvalidMultibulkLength)
                        }
                        None => self.fail(end, ProtocolError::InvalidMultibulkLength),
                        Some(n) if n <= 0 => {
                            if input.len() < end + 2 {
                                return Parsed::Incomplete { need: end + 2 };
                            }
                            return Parsed::Empty { len: end + 2 };
                        }
                        Some(n) => {
                            // 0 < n <= i32::MAX fits a usize.
                            self.remaining = n as usize;
                            self.request_len = 0;
                            self.begin_line(end + 2);
                        }
                    }
                }
                Phase::BulkLen { at } => {
                    let end = match self.line_end(input, at, b'\r') {
                        Ok(end) => end,
                        Err(()) if input.len().saturating_sub(at) > MAX_INLINE => {
                            return Parsed::Error(ProtocolError::TooBigBulkCount)
                        }
                        Err(()) => {
                            return Parsed::Incomplete {
                                need: input.len().max(at) + 1,
                            }
                        }
                    };
                    if end - at > MAX_INLINE {
                        return Parsed::Error(ProtocolError::TooBigBulkCount);
                    }
                    if let Err(parsed) = self.bulk_len(&input[at..end], end) {
                        return parsed;
                    }
                }
                Phase::Payload { at, len } => {
                    let end = at.saturating_add(len);
                    let next = end.saturating_add(2);
                    if input.len() < next {
                        return Parsed::Incomplete { need: next };
                    }
                    self.ranges.push(at..end);
                    self.remaining -= 1;
                    if self.remaining == 0 {
                        return Parsed::Command { len: next };
                    }
                    self.begin_line(next);
                }
                Phase::Failing { at, ref error } => {
                    if input.len() <= at {
                        return Parsed::Incomplete { need: at + 1 };
                    }
                    return Parsed::Error(error.clone());
                }
            }
        }
    }

    /// A malformed header line that ends at `end` (its `\r`): the error comes once the
    /// byte after it has.
    fn fail(&mut self, end: usize, error: ProtocolError) {
        self.phase = Phase::Failing { at: end + 1, error };
    }

    /// The next `$LEN` line starts at `at`.
    fn begin_line(&mut self, at: usize) {
        self.phase = Phase::BulkLen { at };
        self.scan = at;
    }

    /// Where the line that starts at `start` ends (the first `byte` from there), searching
    /// only what was not searched before; `Err` when it has not come yet.
    fn line_end(&mut self, input: &[u8], start: usize, byte: u8) -> Result<usize, ()> {
        let from = self.scan.max(start);
        match input
            .get(from..)
            .and_then(|rest| memchr::memchr(byte, rest))
        {
            Some(i) => Ok(from + i),
            None => {
                self.scan = input.len().max(from);
                Err(())
            }
        }
    }

    /// A `$LEN` line (without its `\r`, which is at `end`).
    fn bulk_len(&mut self, line: &[u8], end: usize) -> Result<(), Parsed> {
        // An empty line starts with the '\r' that ends it.
        let first = line.first().copied().unwrap_or(b'\r');
        if first != b'$' {
            self.fail(end, ProtocolError::ExpectedDollar(first));
            return Ok(());
        }
        let len = match parse_i64(&line[1..]).map(usize::try_from) {
            Some(Ok(len)) if len <= self.limits.max_bulk => len,
            _ => {
                self.fail(end, ProtocolError::InvalidBulkLength);
                return Ok(());
            }
        };
        let total = self
            .request_len
            .saturating_add(len)
            .saturating_add(ARG_OVERHEAD);
        if total > self.limits.max_request {
            return Err(Parsed::Error(ProtocolError::RequestTooLarge {
                len: total,
                limit: self.limits.max_request,
            }));
        }
        self.request_len = total;
        self.phase = Phase::Payload { at: end + 2, len };
        Ok(())
    }

    /// An inline request: a line up to `\n`, of at most [`MAX_INLINE`] bytes.
    fn inline_request(&mut self, input: &[u8]) -> Parsed {
        let end = match self.line_end(input, 0, b'\n') {
            Ok(end) if end <= MAX_INLINE => end,
            Err(()) if input.len() <= MAX_INLINE => {
                return Parsed::Incomplete {
                    need: input.len() + 1,
                }
            }
            _ => return Parsed::Error(ProtocolError::TooBigInline),
        };
        let mut line = &input[..end];
        if let [rest @ .., b'\r'] = line {
            line = rest;
        }
        if !split_args_into(line, &mut self.inline, &mut self.ranges) {
            return Parsed::Error(ProtocolError::UnbalancedQuotes);
        }
        if self.ranges.is_empty() {
            return Parsed::Empty { len: end + 1 };
        }
        Parsed::Command { len: end + 1 }
    }
}

/// The arguments of one request as byte slices, the command name first
/// ([`RequestParser::args`]).
#[derive(Debug, Clone)]
pub struct ArgSlices<'p> {
    buf: &'p [u8],
    ranges: std::slice::Iter<'p, Range<usize>>,
}

impl<'p> Iterator for ArgSlices<'p> {
    type Item = &'p [u8];

    fn next(&mut self) -> Option<&'p [u8]> {
        // The ranges were found in this very buffer; a wrong one reads as empty.
        self.ranges
            .next()
            .map(|r| self.buf.get(r.clone()).unwrap_or_default())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ranges.size_hint()
    }
}

impl ExactSizeIterator for ArgSlices<'_> {}

impl<'p> PartialEq<[&'p [u8]]> for ArgSlices<'_> {
    fn eq(&self, other: &[&'p [u8]]) -> bool {
        self.clone().eq(other.iter().copied())
    }
}

impl<'p, const N: usize> PartialEq<[&'p [u8]; N]> for ArgSlices<'_> {
    fn eq(&self, other: &[&'p [u8]; N]) -> bool {
        *self == other[..]
    }
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
