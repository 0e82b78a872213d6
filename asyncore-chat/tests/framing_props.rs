//! Property tests of the framing loop: any split of a stream into reads gives the frames
//! of a simple reference model, whatever terminators the consumer switches between.

use asyncore_chat::{find_prefix_at_end, ChatError, FrameSink, Framer, Framing, Terminator};
use asyncore_core::HandlerResult;
use proptest::prelude::*;
use std::collections::VecDeque;

/// A terminator as the test describes it (the model works on plain values).
#[derive(Debug, Clone)]
enum Term {
    Bytes(Vec<u8>),
    Count(usize),
    None,
}

impl Term {
    fn to_terminator(&self) -> Terminator {
        match self {
            Term::Bytes(b) => {
                Terminator::bytes(b.clone()).expect("the strategy makes 1 to 4 bytes")
            }
            Term::Count(n) => Terminator::Count(*n),
            Term::None => Terminator::None,
        }
    }
}

/// The consumer: keeps frames; each `found_terminator` switches to the next terminator of
/// the script, if any (else the terminator stays, a count at 0).
struct Switcher {
    frames: Vec<Vec<u8>>,
    script: VecDeque<Term>,
}

impl FrameSink for Switcher {
    fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
        self.frames.push(framing.take_data().to_vec());
        if let Some(next) = self.script.pop_front() {
            framing.set_terminator(next.to_terminator());
        }
        Ok(())
    }
}

/// The reference: frames cut from the whole stream at once, and the input left over.
fn model(stream: &[u8], terms: &[Term]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut frames = Vec::new();
    let mut pos = 0;
    let mut script = terms.iter().cloned();
    let mut term = script.next().unwrap_or(Term::None);
    loop {
        let rest = &stream[pos..];
        match &term {
            Term::None | Term::Count(0) => break,
            Term::Count(n) if rest.len() >= *n => {
                frames.push(rest[..*n].to_vec());
                pos += n;
                term = Term::Count(0);
            }
            Term::Count(_) => break,
            Term::Bytes(t) => match rest.windows(t.len()).position(|w| w == &t[..]) {
                Some(i) => {
                    frames.push(rest[..i].to_vec());
                    pos += i + t.len();
                }
                None => break,
            },
        }
        if let Some(next) = script.next() {
            term = next;
        }
    }
    (frames, stream[pos..].to_vec())
}

/// Runs the framer over `stream` cut at `cuts`; returns the frames and the input left
/// (collected but unterminated, then pending).
fn framed(stream: &[u8], terms: &[Term], cuts: &[usize]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let first = terms.first().cloned().unwrap_or(Term::None);
    let mut framer = Framer::new(first.to_terminator());
    framer.set_max_input(None);
    let mut sink = Switcher {
        frames: Vec::new(),
        script: terms.iter().skip(1).cloned().collect(),
    };
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    cuts.sort_unstable();
    let mut start = 0;
    for cut in cuts.into_iter().chain([stream.len()]) {
        framer
            .feed(&stream[start..cut], &mut sink)
            .expect("no callback fails");
        start = cut;
    }
    let mut left = framer.data().to_vec();
    left.extend_from_slice(framer.pending());
    (sink.frames, left)
}

fn byte() -> impl Strategy<Value = u8> {
    prop::sample::select(vec![b'a', b'b', b'\r', b'\n'])
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        4 => prop::collection::vec(byte(), 1..=4).prop_map(Term::Bytes),
        2 => (0usize..12).prop_map(Term::Count),
        1 => Just(Term::None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_split_gives_the_frames_of_the_model(
        stream in prop::collection::vec(byte(), 0..400),
        terms in prop::collection::vec(term(), 1..10),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let expected = model(&stream, &terms);
        let whole = framed(&stream, &terms, &[]);
        prop_assert_eq!(&whole, &expected, "unsplit stream differs from the model");
        let split = framed(&stream, &terms, &cuts);
        prop_assert_eq!(&split, &expected, "split stream differs from the model");
    }

    #[test]
    fn byte_at_a_time_gives_the_frames_of_the_model(
        stream in prop::collection::vec(byte(), 0..200),
        terms in prop::collection::vec(term(), 1..6),
    ) {
        let cuts: Vec<usize> = (0..stream.len()).collect();
        prop_assert_eq!(framed(&stream, &terms, &cuts), model(&stream, &terms));
    }

    #[test]
    fn input_limit_fails_exactly_when_a_frame_is_too_long(
        stream in prop::collection::vec(prop::sample::select(vec![b'a', b'\r', b'\n']), 0..300),
        limit in 0usize..40,
        cuts in prop::collection::vec(any::<usize>(), 0..20),
    ) {
        let (frames, tail) = model(&stream, &[Term::Bytes(b"\r\n".to_vec())]);
        let unterminated = tail.len() - find_prefix_at_end(&tail, b"\r\n");
        let too_long = frames.iter().position(|f| f.len() > limit);
        let should_fail = too_long.is_some() || unterminated > limit;

        let mut framer = Framer::new(Terminator::CRLF);
        framer.set_max_input(Some(limit));
        let mut sink = Switcher { frames: Vec::new(), script: VecDeque::new() };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        let mut failure = None;
        for cut in cuts.into_iter().chain([stream.len()]) {
            if let Err(e) = framer.feed(&stream[start..cut], &mut sink) {
                failure = Some(e);
                break;
            }
            start = cut;
        }
        prop_assert_eq!(failure.is_some(), should_fail);
        if let Some(e) = failure {
            let is_limit = matches!(e.downcast_ref::<ChatError>(), Some(ChatError::InputLimit { .. }));
            prop_assert!(is_limit, "unexpected error {}", e);
            // Every frame before the first long one came through, none after it.
            let good = too_long.unwrap_or(frames.len());
            prop_assert_eq!(&sink.frames[..], &frames[..good]);
            prop_assert!(framer.data().is_empty() && framer.pending().is_empty());
        } else {
            prop_assert_eq!(sink.frames, frames);
        }
    }
}

/// A decoder of frames prefixed by a one-byte length; `batch` decodes every whole frame
/// at hand per call (as a pipelining server does), else one per call. Pauses after the
/// frames whose numbers `pauses` lists.
struct Prefixed {
    frames: Vec<Vec<u8>>,
    batch: bool,
    pauses: Vec<usize>,
}

impl FrameSink for Prefixed {
    fn found_terminator(&mut self, _framing: &mut Framing) -> HandlerResult {
        Err("not called with Terminator::Decode".into())
    }

    fn decode(
        &mut self,
        framing: &mut Framing,
        input: &[u8],
    ) -> Result<asyncore_chat::Decoded, asyncore_core::BoxError> {
        use asyncore_chat::Decoded;
        let mut pos = 0;
        while let Some(&len) = input.get(pos) {
            let whole = 1 + usize::from(len);
            if input.len() - pos < whole {
                break;
            }
            self.frames.push(input[pos + 1..pos + whole].to_vec());
            pos += whole;
            if self.pauses.contains(&self.frames.len()) {
                framing.pause();
                break;
            }
            if !self.batch {
                break;
            }
        }
        Ok(if pos == 0 {
            Decoded::Incomplete(None)
        } else {
            Decoded::Consumed(pos)
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the reads and the pauses, a decoder gets every frame once, in order, and
    /// what it cannot decode yet waits in the framer, in place.
    #[test]
    fn a_decoder_gets_the_frames_whatever_the_reads_and_pauses(
        frames in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..30),
        tail in prop::collection::vec(any::<u8>(), 0..5),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
        pauses in prop::collection::vec(0usize..30, 0..5),
        batch in any::<bool>(),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            stream.push(u8::try_from(f.len()).unwrap()); // at most 19
            stream.extend_from_slice(f);
        }
        // A cut frame at the end: its length byte announces more than follows.
        let partial = !tail.is_empty();
        if partial {
            stream.push(u8::try_from(tail.len() + 3).unwrap());
            stream.extend_from_slice(&tail);
        }
        let mut framer = Framer::new(Terminator::Decode);
        framer.set_max_input(None);
        let mut sink = Prefixed { frames: Vec::new(), batch, pauses };
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        cuts.sort_unstable();
        let mut start = 0;
        for cut in cuts.into_iter().chain([stream.len()]) {
            framer.feed(&stream[start..cut], &mut sink).expect("no decoder error");
            while framer.is_paused() {
                framer.resume(&mut sink).expect("no decoder error");
            }
            start = cut;
        }
        prop_assert_eq!(&sink.frames, &frames);
        let left = if partial { &stream[stream.len() - tail.len() - 1..] } else { &[][..] };
        prop_assert_eq!(framer.pending(), left);
    }
}
