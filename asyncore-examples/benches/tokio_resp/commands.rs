//! The command set of `resp_server`, on a single-threaded store, replies written straight
//! into the connection's output buffer.

use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// Keys to values, with an optional expiry (checked when read).
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Bytes, (Bytes, Option<Instant>)>,
}

/// What the connection does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    Continue,
    Close,
}

fn bulk(out: &mut Vec<u8>, v: &[u8]) {
    // Writes to a Vec cannot fail.
    let _ = write!(out, "${}\r\n", v.len());
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
}

fn int(out: &mut Vec<u8>, n: i64) {
    let _ = write!(out, ":{n}\r\n");
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

impl Store {
    fn get(&mut self, key: &[u8]) -> Option<&Bytes> {
        let expired = match self.map.get(key) {
            Some((_, Some(at))) => *at <= Instant::now(),
            _ => false,
        };
        if expired {
            self.map.remove(key);
        }
        self.map.get(key).map(|(v, _)| v)
    }

    fn incr_by(&mut self, key: &Bytes, by: i64, out: &mut Vec<u8>) {
        let current = match self.get(key) {
            None => Some(0),
            Some(v) => parse_i64(v),
        };
        match current.and_then(|c| c.checked_add(by)) {
            Some(n) => {
                let expiry = self.map.get(key).and_then(|(_, e)| *e);
                self.map
                    .insert(key.clone(), (Bytes::from(n.to_string()), expiry));
                int(out, n);
            }
            None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
        }
    }

    /// Runs `args` (a command and its arguments), appending the reply to `out`.
    pub fn execute(&mut self, args: &[Bytes], out: &mut Vec<u8>) -> After {
        let name = args[0].to_ascii_lowercase();
        let n = args.len();
        let arity_ok = match name.as_slice() {
            b"ping" => n <= 2,
            b"echo" | b"get" | b"incr" | b"decr" | b"select" => n == 2,
            b"set" => n >= 3,
            b"del" | b"exists" | b"mget" => n >= 2,
            b"incrby" => n == 3,
            b"mset" => n >= 3 && n % 2 == 1,
            b"dbsize" | b"quit" => n == 1,
            b"flushdb" | b"flushall" | b"command" => true,
            b"config" | b"client" => n >= 2,
            _ => {
                let _ = write!(
                    out,
                    "-ERR unknown command '{}', with args beginning with: ",
                    String::from_utf8_lossy(&args[0])
                );
                for a in &args[1..] {
                    let _ = write!(out, "'{}' ", String::from_utf8_lossy(a));
                }
                out.extend_from_slice(b"\r\n");
                return After::Continue;
            }
        };
        if !arity_ok {
            let _ = write!(
                out,
                "-ERR wrong number of arguments for '{}' command\r\n",
                String::from_utf8_lossy(&name)
            );
            return After::Continue;
        }
        match name.as_slice() {
            b"ping" if n == 2 => bulk(out, &args[1]),
            b"ping" => out.extend_from_slice(b"+PONG\r\n"),
            b"echo" => bulk(out, &args[1]),
            b"get" => match self.get(&args[1]) {
                Some(v) => bulk(out, &v.clone()),
                None => out.extend_from_slice(b"$-1\r\n"),
            },
            b"set" => {
                let mut expiry = None;
                let mut i = 3;
                while i < n {
                    let unit = match args[i].to_ascii_lowercase().as_slice() {
                        b"ex" => 1000,
                        b"px" => 1,
                        _ => 0,
                    };
                    let amount = args.get(i + 1).and_then(|a| parse_i64(a));
                    match (unit, amount) {
                        (0, _) | (_, None) => {
                            out.extend_from_slice(b"-ERR syntax error\r\n");
                            return After::Continue;
                        }
                        (_, Some(a)) if a <= 0 => {
                            out.extend_from_slice(b"-ERR invalid expire time in 'set' command\r\n");
                            return After::Continue;
                        }
                        (u, Some(a)) => {
                            expiry = Some(Instant::now() + Duration::from_millis((a * u) as u64))
                        }
                    }
                    i += 2;
                }
                self.map.insert(args[1].clone(), (args[2].clone(), expiry));
                out.extend_from_slice(b"+OK\r\n");
            }
            b"del" => {
                let gone = args[1..]
                    .iter()
                    .filter(|k| self.get(k).is_some() && self.map.remove(*k).is_some())
                    .count();
                int(out, gone as i64);
            }
            b"exists" => {
                let found = args[1..].iter().filter(|k| self.get(k).is_some()).count();
                int(out, found as i64);
            }
            b"incr" => self.incr_by(&args[1], 1, out),
            b"decr" => self.incr_by(&args[1], -1, out),
            b"incrby" => match parse_i64(&args[2]) {
                Some(by) => self.incr_by(&args[1], by, out),
                None => out.extend_from_slice(b"-ERR value is not an integer or out of range\r\n"),
            },
            b"mget" => {
                let _ = write!(out, "*{}\r\n", n - 1);
                for k in &args[1..] {
                    match self.get(k) {
                        Some(v) => bulk(out, &v.clone()),
                        None => out.extend_from_slice(b"$-1\r\n"),
                    }
                }
            }
            b"mset" => {
                for kv in args[1..].chunks(2) {
                    self.map.insert(kv[0].clone(), (kv[1].clone(), None));
                }
                out.extend_from_slice(b"+OK\r\n");
            }
            b"dbsize" => int(out, self.map.len() as i64),
            b"flushdb" | b"flushall" => {
                self.map.clear();
                out.extend_from_slice(b"+OK\r\n");
            }
            b"select" if &args[1][..] == b"0" => out.extend_from_slice(b"+OK\r\n"),
            b"select" => out.extend_from_slice(b"-ERR DB index is out of range\r\n"),
            b"config" => {
                // What redis-benchmark asks before it starts.
                let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
                for p in &args[2..] {
                    match p.to_ascii_lowercase().as_slice() {
                        b"save" => pairs.push((b"save", b"")),
                        b"appendonly" => pairs.push((b"appendonly", b"no")),
                        _ => {}
                    }
                }
                let _ = write!(out, "*{}\r\n", pairs.len() * 2);
                for (k, v) in pairs {
                    bulk(out, k);
                    bulk(out, v);
                }
            }
            b"command" => out.extend_from_slice(b"*0\r\n"),
            b"client" => out.extend_from_slice(b"+OK\r\n"),
            b"quit" => {
                out.extend_from_slice(b"+OK\r\n");
                return After::Close;
            }
            _ => out.extend_from_slice(b"-ERR internal\r\n"),
        }
        After::Continue
    }
}
