//! [`Framer`]: the framing state plus the input it has not framed yet.

use super::{run, FrameSink, Framing, KEEP_PENDING};

/// The least room made at once for a frame a decoder is waiting for.
const GROW_FOR_DECODER: usize = 16 * 1024;
use crate::error::ChatError;
use crate::terminator::Terminator;
use asyncore_core::HandlerResult;

/// Cuts a byte stream into frames at a [`Terminator`], calling a [`FrameSink`]: the input
/// side of `async_chat` (its `handle_read`), usable without sockets.
///
/// Input is handed to the sink as it comes, so the framer itself keeps only a cut
/// terminator (`"\r"` of `"\r\n"`) between feeds, or the input left while paused.
/// Terminators are found with `memchr::memmem`, each byte searched once whatever the
/// chunking. Dereferences to [`Framing`] for the terminator, the collected frame and the
/// input limit.
///
/// ```
/// use asyncore_chat::{FrameSink, Framer, Framing, Terminator};
/// use asyncore_core::HandlerResult;
///
/// /// A length-prefixed protocol: a line with a count, then that many bytes.
/// #[derive(Default)]
/// struct Blobs { blobs: Vec<Vec<u8>> }
///
/// impl FrameSink for Blobs {
///     fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
///         let frame = framing.take_data();
///         match framing.get_terminator() {
///             Terminator::Bytes(_) => {
///                 let n: usize = std::str::from_utf8(&frame)?.parse()?;
///                 framing.set_terminator(Terminator::Count(n));
///             }
///             _ => {
///                 self.blobs.push(frame.to_vec());
///                 framing.set_terminator(Terminator::CRLF);
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let mut framer = Framer::new(Terminator::CRLF);
/// let mut sink = Blobs::default();
/// for chunk in [&b"5\r\nhel"[..], b"lo3\r", b"\nabc"] {
///     framer.feed(chunk, &mut sink)?;
/// }
/// assert_eq!(sink.blobs, [b"hello".to_vec(), b"abc".to_vec()]);
/// # Ok::<(), asyncore_core::BoxError>(())
/// ```
#[derive(Debug)]
pub struct Framer {
    framing: Framing,
    /// Input not yet framed: a cut terminator, what came while paused, or what followed
    /// the frame whose callback failed.
    pending: Vec<u8>,
    /// A callback's error stopped the framing with input left in `pending`.
    interrupted: bool,
}

impl Default for Framer {
    fn default() -> Framer {
        Framer::new(Terminator::None)
    }
}

impl std::ops::Deref for Framer {
    type Target = Framing;
    fn deref(&self) -> &Framing {
        &self.framing
    }
}

impl std::ops::DerefMut for Framer {
    fn deref_mut(&mut self) -> &mut Framing {
        &mut self.framing
    }
}

impl Framer {
    /// A framer cutting at `terminator`, with the default input limit
    /// ([`DEFAULT_MAX_INPUT`](crate::DEFAULT_MAX_INPUT)). Allocates nothing until input comes.
    pub fn new(terminator: Terminator) -> Framer {
        Framer {
            framing: Framing::new(terminator),
            pending: Vec::new(),
            interrupted: false,
        }
    }

    /// The framing state (also reached through `Deref`).
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// The framing state, mutably.
    pub fn framing_mut(&mut self) -> &mut Framing {
        &mut self.framing
    }

    /// Frames `data`, which follows the input fed before: calls `sink` for each piece of
    /// input and each terminator. Python: the framing loop of `async_chat.handle_read`.
    ///
    /// While paused, `data` is only kept.
    ///
    /// # Errors
    /// The first error of a callback (the framer stops there and keeps the input after
    /// the frame it was handling), or [`ChatError::InputLimit`](crate::ChatError::InputLimit) (then the buffered input
    /// and the collected frame are dropped).
    pub fn feed<S: FrameSink + ?Sized>(&mut self, data: &[u8], sink: &mut S) -> HandlerResult {
        self.interrupted = false;
        self.apply_discard();
        let result = self
            .feed_inner(data, sink)
            .and_then(|()| self.check_decode_cap());
        self.finish(result)
    }

    /// With [`Terminator::Decode`], the input limit bounds what waits for the decoder: a
    /// frame that never completes cannot grow the buffer without end.
    fn check_decode_cap(&mut self) -> HandlerResult {
        let framing = &mut self.framing;
        match framing.max_input {
            Some(limit)
                if framing.terminator == Terminator::Decode && self.pending.len() > limit =>
            {
                let len = self.pending.len();
                framing.discard();
                Err(ChatError::InputLimit { len, limit }.into())
            }
            _ => Ok(()),
        }
    }

    /// The end of every framing call: drops discarded input, frees what grew large, and
    /// notes whether an error left input unframed.
    fn finish(&mut self, result: HandlerResult) -> HandlerResult {
        self.apply_discard();
        self.tidy();
        self.interrupted = result.is_err() && !self.pending.is_empty();
        result
    }

    fn feed_inner<S: FrameSink + ?Sized>(
        &mut self,
        mut data: &[u8],
        sink: &mut S,
    ) -> HandlerResult {
        // Finish what is pending (usually a cut terminator) with a few bytes at a time,
        // so that a long read is not copied behind it.
        while !self.pending.is_empty() && !data.is_empty() && self.can_run() {
            let m = data.len().min(self.framing.bridge_len());
            self.pending.extend_from_slice(&data[..m]);
            data = &data[m..];
            if let Err(e) = self.process_pending(sink) {
                self.keep(data);
                return Err(e);
            }
        }
        if !self.pending.is_empty() || !self.can_run() {
            self.keep(data);
            return Ok(());
        }
        let (used, result) = run(&mut self.framing, data, sink);
        self.keep(&data[used..]);
        result
    }

    /// Unpauses and frames the input kept meanwhile.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn resume<S: FrameSink + ?Sized>(&mut self, sink: &mut S) -> HandlerResult {
        self.framing.paused = false;
        self.proceed(sink)
    }

    /// Frames the input kept, unless paused: after a callback's error stopped the framing
    /// ([`interrupted`](Self::interrupted)), the input after the failed frame. `AsyncChat`
    /// does it on the next pass, without waiting for more input.
    ///
    /// ```
    /// use asyncore_chat::{FrameSink, Framer, Framing, Terminator};
    /// use asyncore_core::HandlerResult;
    ///
    /// /// Refuses the frame "bad".
    /// #[derive(Default)]
    /// struct Picky(Vec<String>);
    ///
    /// impl FrameSink for Picky {
    ///     fn found_terminator(&mut self, f: &mut Framing) -> HandlerResult {
    ///         let frame = f.take_data();
    ///         if &frame[..] == b"bad" {
    ///             return Err("bad frame".into());
    ///         }
    ///         self.0.push(String::from_utf8(frame.to_vec())?);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// let mut framer = Framer::new(Terminator::LF);
    /// let mut sink = Picky::default();
    /// assert!(framer.feed(b"bad\none\ntwo\n", &mut sink).is_err());
    /// assert!(framer.interrupted()); // "one\ntwo\n" waits in the framer
    /// framer.proceed(&mut sink)?;
    /// assert_eq!(sink.0, ["one", "two"]);
    /// assert!(!framer.interrupted());
    /// # Ok::<(), asyncore_core::BoxError>(())
    /// ```
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn proceed<S: FrameSink + ?Sized>(&mut self, sink: &mut S) -> HandlerResult {
        self.interrupted = false;
        self.apply_discard();
        let result = if self.pending.is_empty() || !self.can_run() {
            Ok(())
        } else {
            self.process_pending(sink)
        };
        self.finish(result)
    }

    /// Whether the last framing call stopped at a callback's error with input left over,
    /// to be framed by [`proceed`](Self::proceed) (or the next feed).
    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    /// Drops the collected frame and all buffered input. Python: the input half of
    /// `async_chat.discard_buffers()`.
    pub fn discard(&mut self) {
        self.framing.discard();
        self.apply_discard();
    }

    /// Input kept but not framed yet: a terminator cut by the end of the input, or what
    /// was fed while paused.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Heap memory the framer holds for input: its pending buffer and its frame buffer.
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.pending.capacity() + self.framing.incoming.capacity()
    }

    fn can_run(&self) -> bool {
        !self.framing.paused && !self.framing.discarded
    }

    fn apply_discard(&mut self) {
        if self.framing.discarded {
            self.pending = Vec::new();
            self.framing.discarded = false;
        }
    }

    /// Keeps `data` for later, unless the input was discarded; makes room for what a
    /// decoder said it needs (at most doubling: a length prefix is the peer's word).
    fn keep(&mut self, data: &[u8]) {
        if !self.framing.discarded {
            self.pending.extend_from_slice(data);
            if let Some(more) = self.framing.need.take() {
                let room = more.min(self.pending.len().max(GROW_FOR_DECODER));
                self.pending.reserve(room);
            }
        }
    }

    fn process_pending<S: FrameSink + ?Sized>(&mut self, sink: &mut S) -> HandlerResult {
        let (used, result) = run(&mut self.framing, &self.pending, sink);
        if self.framing.discarded {
            self.pending.clear();
        } else {
            self.pending.drain(..used);
        }
        result
    }

    /// Frees an emptied pending buffer that grew large.
    fn tidy(&mut self) {
        if self.pending.is_empty() && self.pending.capacity() > KEEP_PENDING {
            self.pending = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framer::FrameVec;

    #[test]
    fn a_large_frame_leaves_no_large_buffer_behind() {
        let mut framer = Framer::new(Terminator::LF);
        let mut frames = FrameVec::default();
        let line = vec![b'y'; 50_000];
        for piece in line.chunks(1000) {
            framer.feed(piece, &mut frames).unwrap();
        }
        framer.feed(b"\n", &mut frames).unwrap();
        assert_eq!(frames.0[0].len(), 50_000);
        // The frame owns its memory; the idle framer keeps next to nothing.
        assert!(framer.allocated() <= 4096, "holds {}", framer.allocated());
    }

    #[test]
    fn the_input_limit_bounds_what_the_framer_holds() {
        let mut framer = Framer::new(Terminator::CRLF);
        framer.set_max_input(Some(1000));
        let mut frames = FrameVec::default();
        while framer.feed(&[b'x'; 300], &mut frames).is_ok() {
            assert!(framer.allocated() <= 2048, "holds {}", framer.allocated());
        }
        assert!(framer.allocated() <= 2048, "holds {}", framer.allocated());
    }

    #[test]
    fn without_the_limit_the_same_line_keeps_growing() {
        // The counterpart of the test above: with no limit the memory grows with the input.
        let mut framer = Framer::new(Terminator::CRLF);
        framer.set_max_input(None);
        let mut frames = FrameVec::default();
        for _ in 0..100 {
            framer.feed(&[b'x'; 300], &mut frames).unwrap();
        }
        assert_eq!(framer.data().len(), 30_000);
        assert!(framer.allocated() >= 30_000);
    }
}
