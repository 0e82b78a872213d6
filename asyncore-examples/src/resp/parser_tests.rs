//! Unit tests of the request parser, fed as a connection feeds it, at every split of the
//! input.

use super::*;

/// What the parser gave, owned, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ev {
    Command(Vec<Vec<u8>>),
    Error(ProtocolError),
}

/// The events of `chunks` fed one after the other as a connection feeds them (the held
/// start of a request, then what follows), up to the first error.
pub(super) fn parse_chunks(chunks: &[&[u8]], limits: Limits) -> Vec<Ev> {
    let mut parser = RequestParser::new(limits);
    let mut held = Vec::new();
    let mut events = Vec::new();
    for chunk in chunks {
        held.extend_from_slice(chunk);
        loop {
            match parser.parse(&held) {
                Parsed::Incomplete { need } => {
                    assert!(need > held.len(), "need {need} with {} held", held.len());
                    break;
                }
                Parsed::Empty { len } => drop(held.drain(..len)),
                Parsed::Command { len } => {
                    let args = parser.args(&held).map(<[u8]>::to_vec).collect();
                    events.push(Ev::Command(args));
                    held.drain(..len);
                }
                Parsed::Error(e) => {
                    events.push(Ev::Error(e));
                    return events;
                }
            }
        }
    }
    events
}

/// The events of `input`, checked to be the same whatever the split: in one piece, in
/// two pieces at every byte boundary, and byte by byte.
fn parse_with(input: &[u8], limits: Limits) -> Vec<Ev> {
    let whole = parse_chunks(&[input], limits);
    for i in 1..input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(parse_chunks(&[a, b], limits), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(parse_chunks(&bytes, limits), whole, "byte by byte");
    whole
}

fn parse(input: &[u8]) -> Vec<Ev> {
    parse_with(input, Limits::default())
}

fn cmd(args: &[&[u8]]) -> Ev {
    Ev::Command(args.iter().map(|a| a.to_vec()).collect())
}

fn err(e: ProtocolError) -> Ev {
    Ev::Error(e)
}

/// Asserts that each of `inputs` gives just the error `e`.
fn assert_each_fails(inputs: &[&[u8]], e: ProtocolError) {
    for input in inputs {
        let want = [err(e.clone())];
        assert_eq!(parse(input), want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn inline_commands_split_on_blanks() {
    assert_eq!(parse(b"PING\r\n"), [cmd(&[b"PING"])]);
    assert_eq!(parse(b"PING\n"), [cmd(&[b"PING"])]);
    assert_eq!(parse(b"  SET  k\tv  \r\n"), [cmd(&[b"SET", b"k", b"v"])]);
    // '\r' inside a line separates arguments; vertical tab and form feed only lead.
    assert_eq!(parse(b"PING\rx\r\n"), [cmd(&[b"PING", b"x"])]);
    assert_eq!(parse(b"\x0bPING a\x0bb\n"), [cmd(&[b"PING", b"a\x0bb"])]);
}

#[test]
fn empty_inline_lines_are_ignored() {
    assert_eq!(parse(b"\r\n\n   \r\n\t\nPING\r\n"), [cmd(&[b"PING"])]);
    assert_eq!(parse(b"\r\r\n"), []);
}

#[test]
fn inline_quotes_and_escapes() {
    assert_eq!(
        parse(b"SET \"a b\" 'c d'\r\n"),
        [cmd(&[b"SET", b"a b", b"c d"])]
    );
    assert_eq!(
        parse(b"ECHO \"\\x41\\n\\t\\r\\b\\a\\q\\\\\\\"\"\r\n"),
        [cmd(&[b"ECHO", b"A\n\t\r\x08\x07q\\\""])]
    );
    // An incomplete \x escape is a plain escape of 'x'.
    assert_eq!(parse(b"ECHO \"\\x4g\"\n"), [cmd(&[b"ECHO", b"x4g"])]);
    // Single quotes take only \' .
    assert_eq!(
        parse(b"ECHO 'it\\'s' 'a\\x41'\n"),
        [cmd(&[b"ECHO", b"it's", b"a\\x41"])]
    );
    assert_eq!(parse(b"ECHO \"\" ''\n"), [cmd(&[b"ECHO", b"", b""])]);
    // A quote may start in the middle of an argument.
    assert_eq!(parse(b"ECHO a\"b c\"\n"), [cmd(&[b"ECHO", b"ab c"])]);
    // An escaped NUL is a byte of the argument; a raw NUL ends the line (a C string).
    assert_eq!(parse(b"ECHO \"a\\x00b\"\n"), [cmd(&[b"ECHO", b"a\0b"])]);
    assert_eq!(parse(b"ECHO a\0b c\n"), [cmd(&[b"ECHO", b"a"])]);
}

#[test]
fn unbalanced_quotes_are_a_protocol_error() {
    let e = err(ProtocolError::UnbalancedQuotes);
    assert_eq!(parse(b"ECHO \"abc\r\nPING\r\n"), std::slice::from_ref(&e));
    assert_eq!(parse(b"ECHO 'abc\n"), std::slice::from_ref(&e));
    assert_eq!(parse(b"ECHO \"abc\"def\n"), std::slice::from_ref(&e));
    assert_eq!(parse(b"ECHO \"a\"\"b\"\n"), std::slice::from_ref(&e));
    assert_eq!(parse(b"PING\r\nECHO 'a'b\n"), [cmd(&[b"PING"]), e]);
}

#[test]
fn multibulk_requests() {
    assert_eq!(parse(b"*1\r\n$4\r\nPING\r\n"), [cmd(&[b"PING"])]);
    assert_eq!(
        parse(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"),
        [cmd(&[b"SET", b"k", b""])]
    );
    // Payloads are binary: CR, LF and NUL are data.
    assert_eq!(
        parse(b"*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\0b\r\n"),
        [cmd(&[b"ECHO", b"a\r\n\0b"])]
    );
    assert_eq!(
        parse(b"*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$4\r\nping\r\n"),
        [cmd(&[b"PING"]), cmd(&[b"PING"]), cmd(&[b"ping"])]
    );
}

#[test]
fn multibulk_is_as_lenient_as_redis() {
    // The byte after a header's '\r' and the two bytes after a payload are not checked.
    assert_eq!(parse(b"*1\rx$4\rxPINGab"), [cmd(&[b"PING"])]);
    assert_eq!(parse(b"*1\r\n$4\r\nPING\n\n"), [cmd(&[b"PING"])]);
    // The skipped byte may itself be a '\r'.
    assert_eq!(parse(b"*1\r\r$4\r\nPING\r\n"), [cmd(&[b"PING"])]);
    // Zero and negative counts are empty requests.
    assert_eq!(parse(b"*0\r\n*-1\r\n*-5\r\nPING\r\n"), [cmd(&[b"PING"])]);
}

#[test]
fn bad_multibulk_length() {
    assert_each_fails(
        &[
            &b"*x\r\n"[..],
            b"*\r\n",
            b"*01\r\n",
            b"*+1\r\n",
            b"*1 \r\n",
            b"*-0\r\n",
            b"*2147483648\r\n",
            b"*99999999999999999999\r\n",
            // '\n' alone does not end the count line: "1\n$4" is the count.
            b"*1\n$4\r\nPING\r\n",
        ],
        ProtocolError::InvalidMultibulkLength,
    );
    // 2^31 - 1 is accepted; the request just waits for its arguments.
    assert_eq!(parse(b"*2147483647\r\n"), []);
}

#[test]
fn bad_bulk_header() {
    assert_eq!(
        parse(b"*1\r\nx4\r\nPING\r\n"),
        [err(ProtocolError::ExpectedDollar(b'x'))]
    );
    assert_eq!(
        parse(b"*2\r\n$4\r\nECHO\r\n*x\r\n"),
        [err(ProtocolError::ExpectedDollar(b'*'))]
    );
    // An empty line "starts" with its '\r', which the reply shows as a space.
    let e = parse(b"*1\r\n\r\n");
    assert_eq!(e, [err(ProtocolError::ExpectedDollar(b'\r'))]);
    let reply = ProtocolError::ExpectedDollar(b'\r')
        .reply()
        .map(|r| r.to_bytes());
    assert_eq!(
        reply.as_deref(),
        Some(&b"-ERR Protocol error: expected '$', got ' '\r\n"[..])
    );
    assert_each_fails(
        &[
            &b"*1\r\n$x\r\n"[..],
            b"*1\r\n$-1\r\n",
            b"*1\r\n$\r\n",
            b"*1\r\n$4 \r\n",
            b"*1\r\n$536870913\r\n",
        ],
        ProtocolError::InvalidBulkLength,
    );
    assert_eq!(parse(b"*1\r\n$536870912\r\n"), []);
}

#[test]
fn max_bulk_is_the_longest_accepted() {
    let limits = Limits::with_max_bulk(4);
    assert_eq!(
        parse_with(b"*1\r\n$4\r\nPING\r\n", limits),
        [cmd(&[b"PING"])]
    );
    assert_eq!(
        parse_with(b"*1\r\n$5\r\nPINGS\r\n", limits),
        [err(ProtocolError::InvalidBulkLength)]
    );
}

#[test]
fn header_errors_wait_for_the_byte_after_cr() {
    assert_eq!(parse_chunks(&[b"*x\r"], Limits::default()), []);
    assert_eq!(parse_chunks(&[b"*1\r\n$x\r"], Limits::default()), []);
    assert_eq!(
        parse_chunks(&[b"*1\r\n$x\r", b"!"], Limits::default()),
        [err(ProtocolError::InvalidBulkLength)]
    );
}

#[test]
fn commands_before_an_error_are_parsed() {
    assert_eq!(
        parse(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n"),
        [cmd(&[b"PING"]), err(ProtocolError::InvalidBulkLength)]
    );
}

#[test]
fn over_long_lines_get_redis_errors() {
    let mut line = vec![b'a'; MAX_INLINE + 10];
    assert_eq!(
        parse_chunks(&[&line], Limits::default()),
        [err(ProtocolError::TooBigInline)]
    );
    line[0] = b'*';
    assert_eq!(
        parse_chunks(&[&line], Limits::default()),
        [err(ProtocolError::TooBigMultibulkCount)]
    );
    let mut bulk = b"*1\r\n$".to_vec();
    bulk.extend(std::iter::repeat_n(b'1', MAX_INLINE + 10));
    assert_eq!(
        parse_chunks(&[&bulk], Limits::default()),
        [err(ProtocolError::TooBigBulkCount)]
    );
    // Just under the limit is a request like any other.
    let mut ok = vec![b'x'; MAX_INLINE - 1];
    ok.push(b'\n');
    assert_eq!(parse_chunks(&[&ok], Limits::default()).len(), 1);
}

#[test]
fn a_request_over_the_request_limit_is_refused() {
    let limits = Limits {
        max_bulk: 100,
        max_request: 2 * (ARG_OVERHEAD + 10),
    };
    let two = b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n";
    let events = parse_chunks(&[two], limits);
    assert!(
        matches!(
            events[..],
            [Ev::Error(ProtocolError::RequestTooLarge { .. })]
        ),
        "{events:?}"
    );
    assert_eq!(
        ProtocolError::RequestTooLarge { len: 1, limit: 0 }.reply(),
        None
    );
}

#[test]
fn a_large_payload_comes_whole() {
    let big = vec![b'v'; 100_000];
    let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n".to_vec();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n");
    let events = parse_chunks(&[&req], Limits::default());
    assert_eq!(events, [cmd(&[b"SET", b"k", &big])]);
}

#[test]
fn protocol_error_replies_are_redis_texts() {
    let cases: [(ProtocolError, &[u8]); 7] = [
        (
            ProtocolError::UnbalancedQuotes,
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            ProtocolError::TooBigInline,
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            ProtocolError::InvalidMultibulkLength,
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            ProtocolError::TooBigMultibulkCount,
            b"-ERR Protocol error: too big mbulk count string\r\n",
        ),
        (
            ProtocolError::ExpectedDollar(b'x'),
            b"-ERR Protocol error: expected '$', got 'x'\r\n",
        ),
        (
            ProtocolError::InvalidBulkLength,
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            ProtocolError::TooBigBulkCount,
            b"-ERR Protocol error: too big bulk count string\r\n",
        ),
    ];
    for (e, want) in cases {
        assert_eq!(e.reply().map(|r| r.to_bytes()).as_deref(), Some(want));
        assert!(e.to_string().starts_with("protocol error: "));
    }
}

#[test]
fn parse_i64_is_redis_string2ll() {
    let good: [(&[u8], i64); 6] = [
        (b"0", 0),
        (b"7", 7),
        (b"-7", -7),
        (b"9223372036854775807", i64::MAX),
        (b"-9223372036854775808", i64::MIN),
        (b"10", 10),
    ];
    for (s, n) in good {
        assert_eq!(parse_i64(s), Some(n), "{:?}", String::from_utf8_lossy(s));
    }
    for s in [
        &b""[..],
        b"-",
        b"+1",
        b"01",
        b"-0",
        b" 1",
        b"1 ",
        b"1a",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"99999999999999999999",
        b"000000000000000000001",
    ] {
        assert_eq!(parse_i64(s), None, "{:?}", String::from_utf8_lossy(s));
    }
}

/// Fuzzing (issue 8): arbitrary mixes of valid requests and garbage, cut at arbitrary
/// places. Nothing panics, what is held of a request stays within the limits, and the replies
/// are the same whatever the split.
mod fuzz {
    use super::*;
    use crate::resp::{execute, Action, Exec, Session, Store};
    use proptest::prelude::*;

    /// Small limits so that the fuzzer reaches them.
    fn limits() -> Limits {
        Limits::with_max_bulk(64)
    }

    fn word() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            Just(b"SET".to_vec()),
            Just(b"GET".to_vec()),
            Just(b"INCR".to_vec()),
            Just(b"DEL".to_vec()),
            Just(b"PING".to_vec()),
            Just(b"MSET".to_vec()),
            Just(b"EXISTS".to_vec()),
            Just(b"ECHO".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ]
    }

    /// One piece of the stream: a multibulk request, an inline one, or raw bytes.
    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => proptest::collection::vec(word(), 1..5).prop_map(|args| {
                let mut out = format!("*{}\r\n", args.len()).into_bytes();
                for a in &args {
                    out.extend(format!("${}\r\n", a.len()).into_bytes());
                    out.extend_from_slice(a);
                    out.extend_from_slice(b"\r\n");
                }
                out
            }),
            2 => proptest::collection::vec(word(), 1..4).prop_map(|args| {
                let mut out = args.join(&b' ');
                out.extend_from_slice(b"\r\n");
                out
            }),
            1 => proptest::collection::vec(any::<u8>(), 0..40),
            1 => proptest::collection::vec(prop_oneof![Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'"'), Just(b'9'), Just(b'-')], 0..12),
        ]
    }

    /// The replies to `events`, executed on a fresh key space at one instant.
    fn replies(events: &[Ev]) -> Vec<u8> {
        let (mut store, mut session) = (Store::new(), Session::default());
        let now = std::time::Instant::now();
        let mut out = Vec::new();
        for e in events {
            match e {
                Ev::Command(args) => {
                    let mut x = Exec {
                        store: &mut store,
                        session: &mut session,
                        limits: limits(),
                        now,
                    };
                    let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
                    match execute(&mut x, &args) {
                        Action::Reply(r) => out.extend(r.to_bytes()),
                        Action::ReplyAndClose(r) => {
                            out.extend(r.to_bytes());
                            break;
                        }
                    }
                }
                Ev::Error(err) => {
                    if let Some(r) = err.reply() {
                        out.extend(r.to_bytes());
                    }
                    break;
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_split_gives_the_same_replies(
            pieces in proptest::collection::vec(piece(), 1..12),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let input: Vec<u8> = pieces.concat();
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
            points.sort_unstable();
            points.dedup();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut last = 0;
            for p in points {
                chunks.push(&input[last..p]);
                last = p;
            }
            chunks.push(&input[last..]);
            let whole = parse_chunks(&[&input], limits());
            let split = parse_chunks(&chunks, limits());
            prop_assert_eq!(&split, &whole);
            prop_assert_eq!(replies(&split), replies(&whole));
        }

        #[test]
        fn buffered_input_stays_within_the_limits(
            pieces in proptest::collection::vec(piece(), 1..12),
            chunk in 1usize..64,
        ) {
            let input: Vec<u8> = pieces.concat();
            let mut parser = RequestParser::new(limits());
            let mut held: Vec<u8> = Vec::new();
            'feed: for part in input.chunks(chunk) {
                held.extend_from_slice(part);
                loop {
                    match parser.parse(&held) {
                        Parsed::Incomplete { .. } => break,
                        Parsed::Empty { len } | Parsed::Command { len } => drop(held.drain(..len)),
                        Parsed::Error(_) => break 'feed,
                    }
                }
                // Only the unfinished request is held: what its headers announced (which
                // counts each argument's header too), its count line, and at most one
                // line in progress.
                let bound = parser.announced() + "*2147483647\r\n".len() + MAX_INLINE;
                prop_assert!(held.len() <= bound, "held {} > {}", held.len(), bound);
            }
        }
    }
}
