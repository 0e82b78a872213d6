//! What a pipelined connection sends and what it must get back, request by request.

use std::io::Write;

/// The request streams the load generator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Lines of `size` bytes (at least 24; the last one `\n`), echoed back unchanged.
    Line { size: usize },
    /// Redis inline `PING`, answered `+PONG`.
    Ping,
    /// Redis multibulk `SET key:C VALUE` and `GET key:C` in turn; the `GET` must return
    /// the value of the `SET` just before it.
    SetGet,
}

impl Workload {
    /// Parses a `--mode` value (`chat` is handled elsewhere).
    pub fn parse(mode: &str, size: usize) -> Option<Workload> {
        match mode {
            "line" => Some(Workload::Line { size }),
            "ping" => Some(Workload::Ping),
            "setget" => Some(Workload::SetGet),
            _ => None,
        }
    }

    /// Appends request `seq` of connection `conn` to `out` and the reply it must get to
    /// `expect`; returns the reply's length.
    pub fn request(self, conn: usize, seq: u64, out: &mut Vec<u8>, expect: &mut Vec<u8>) -> usize {
        let start = expect.len();
        match self {
            Workload::Line { size } => {
                let line_start = out.len();
                // Writes to a Vec cannot fail.
                let _ = write!(out, "{conn:06}:{seq:012}:");
                let body = size.saturating_sub(1);
                let mut i = out.len() - line_start;
                while i < body {
                    out.push(b'a' + ((seq as usize + i) % 26) as u8);
                    i += 1;
                }
                out.push(b'\n');
                expect.extend_from_slice(&out[line_start..]);
            }
            Workload::Ping => {
                out.extend_from_slice(b"PING\r\n");
                expect.extend_from_slice(b"+PONG\r\n");
            }
            Workload::SetGet => {
                let key = format!("key:{conn}");
                let value = format!("{:016}", seq & !1);
                if seq.is_multiple_of(2) {
                    let _ = write!(
                        out,
                        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                        key.len(),
                        value.len()
                    );
                    expect.extend_from_slice(b"+OK\r\n");
                } else {
                    let _ = write!(out, "*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
                    let _ = write!(expect, "${}\r\n{value}\r\n", value.len());
                }
            }
        }
        expect.len() - start
    }

    /// One request and its reply, for a warm-up round trip on an idle connection.
    pub fn probe(self) -> (Vec<u8>, Vec<u8>) {
        let (mut out, mut expect) = (Vec::new(), Vec::new());
        let probe = match self {
            Workload::SetGet => Workload::Ping,
            other => other,
        };
        probe.request(0, 0, &mut out, &mut expect);
        (out, expect)
    }
}
