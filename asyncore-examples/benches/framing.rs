//! Scenario 4 of `cargo xtask bench`: framing alone, no sockets. The same input, in the
//! same 64 KiB chunks (as socket reads would bring it), through `async_chat`'s framing
//! ([`asyncore_chat::Framer`]) or through `tokio-util`'s `LinesCodec`.
//!
//! ```text
//! framing --system chat|linescodec --input lines64|lines1m|count1m [--seconds S]
//! ```
//!
//! - `lines64`: 64-byte lines (63 bytes and `\n`).
//! - `lines1m`: 1 MiB lines.
//! - `count1m`: 1 MiB records (1 MiB - 1 bytes and `\n`); `async_chat` frames them with a
//!   count terminator of 1 MiB, set again after each frame; `LinesCodec` cuts the same
//!   bytes at `\n`.
//!
//! Both keep at most 2 MiB per frame and hand each frame out as an owned value (`Bytes`,
//! `String`). The input (16 MiB, made beforehand) is fed again and again until `--seconds`
//! (default 1) have passed; prints `result bytes=B frames=F seconds=S` for the framing
//! loop alone. Frame counts and sizes are checked.

use asyncore_chat::{FrameSink, Framer, Framing, Terminator};
use asyncore_core::HandlerResult;
use bytes::BytesMut;
use std::hint::black_box;
use std::process::exit;
use std::time::Instant;
use tokio_util::codec::{Decoder, LinesCodec};

const MIB: usize = 1024 * 1024;
const CHUNK: usize = 64 * 1024;
const MAX_FRAME: usize = 2 * MIB;
/// The input made once and fed over and over.
const INPUT_SIZE: usize = 16 * MIB;

const USAGE: &str =
    "usage: framing --system chat|linescodec --input lines64|lines1m|count1m [--seconds S]";

fn fail(message: &str) -> ! {
    eprintln!("framing: {message}\n{USAGE}");
    exit(2);
}

/// Records of `record` bytes, each ending in `\n`, `INPUT_SIZE` bytes in all.
fn input(record: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(INPUT_SIZE);
    while v.len() < INPUT_SIZE {
        for i in 0..record - 1 {
            v.push(b'a' + ((v.len() + i) % 26) as u8);
        }
        v.push(b'\n');
    }
    v
}

/// Counts frames and their bytes; with `count`, sets the count terminator again.
struct Counter {
    frames: u64,
    bytes: u64,
    count: Option<usize>,
}

impl FrameSink for Counter {
    fn found_terminator(&mut self, framing: &mut Framing) -> HandlerResult {
        let frame = framing.take_data();
        self.frames += 1;
        self.bytes += frame.len() as u64;
        black_box(frame);
        if let Some(n) = self.count {
            framing.set_terminator(Terminator::Count(n));
        }
        Ok(())
    }
}

fn main() {
    let (mut system, mut kind, mut seconds) = (String::new(), String::new(), 1.0f64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        match arg.as_str() {
            "--system" => system = value,
            "--input" => kind = value,
            "--seconds" => seconds = value.parse().unwrap_or_else(|_| fail("bad --seconds")),
            _ => fail(&format!("unknown argument {arg}")),
        }
    }
    let (record, count) = match kind.as_str() {
        "lines64" => (64, None),
        "lines1m" => (MIB, None),
        "count1m" => (MIB, Some(MIB)),
        _ => fail("--input must be lines64, lines1m or count1m"),
    };
    let data = input(record);
    let start = Instant::now();
    let mut rounds = 0usize;
    let mut more = || {
        rounds += 1;
        rounds == 1 || start.elapsed().as_secs_f64() < seconds
    };
    let (frames, bytes) = match system.as_str() {
        "chat" => {
            let terminator = match count {
                Some(n) => Terminator::Count(n),
                None => Terminator::LF,
            };
            let mut framer = Framer::new(terminator);
            framer.set_max_input(Some(MAX_FRAME));
            let mut sink = Counter {
                frames: 0,
                bytes: 0,
                count,
            };
            while more() {
                for chunk in data.chunks(CHUNK) {
                    if let Err(e) = framer.feed(chunk, &mut sink) {
                        fail(&format!("framing failed: {e}"));
                    }
                }
            }
            (sink.frames, sink.bytes)
        }
        "linescodec" => {
            let mut codec = LinesCodec::new_with_max_length(MAX_FRAME);
            let mut buf = BytesMut::new();
            let (mut frames, mut bytes) = (0u64, 0u64);
            while more() {
                for chunk in data.chunks(CHUNK) {
                    buf.extend_from_slice(chunk);
                    loop {
                        match codec.decode(&mut buf) {
                            Ok(Some(line)) => {
                                frames += 1;
                                bytes += line.len() as u64;
                                black_box(line);
                            }
                            Ok(None) => break,
                            Err(e) => fail(&format!("LinesCodec failed: {e}")),
                        }
                    }
                }
            }
            (frames, bytes)
        }
        _ => fail("--system must be chat or linescodec"),
    };
    let seconds = start.elapsed().as_secs_f64();
    // The closure counted the call that ended the loop too.
    rounds -= 1;
    let expected = (rounds * data.len() / record) as u64;
    // A frame is its record without the `\n`, or the whole record for a count terminator.
    let counted = count.is_some() && system == "chat";
    let expected_bytes = expected * (record - usize::from(!counted)) as u64;
    if frames != expected || bytes != expected_bytes {
        fail(&format!(
            "{frames} frames of {bytes} bytes, expected {expected} of {expected_bytes}"
        ));
    }
    println!(
        "result bytes={} frames={frames} seconds={seconds:.6}",
        rounds * data.len()
    );
}
