//! The framing loop without sockets: scripted input, the exact callbacks it gives (the way
//! tokio-util's `framed_read` tests script reads), the input limit, pausing.

use asyncore_chat::{ChatError, Decoded, FrameSink, FrameVec, Framer, Framing, Terminator};
use asyncore_core::{BoxError, HandlerResult};

/// What the sink saw, in order.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Data(Vec<u8>),
    Found,
}

fn data(s: &str) -> Ev {
    Ev::Data(s.as_bytes().to_vec())
}

/// Records every callback; optionally switches terminators from `found_terminator`.
#[derive(Default)]
struct Recorder {
    events: Vec<Ev>,
    next: Vec<Terminator>,
    pause_after_found: bool,
    fail_on_found: Option<usize>,
}

impl FrameSink for Recorder {
    fn collect_incoming_data(&mut self, _f: &mut Framing, data: &[u8]) -> HandlerResult {
        self.events.push(Ev::Data(data.to_vec()));
        Ok(())
    }

    fn found_terminator(&mut self, f: &mut Framing) -> HandlerResult {
        self.events.push(Ev::Found);
        let found = self.events.iter().filter(|e| **e == Ev::Found).count();
        if self.fail_on_found == Some(found) {
            return Err("refused frame".into());
        }
        if !self.next.is_empty() {
            f.set_terminator(self.next.remove(0));
        }
        if self.pause_after_found {
            f.pause();
        }
        Ok(())
    }
}

fn feed_all(framer: &mut Framer, sink: &mut impl FrameSink, chunks: &[&[u8]]) {
    for chunk in chunks {
        framer.feed(chunk, sink).unwrap();
    }
}

#[test]
fn several_frames_in_one_read() {
    let mut framer = Framer::new(Terminator::LF);
    let mut sink = Recorder::default();
    framer.feed(b"a\nbb\n\nccc", &mut sink).unwrap();
    assert_eq!(
        sink.events,
        [
            data("a"),
            Ev::Found,
            data("bb"),
            Ev::Found,
            Ev::Found,
            data("ccc")
        ]
    );
    assert!(framer.pending().is_empty());
}

#[test]
fn cut_terminator_waits_for_the_next_read_as_python_does() {
    let mut framer = Framer::new(Terminator::CRLF);
    let mut sink = Recorder::default();
    feed_all(&mut framer, &mut sink, &[b"hel", b"lo\r", b"\nx"]);
    // Python: "lo\r" collects "lo" and keeps "\r"; "\r\nx" finds the terminator at 0
    // (no empty collect), then collects "x".
    assert_eq!(sink.events, [data("hel"), data("lo"), Ev::Found, data("x")]);
}

#[test]
fn every_split_of_a_three_byte_terminator_gives_the_same_frames() {
    let stream = b"hello worldqqqI'm not dead yet!qqqtail qq";
    for cut in 0..=stream.len() {
        let mut framer = Framer::new(Terminator::bytes("qqq").unwrap());
        let mut frames = FrameVec::default();
        framer.feed(&stream[..cut], &mut frames).unwrap();
        framer.feed(&stream[cut..], &mut frames).unwrap();
        assert_eq!(
            frames.0,
            ["hello world", "I'm not dead yet!"],
            "cut at {cut}"
        );
        let mut rest = framer.data().to_vec();
        rest.extend_from_slice(framer.pending());
        assert_eq!(rest, b"tail qq", "cut at {cut}");
    }
}

#[test]
fn byte_at_a_time_keeps_at_most_a_cut_terminator_pending() {
    let mut framer = Framer::new(Terminator::bytes("qqq").unwrap());
    framer.set_max_input(None);
    let mut frames = FrameVec::default();
    let line: Vec<u8> = (0..20_001).map(|i| b"qqx"[i % 3]).collect();
    for b in &line {
        framer.feed(std::slice::from_ref(b), &mut frames).unwrap();
        assert!(
            framer.pending().len() < 3,
            "pending grew to {}",
            framer.pending().len()
        );
    }
    framer.feed(b"qqq", &mut frames).unwrap();
    assert_eq!(frames.0.len(), 1);
    assert_eq!(frames.0[0], line);
}

#[test]
fn count_spans_reads_and_stays_at_zero_collecting_everything() {
    let mut framer = Framer::new(Terminator::Count(5));
    let mut sink = Recorder::default();
    framer.feed(b"ab", &mut sink).unwrap();
    assert_eq!(framer.get_terminator(), &Terminator::Count(3));
    framer.feed(b"cdefg", &mut sink).unwrap();
    assert_eq!(framer.get_terminator(), &Terminator::Count(0));
    framer.feed(b"hij", &mut sink).unwrap();
    assert_eq!(
        sink.events,
        [data("ab"), data("cde"), Ev::Found, data("fg"), data("hij")]
    );
}

#[test]
fn none_terminator_collects_everything_and_never_finds() {
    let mut framer = Framer::new(Terminator::None);
    let mut sink = Recorder::default();
    feed_all(&mut framer, &mut sink, &[b"a\r\nb", b"c"]);
    assert_eq!(sink.events, [data("a\r\nb"), data("c")]);
}

#[test]
fn terminator_set_in_found_terminator_applies_to_buffered_input() {
    // A line with a length, then that many bytes, then a line again: all in one read.
    let mut framer = Framer::new(Terminator::CRLF);
    let mut sink = Recorder {
        next: vec![
            Terminator::Count(4),
            Terminator::CRLF,
            Terminator::CRLF,
            Terminator::None,
        ],
        ..Recorder::default()
    };
    framer
        .feed(b"4\r\nab\r\n\r\nend\r\nrest", &mut sink)
        .unwrap();
    assert_eq!(
        sink.events,
        [
            data("4"),
            Ev::Found,
            data("ab\r\n"),
            Ev::Found,
            Ev::Found, // the empty line right after the counted bytes
            data("end"),
            Ev::Found,
            data("rest"), // None from here on
        ]
    );
}

#[test]
fn default_collect_and_take_data_join_the_frame() {
    let mut framer = Framer::new(Terminator::LF);
    let mut frames = FrameVec::default();
    feed_all(&mut framer, &mut frames, &[b"hel", b"lo", b" world\nnext"]);
    assert_eq!(frames.0, ["hello world"]);
    assert_eq!(framer.data(), b"next");
    assert_eq!(framer.frame_len(), 4);
}

#[test]
fn callback_error_stops_the_framer_and_keeps_the_input_after_that_frame() {
    let mut framer = Framer::new(Terminator::LF);
    let mut sink = Recorder {
        fail_on_found: Some(1),
        ..Recorder::default()
    };
    let err = framer.feed(b"one\ntwo\nthr", &mut sink).unwrap_err();
    assert_eq!(err.to_string(), "refused frame");
    assert_eq!(sink.events, [data("one"), Ev::Found]);
    assert_eq!(framer.pending(), b"two\nthr");
    framer.feed(b"ee\n", &mut sink).unwrap();
    assert_eq!(sink.events[2..4], [data("two"), Ev::Found]);
    let last: Vec<u8> = sink.events[4..sink.events.len() - 1]
        .iter()
        .flat_map(|e| match e {
            Ev::Data(d) => d.clone(),
            Ev::Found => panic!("a frame too many"),
        })
        .collect();
    assert_eq!(last, b"three");
    assert_eq!(sink.events.last(), Some(&Ev::Found));
}

#[test]
fn pause_keeps_the_rest_until_resume() {
    let mut framer = Framer::new(Terminator::LF);
    let mut sink = Recorder {
        pause_after_found: true,
        ..Recorder::default()
    };
    framer.feed(b"a\nb\nc", &mut sink).unwrap();
    assert_eq!(sink.events, [data("a"), Ev::Found]);
    assert!(framer.is_paused());
    framer.feed(b"\n", &mut sink).unwrap(); // kept while paused
    assert_eq!(framer.pending(), b"b\nc\n");
    sink.pause_after_found = false;
    framer.resume(&mut sink).unwrap();
    assert_eq!(
        sink.events[2..],
        [data("b"), Ev::Found, data("c"), Ev::Found]
    );
    assert!(framer.pending().is_empty());
}

/// Frames prefixed by a one-byte length; records each, pauses after the frames listed.
#[derive(Default)]
struct Prefixed {
    frames: Vec<Vec<u8>>,
    pause_after: Vec<usize>,
}

impl FrameSink for Prefixed {
    fn found_terminator(&mut self, _f: &mut Framing) -> HandlerResult {
        panic!("not called with Terminator::Decode");
    }

    fn decode(&mut self, f: &mut Framing, input: &[u8]) -> Result<Decoded, BoxError> {
        let Some(&len) = input.first() else {
            return Ok(Decoded::Incomplete(None));
        };
        let whole = 1 + usize::from(len);
        if input.len() < whole {
            return Ok(Decoded::Incomplete(Some(whole - input.len())));
        }
        self.frames.push(input[1..whole].to_vec());
        if self.pause_after.contains(&self.frames.len()) {
            f.pause();
        }
        Ok(Decoded::Consumed(whole))
    }
}

fn frames(sink: &Prefixed) -> Vec<&str> {
    sink.frames
        .iter()
        .map(|f| std::str::from_utf8(f).unwrap())
        .collect()
}

#[test]
fn a_decoder_cuts_the_frames_and_leaves_a_cut_one_in_place() {
    let mut framer = Framer::new(Terminator::Decode);
    let mut sink = Prefixed::default();
    framer.feed(b"\x02ab\x03cd", &mut sink).unwrap();
    assert_eq!(frames(&sink), ["ab"]);
    assert_eq!(framer.pending(), b"\x03cd", "the cut frame waits, in place");
    framer.feed(b"e\x01", &mut sink).unwrap();
    framer.feed(b"f", &mut sink).unwrap();
    assert_eq!(frames(&sink), ["ab", "cde", "f"]);
    assert!(framer.pending().is_empty());
}

#[test]
fn a_paused_decoder_keeps_the_rest_until_resume() {
    let mut framer = Framer::new(Terminator::Decode);
    let mut sink = Prefixed {
        pause_after: vec![1, 2],
        ..Prefixed::default()
    };
    framer.feed(b"\x01a\x01b\x01c", &mut sink).unwrap();
    assert_eq!(frames(&sink), ["a"]);
    assert_eq!(framer.pending(), b"\x01b\x01c");
    framer.resume(&mut sink).unwrap();
    assert_eq!(frames(&sink), ["a", "b"]);
    framer.resume(&mut sink).unwrap();
    assert_eq!(frames(&sink), ["a", "b", "c"]);
    assert!(framer.pending().is_empty());
}

#[test]
fn a_decoder_error_drops_the_buffered_input() {
    struct Refuses;
    impl FrameSink for Refuses {
        fn found_terminator(&mut self, _f: &mut Framing) -> HandlerResult {
            Ok(())
        }
        fn decode(&mut self, _f: &mut Framing, _input: &[u8]) -> Result<Decoded, BoxError> {
            Err("out of step".into())
        }
    }
    let mut framer = Framer::new(Terminator::Decode);
    let err = framer.feed(b"garbage", &mut Refuses).unwrap_err();
    assert_eq!(err.to_string(), "out of step");
    assert!(framer.pending().is_empty());
    assert!(!framer.interrupted(), "nothing to go on with");
}

#[test]
fn a_decoder_that_takes_more_than_it_was_given_is_an_error() {
    struct Greedy;
    impl FrameSink for Greedy {
        fn found_terminator(&mut self, _f: &mut Framing) -> HandlerResult {
            Ok(())
        }
        fn decode(&mut self, _f: &mut Framing, input: &[u8]) -> Result<Decoded, BoxError> {
            Ok(Decoded::Consumed(input.len() + 1))
        }
    }
    let mut framer = Framer::new(Terminator::Decode);
    let err = framer.feed(b"abc", &mut Greedy).unwrap_err();
    assert!(
        err.to_string().contains("consumed 4 bytes out of 3"),
        "{err}"
    );
}

#[test]
fn the_input_limit_bounds_what_waits_for_the_decoder() {
    let mut framer = Framer::new(Terminator::Decode);
    framer.set_max_input(Some(100));
    let mut sink = Prefixed::default();
    framer.feed(&[200u8; 60], &mut sink).unwrap(); // a frame of 200 bytes, cut
    let err = framer.feed(&[0u8; 60], &mut sink).unwrap_err();
    assert_eq!(limit_error(&err), (120, 100));
    assert!(framer.pending().is_empty());
}

#[test]
fn a_sink_without_a_decoder_says_so() {
    let mut framer = Framer::new(Terminator::Decode);
    let err = framer.feed(b"x", &mut FrameVec::default()).unwrap_err();
    assert!(err.to_string().contains("defines no decode"), "{err}");
}

#[test]
fn discard_drops_the_rest_of_the_input() {
    struct Discarder(usize);
    impl FrameSink for Discarder {
        fn found_terminator(&mut self, f: &mut Framing) -> HandlerResult {
            self.0 += 1;
            f.discard();
            Ok(())
        }
    }
    let mut framer = Framer::new(Terminator::LF);
    let mut sink = Discarder(0);
    framer.feed(b"a\nb\nc", &mut sink).unwrap();
    assert_eq!(sink.0, 1);
    assert!(framer.pending().is_empty());
    assert!(framer.data().is_empty());
    framer.feed(b"d\n", &mut sink).unwrap();
    assert_eq!(sink.0, 2);
}

fn limit_error(err: &BoxError) -> (usize, usize) {
    match err.downcast_ref::<ChatError>() {
        Some(ChatError::InputLimit { len, limit }) => (*len, *limit),
        other => panic!("expected an input-limit error, got {other:?} ({err})"),
    }
}

#[test]
fn input_limit_stops_a_line_that_never_ends() {
    let mut framer = Framer::new(Terminator::CRLF);
    framer.set_max_input(Some(1000));
    let mut frames = FrameVec::default();
    let chunk = [b'x'; 300];
    let mut fed = 0;
    let err = loop {
        match framer.feed(&chunk, &mut frames) {
            Ok(()) => fed += chunk.len(),
            Err(e) => break e,
        }
        assert!(fed < 10_000, "no limit hit after {fed} bytes");
    };
    assert_eq!(fed, 900);
    assert_eq!(limit_error(&err), (1200, 1000));
    assert_eq!(
        err.to_string(),
        "input of 1200 bytes exceeds the limit of 1000 without a terminator \
         (raise it with AsyncChat::set_max_input, or set_max_input(None))"
    );
    // What was collected is dropped (the memory bound: framer::buffered's unit tests).
    assert!(framer.data().is_empty());
}

#[test]
fn input_limit_allows_a_frame_of_exactly_the_limit() {
    let mut framer = Framer::new(Terminator::CRLF);
    framer.set_max_input(Some(10));
    let mut frames = FrameVec::default();
    feed_all(
        &mut framer,
        &mut frames,
        &[b"0123456789\r", b"\n0123456789\r\n"],
    );
    assert_eq!(frames.0, ["0123456789", "0123456789"]);
}

#[test]
fn input_limit_stops_a_count_larger_than_allowed() {
    let mut framer = Framer::new(Terminator::Count(1 << 20));
    framer.set_max_input(Some(4096));
    let mut frames = FrameVec::default();
    let mut result = Ok(());
    for _ in 0..10 {
        result = framer.feed(&[7u8; 1000], &mut frames);
        if result.is_err() {
            break;
        }
    }
    assert_eq!(limit_error(&result.unwrap_err()), (5000, 4096));
    assert!(frames.0.is_empty());
}

#[test]
fn an_empty_terminator_or_a_negative_count_cannot_be_made() {
    assert!(matches!(
        Terminator::bytes(Vec::new()),
        Err(ChatError::EmptyTerminator)
    ));
    let err = Terminator::try_from(-1i64).unwrap_err();
    assert!(matches!(err, ChatError::NegativeCount(-1)));
    assert!(err.to_string().contains("must be positive"), "{err}");
}
