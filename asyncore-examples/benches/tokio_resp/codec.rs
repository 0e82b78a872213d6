//! RESP2 requests as a `tokio-util` decoder: multibulk (`*N` then `$LEN` bulk strings) and
//! inline commands (a line of words).

use bytes::{Buf, Bytes, BytesMut};
use std::io;
use tokio_util::codec::Decoder;

/// The longest bulk string taken (Redis's `proto-max-bulk-len` default is 512 MiB; the
/// bench never needs more than this).
const MAX_BULK: usize = 64 * 1024 * 1024;
/// The longest inline line or header line (Redis's inline limit).
const MAX_INLINE: usize = 64 * 1024;

/// Decodes one command: its arguments.
#[derive(Debug, Default)]
pub struct RespCodec;

fn protocol(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// The number on a header line `src[from..]` up to `\r\n`: `(value, index after \r\n)`.
fn header(src: &[u8], from: usize) -> Result<Option<(i64, usize)>, io::Error> {
    let Some(end) = memchr(b'\r', &src[from..]) else {
        if src.len() - from > MAX_INLINE {
            return Err(protocol("too big header"));
        }
        return Ok(None);
    };
    if src.len() < from + end + 2 {
        return Ok(None);
    }
    let text = std::str::from_utf8(&src[from..from + end]).map_err(|_| protocol("bad length"))?;
    let n = text
        .parse::<i64>()
        .map_err(|_| protocol("invalid length"))?;
    Ok(Some((n, from + end + 2)))
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

impl Decoder for RespCodec {
    type Item = Vec<Bytes>;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> io::Result<Option<Vec<Bytes>>> {
        loop {
            if src.is_empty() {
                return Ok(None);
            }
            if src[0] != b'*' {
                let Some(nl) = memchr(b'\n', src) else {
                    if src.len() > MAX_INLINE {
                        return Err(protocol("too big inline request"));
                    }
                    return Ok(None);
                };
                let line = src.split_to(nl + 1).freeze();
                let text = line.slice(..line.len() - 1);
                let text = text.slice(..text.len() - usize::from(text.ends_with(b"\r")));
                let args: Vec<Bytes> = text
                    .split(|c| c.is_ascii_whitespace())
                    .filter(|w| !w.is_empty())
                    .map(|w| text.slice_ref(w))
                    .collect();
                if args.is_empty() {
                    continue;
                }
                return Ok(Some(args));
            }
            let Some((count, mut at)) = header(src, 1)? else {
                return Ok(None);
            };
            if count <= 0 {
                src.advance(at);
                continue;
            }
            if count > 1024 * 1024 {
                return Err(protocol("invalid multibulk length"));
            }
            let mut spans = Vec::with_capacity(count as usize);
            for _ in 0..count {
                if at >= src.len() {
                    return Ok(None);
                }
                if src[at] != b'$' {
                    return Err(protocol("expected '$'"));
                }
                let Some((len, start)) = header(src, at + 1)? else {
                    return Ok(None);
                };
                if len < 0 || len as usize > MAX_BULK {
                    return Err(protocol("invalid bulk length"));
                }
                let end = start + len as usize;
                if src.len() < end + 2 {
                    src.reserve(end + 2 - src.len());
                    return Ok(None);
                }
                spans.push((start, end));
                at = end + 2;
            }
            let frame = src.split_to(at).freeze();
            return Ok(Some(
                spans.into_iter().map(|(s, e)| frame.slice(s..e)).collect(),
            ));
        }
    }
}
