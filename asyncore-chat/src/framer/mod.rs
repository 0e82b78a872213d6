//! Input framing without sockets: cut a byte stream at terminators.
//!
//! [`Framer`] is the `handle_read` half of `async_chat` on its own: feed it bytes, it calls
//! a [`FrameSink`]'s `collect_incoming_data` and `found_terminator`. `AsyncChat` feeds it
//! from its socket; tests and benchmarks feed it directly.
//!
//! This file holds the framing state ([`Framing`]) and the framing loop over one piece of
//! input; `buffered.rs` holds [`Framer`], which owns the input not framed yet (a cut
//! terminator, or what came while paused) and feeds the loop.

use crate::error::ChatError;
use crate::terminator::{find_prefix_at_end, Terminator};
use asyncore_core::{BoxError, HandlerResult};
use bytes::{Bytes, BytesMut};
use memchr::memmem;

mod buffered;
pub use buffered::Framer;

/// Frames up to this many bytes are copied out by `take_data` rather than split off.
const COPY_SMALL_FRAMES: usize = 256;

/// The default input limit: 64 KiB held for one frame (the longest inline command a
/// Redis server takes). Python had no limit; see [`Framing::set_max_input`].
pub const DEFAULT_MAX_INPUT: usize = 64 * 1024;

/// An emptied pending buffer larger than this is freed, so idle channels stay small.
const KEEP_PENDING: usize = 1024;

/// After a frame larger than this is taken, the frame buffer starts afresh: the frame
/// keeps its memory, and an idle channel does not.
const KEEP_INCOMING: usize = 4096;

/// The consumer of a [`Framer`]: what `async_chat` subclasses implement in Python, for
/// framing without a socket. (With a socket, implement [`ChatHandler`](crate::ChatHandler)
/// instead.)
///
/// The callbacks get the [`Framing`] to change the terminator, take the collected frame,
/// pause or discard. A callback's error stops the framer; it is returned by
/// [`Framer::feed`].
pub trait FrameSink {
    /// Input of the current frame. Python: `collect_incoming_data(data)`. The default keeps
    /// it in the framing's buffer (Python's `_collect_incoming_data`), for
    /// [`Framing::take_data`] in `found_terminator`.
    ///
    /// # Errors
    /// Whatever the sink returns; it stops the framer.
    fn collect_incoming_data(&mut self, framing: &mut Framing, data: &[u8]) -> HandlerResult {
        framing.collect(data);
        Ok(())
    }

    /// The terminator was found (or a count reached). Python: `found_terminator()`.
    ///
    /// # Errors
    /// Whatever the sink returns; it stops the framer.
    fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult;

    /// The frame being collected would hold `len` bytes, past the input limit; see
    /// [`Framing::set_max_input`]. Not in Python. The default fails with
    /// [`ChatError::InputLimit`].
    ///
    /// Return `Ok` to go on: for a byte-string terminator, the rest of this frame is then
    /// discarded up to and including its terminator, and framing goes on after it (a
    /// server answers `500 line too long` and carries on, as Twisted's
    /// `lineLengthExceeded` and tokio-util's `LinesCodec` allow).
    ///
    /// # Errors
    /// Whatever the sink returns; it stops the framer, which drops its buffered input.
    fn input_limit_exceeded(&mut self, framing: &mut Framing, len: usize) -> HandlerResult {
        Err(ChatError::InputLimit {
            len,
            limit: framing.max_input().unwrap_or(len),
        }
        .into())
    }

    /// With [`Terminator::Decode`]: handles the frame (or frames) at the front of `input`
    /// (all the input not framed yet) and says how many bytes that took, or that `input`
    /// holds no whole frame yet. Called again on the rest while it consumes input (and the
    /// framing is not paused); what it leaves waits for more input, in place. Not in
    /// Python; tokio-util's `Decoder::decode`.
    ///
    /// # Errors
    /// Whatever the sink returns: the stream cannot be framed on, so the framer drops its
    /// buffered input (as a tokio `FramedRead` ends at a decode error). The default fails:
    /// a sink used with `Terminator::Decode` must define it.
    fn decode(&mut self, framing: &mut Framing, input: &[u8]) -> Result<Decoded, BoxError> {
        let _ = (framing, input);
        Err("Terminator::Decode is set but the handler defines no decode".into())
    }
}

/// What a decoder did with the front of its input; see [`Terminator::Decode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded {
    /// The first this many bytes (at least 1) were handled: one frame, or several in a
    /// row (a server answering a pipelined batch in one call). The decoder is called again
    /// on what follows, if anything does.
    Consumed(usize),
    /// No whole frame yet: wait for more input, at least this many more bytes when the
    /// decoder knows (a length prefix), so that the framer can make room at once.
    Incomplete(Option<usize>),
}

/// A ready-made [`FrameSink`] that keeps every frame, for one terminator that does not
/// change.
///
/// ```
/// use asyncore_chat::{FrameVec, Framer, Terminator};
/// let mut framer = Framer::new(Terminator::CRLF);
/// let mut frames = FrameVec::default();
/// framer.feed(b"PING\r\nEC", &mut frames)?;
/// framer.feed(b"HO hi\r", &mut frames)?;
/// framer.feed(b"\n", &mut frames)?;
/// assert_eq!(frames.0, ["PING", "ECHO hi"]);
/// # Ok::<(), asyncore_core::BoxError>(())
/// ```
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FrameVec(pub Vec<Bytes>);

impl FrameSink for FrameVec {
    fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
        self.0.push(framing.take_data());
        Ok(())
    }
}

/// The framing state a callback may read and change: the terminator, the frame collected
/// so far, the input limit, pausing. [`Framer`] dereferences to it;
/// [`ChatContext`](crate::ChatContext) offers the same operations.
#[derive(Debug)]
pub struct Framing {
    terminator: Terminator,
    /// Searches for the current (or last) byte terminator; kept across switches to counts.
    /// Boxed: a searcher is a few hundred bytes, and a channel that never used a byte
    /// terminator (an idle one) should not carry it.
    finder: Option<Box<memmem::Finder<'static>>>,
    incoming: BytesMut,
    frame_len: usize,
    max_input: Option<usize>,
    paused: bool,
    discarded: bool,
    /// With [`Terminator::Decode`]: how many more bytes the decoder said it needs.
    need: Option<usize>,
    /// `collect` refused input past the limit: the frame would have held this much.
    over_limit: Option<usize>,
    /// Input is dropped up to the next terminator (an over-long frame the sink let go).
    skipping: bool,
}

impl Framing {
    fn new(terminator: Terminator) -> Framing {
        let mut framing = Framing {
            terminator: Terminator::None,
            finder: None,
            incoming: BytesMut::new(),
            frame_len: 0,
            max_input: Some(DEFAULT_MAX_INPUT),
            paused: false,
            discarded: false,
            need: None,
            over_limit: None,
            skipping: false,
        };
        framing.set_terminator(terminator);
        framing
    }

    /// The terminator in force. Python: `async_chat.get_terminator()`. While a count is
    /// being collected it shows what is left of it.
    pub fn get_terminator(&self) -> &Terminator {
        &self.terminator
    }

    /// Sets the terminator. Python: `async_chat.set_terminator(term)`.
    ///
    /// Set from `found_terminator`, it applies at once to the input already buffered
    /// behind the frame just found (Python's "does the Right Thing"). A
    /// [`Terminator::Count`] is used up by the frame it ends and stays at `Count(0)`,
    /// which collects everything like [`Terminator::None`] until another terminator is
    /// set. (Invalid terminators cannot be made: see [`Terminator::bytes`].)
    pub fn set_terminator(&mut self, terminator: Terminator) {
        if let Terminator::Bytes(d) = &terminator {
            let cached = self.finder.as_ref().map(|f| f.needle());
            if cached != Some(d.as_bytes()) {
                self.finder = Some(Box::new(memmem::Finder::new(d.as_bytes()).into_owned()));
            }
        }
        self.terminator = terminator;
    }

    /// Keeps `data` in the frame buffer, within the input limit (see
    /// [`set_max_input`](Self::set_max_input)). Python: `async_chat._collect_incoming_data`,
    /// the default of `collect_incoming_data`.
    pub fn collect(&mut self, data: &[u8]) {
        let len = self.incoming.len() + data.len();
        if self.max_input.is_some_and(|limit| len > limit) {
            // Refused: the framing reports it once the sink returns.
            self.over_limit = Some(len);
            return;
        }
        self.incoming.extend_from_slice(data);
    }

    /// Takes the collected frame, leaving the buffer empty. Python:
    /// `async_chat._get_data()`. No copy for a frame over 256 bytes: it takes the buffer's
    /// memory with it; a shorter one is copied (cheaper than sharing the buffer).
    pub fn take_data(&mut self) -> Bytes {
        if self.incoming.len() <= COPY_SMALL_FRAMES {
            // A short frame is cheaper copied than split off: splitting would share the
            // buffer and make the next reads allocate a new one.
            let frame = Bytes::copy_from_slice(&self.incoming);
            self.incoming.clear();
            return frame;
        }
        let frame = self.incoming.split().freeze();
        if frame.len() > KEEP_INCOMING {
            // The rest of the buffer shares the frame's allocation: do not keep it alive.
            self.incoming = BytesMut::new();
        }
        frame
    }

    /// The frame collected so far, without taking it.
    pub fn data(&self) -> &[u8] {
        &self.incoming
    }

    /// Drops the collected frame but keeps the buffer's memory for the next one: the
    /// cheap end of a frame that was only looked at through [`data`](Self::data) (a
    /// protocol's header line, say), where [`take_data`](Self::take_data) would hand the
    /// memory away.
    pub fn clear_data(&mut self) {
        self.incoming.clear();
    }

    /// Bytes given to `collect_incoming_data` since the last terminator.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// The input limit; see [`set_max_input`](Self::set_max_input).
    pub fn max_input(&self) -> Option<usize> {
        self.max_input
    }

    /// Limits how much input the framing holds for one frame before its terminator:
    /// `Some(bytes)` (default [`DEFAULT_MAX_INPUT`], 64 KiB) or `None` for no limit. Not in
    /// Python (which has none).
    ///
    /// The limit bounds what the library keeps, the frame buffer that
    /// [`collect`](Self::collect) (the default `collect_incoming_data`) fills; input
    /// handed to a `collect_incoming_data` that keeps it elsewhere (or nowhere) does not
    /// count: that handler bounds its own.
    ///
    /// Input past the limit is not kept, and the sink's
    /// [`input_limit_exceeded`](FrameSink::input_limit_exceeded) is told. By default that
    /// fails with [`ChatError::InputLimit`] ("input of N bytes exceeds the limit of M
    /// without a terminator"), and the framer discards its buffered input and collected
    /// data; an [`AsyncChat`](crate::AsyncChat) channel reports it through `handle_error`
    /// and closes once its replies are sent. A handler that returns `Ok` there (to answer
    /// "line too long") has the rest of the frame discarded up to its terminator, and the
    /// connection goes on. The limit covers a line that never ends and a count larger
    /// than the limit; with [`Terminator::None`] (or a used-up count) no terminator ever
    /// comes, so every byte kept counts: raise the limit or set `None` for a channel that
    /// streams into the frame buffer.
    pub fn set_max_input(&mut self, max: Option<usize>) {
        self.max_input = max;
    }

    /// Stops cutting frames after the current callback; input fed meanwhile is kept for
    /// [`Framer::resume`]. `AsyncChat` pauses while its output is above the high
    /// watermark and resumes once it drains (so inside an `AsyncChat`, pausing by hand
    /// lasts only until the output is low).
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Whether the framer is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Drops the collected frame and all buffered input, also the rest of the input being
    /// fed now. Python: the input half of `async_chat.discard_buffers()`.
    pub fn discard(&mut self) {
        self.incoming = BytesMut::new();
        self.frame_len = 0;
        self.discarded = true;
        self.skipping = false;
        self.over_limit = None;
    }

    /// Hands `data` to `collect_incoming_data`; then, if the frame buffer refused input
    /// past the limit, tells the sink, which either fails (the input is dropped) or lets
    /// the framing skip to the next byte-string terminator.
    fn deliver<S: FrameSink + ?Sized>(&mut self, sink: &mut S, data: &[u8]) -> HandlerResult {
        if self.skipping {
            return Ok(()); // The rest of an over-long frame: dropped.
        }
        self.frame_len += data.len();
        let result = sink.collect_incoming_data(self, data);
        let Some(len) = self.over_limit.take() else {
            return result;
        };
        result?;
        let skippable = matches!(self.terminator, Terminator::Bytes(_));
        match sink.input_limit_exceeded(self, len) {
            Ok(()) if skippable => {
                self.incoming.clear();
                self.skipping = true;
                Ok(())
            }
            Ok(()) => {
                // No terminator to skip to: the stream cannot be framed on.
                self.discard();
                Err(ChatError::InputLimit {
                    len,
                    limit: self.max_input.unwrap_or(len),
                }
                .into())
            }
            Err(e) => {
                self.discard();
                Err(e)
            }
        }
    }

    /// The end of a skipped frame: its terminator was found.
    fn end_skip(&mut self) {
        self.skipping = false;
        self.frame_len = 0;
    }

    /// Asks the sink's decoder for the frame at the front of `input`: `Some(len)` for a
    /// frame handled, `None` for "need more" (noted in `need`). A decoder error, or a
    /// length it cannot have consumed, drops the buffered input: the stream is out of step.
    fn decode<S: FrameSink + ?Sized>(
        &mut self,
        sink: &mut S,
        input: &[u8],
    ) -> Result<Option<usize>, BoxError> {
        let decoded = sink.decode(self, input);
        let failed = match decoded {
            Ok(Decoded::Consumed(n)) if n > 0 && n <= input.len() => return Ok(Some(n)),
            Ok(Decoded::Incomplete(need)) => {
                self.need = need;
                return Ok(None);
            }
            Ok(Decoded::Consumed(n)) => format!(
                "the decoder consumed {n} bytes out of {} of input",
                input.len()
            )
            .into(),
            Err(e) => e,
        };
        self.discard();
        Err(failed)
    }

    fn found<S: FrameSink + ?Sized>(&mut self, sink: &mut S) -> HandlerResult {
        if self.skipping {
            self.end_skip();
            return Ok(());
        }
        self.frame_len = 0;
        sink.found_terminator(self)
    }

    /// How many bytes of pending input to move at a time to finish a cut terminator or a
    /// count. With no terminator to find, all of it goes at once.
    fn bridge_len(&self) -> usize {
        match &self.terminator {
            Terminator::Bytes(d) => d.as_bytes().len().saturating_sub(1).max(1),
            Terminator::Count(n) if *n > 0 => *n,
            _ => usize::MAX,
        }
    }
}

/// What the framing loop does next with the input left.
enum Step {
    /// Collect it all (no terminator, or a count that the input does not reach).
    CollectAll,
    /// Collect `n` bytes, which end a count.
    Count(usize),
    /// The terminator starts at `at` and is `len` long.
    Found { at: usize, len: usize },
    /// No terminator; the last `keep` bytes may start one.
    Partial { keep: usize },
    /// The sink's decoder cuts the frame.
    Decode,
}

/// The framing loop of `async_chat.handle_read` over `data`: returns how much of `data`
/// it used (the rest waits: a cut terminator, or input left when paused) and the first
/// error. Each byte is searched once, except a cut terminator's bytes, searched again
/// with the next input.
fn run<S: FrameSink + ?Sized>(
    f: &mut Framing,
    data: &[u8],
    sink: &mut S,
) -> (usize, HandlerResult) {
    let mut pos = 0;
    while pos < data.len() && !f.paused && !f.discarded {
        let rest = &data[pos..];
        let step = match &f.terminator {
            t if t.collects_all() => Step::CollectAll,
            Terminator::Count(n) if rest.len() < *n => Step::CollectAll,
            Terminator::Count(n) => Step::Count(*n),
            Terminator::Bytes(d) => {
                let needle = d.as_bytes();
                let at = match (&f.finder, needle) {
                    // One byte (`\n`, `\r`): plain memchr, without the searcher's setup.
                    (_, [byte]) => memchr::memchr(*byte, rest),
                    (Some(finder), _) => finder.find(rest),
                    (None, _) => memmem::find(rest, needle),
                };
                match at {
                    Some(at) => Step::Found {
                        at,
                        len: needle.len(),
                    },
                    None => Step::Partial {
                        keep: find_prefix_at_end(rest, needle),
                    },
                }
            }
            // `collects_all` covers `None`; the compiler does not know.
            Terminator::None => Step::CollectAll,
            Terminator::Decode => Step::Decode,
        };
        let result = match step {
            Step::CollectAll => {
                pos = data.len();
                if let Terminator::Count(n) = &mut f.terminator {
                    *n -= rest.len().min(*n);
                }
                f.deliver(sink, rest)
            }
            Step::Count(n) => {
                pos += n;
                f.terminator = Terminator::Count(0);
                let r = f.deliver(sink, &rest[..n]);
                r.and_then(|()| f.found(sink))
            }
            Step::Found { at, len } => {
                pos += at + len;
                // Python does not report the empty string ("source of subtle bugs").
                let r = if at > 0 {
                    f.deliver(sink, &rest[..at])
                } else {
                    Ok(())
                };
                r.and_then(|()| f.found(sink))
            }
            Step::Decode => match f.decode(sink, rest) {
                Ok(Some(n)) => {
                    pos += n;
                    Ok(())
                }
                // No whole frame: the rest waits for more input.
                Ok(None) => return (pos, Ok(())),
                Err(e) => return (data.len(), Err(e)),
            },
            Step::Partial { keep } => {
                pos = data.len() - keep;
                let take = rest.len() - keep;
                let r = if take > 0 {
                    f.deliver(sink, &rest[..take])
                } else {
                    Ok(())
                };
                if keep > 0 && r.is_ok() {
                    return (pos, r);
                }
                r
            }
        };
        if result.is_err() {
            return (pos, result);
        }
    }
    (pos, Ok(()))
}
