//! Fan-out through `chat_server`: N users, one of them talks, every other one must receive
//! every message, byte for byte, in order.
//!
//! The talker keeps at most W messages ahead of the slowest listener. Before the run each
//! user connects in turn and reads its `* welcome NAME` line, so the `* NAME joined` notices
//! every earlier user gets are known exactly and checked too.

use crate::hist::Histogram;
use crate::{Phases, Report};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

struct Listener {
    stream: TcpStream,
    /// Notices expected before the first message: `notices[seen..]` still to come.
    notices: Vec<u8>,
    seen: usize,
    /// Messages received whole, and bytes received of the next one.
    received: u64,
    offset: usize,
}

/// The messages some listener still waits for, and how many listeners are at each count.
struct Board {
    /// Expected lines (as listeners get them) and when the talker queued each, from `base`.
    lines: VecDeque<(Vec<u8>, Instant)>,
    base: u64,
    /// `at[j]`: listeners that received exactly `base + j` messages.
    at: VecDeque<usize>,
    sent: u64,
}

impl Board {
    /// The fewest messages any listener has received (all earlier lines are dropped).
    fn slowest(&self) -> u64 {
        self.base
    }

    fn advance(&mut self, from: u64) {
        let j = (from - self.base) as usize;
        self.at[j] -= 1;
        if j + 1 == self.at.len() {
            self.at.push_back(0);
        }
        self.at[j + 1] += 1;
        while self.at.front() == Some(&0) {
            self.at.pop_front();
            self.lines.pop_front();
            self.base += 1;
        }
    }
}

fn read_line(s: &mut std::net::TcpStream) -> Result<String, String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.last() != Some(&b'\n') {
        if line.len() > 200 {
            return Err("welcome line too long".into());
        }
        match s.read(&mut byte) {
            Ok(0) => return Err("closed before the welcome line".into()),
            Ok(_) => line.push(byte[0]),
            Err(e) => return Err(format!("reading the welcome line: {e}")),
        }
    }
    String::from_utf8(line).map_err(|_| "welcome line is not UTF-8".into())
}

fn message(k: u64, size: usize) -> Vec<u8> {
    let mut body = format!("m{k:012}:").into_bytes();
    while body.len() + 1 < size {
        body.push(b'a' + ((k as usize + body.len()) % 26) as u8);
    }
    body.push(b'\n');
    body
}

/// Runs the fan-out: `users` connections, the last one talks.
pub fn run(
    addr: SocketAddr,
    users: usize,
    window: usize,
    size: usize,
    duration: Duration,
    phases: &mut Phases,
) -> Result<Report, String> {
    if users < 2 {
        return Err("--users must be at least 2".into());
    }
    crate::idle::raise_nofile_limit()?;
    let mut streams = Vec::with_capacity(users);
    let mut notices: Vec<Vec<u8>> = Vec::with_capacity(users);
    let mut name = String::new();
    for i in 0..users {
        let mut s =
            std::net::TcpStream::connect(addr).map_err(|e| format!("user {i}: connect: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let line = read_line(&mut s).map_err(|e| format!("user {i}: {e}"))?;
        name = line
            .strip_prefix("* welcome ")
            .and_then(|r| r.strip_suffix('\n'))
            .ok_or_else(|| format!("user {i}: expected `* welcome NAME`, got {line:?}"))?
            .to_string();
        let joined = format!("* {name} joined\n");
        for n in &mut notices {
            n.extend_from_slice(joined.as_bytes());
        }
        notices.push(Vec::new());
        streams.push(s);
    }
    let talker_name = name;
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let register = |s: std::net::TcpStream, id: usize| -> Result<TcpStream, String> {
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        s.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut m = TcpStream::from_std(s);
        poll.registry()
            .register(&mut m, Token(id), Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| format!("register: {e}"))?;
        Ok(m)
    };
    // Every stream was pushed with its notices, so the last of each is the talker's.
    let talker_std = streams.pop().ok_or("no talker")?;
    notices.pop();
    let talker_id = streams.len();
    let mut listeners = Vec::with_capacity(streams.len());
    for (id, (s, n)) in streams.into_iter().zip(notices).enumerate() {
        listeners.push(Listener {
            stream: register(s, id)?,
            notices: n,
            seen: 0,
            received: 0,
            offset: 0,
        });
    }
    let mut talker = register(talker_std, talker_id)?;
    let mut board = Board {
        lines: VecDeque::new(),
        base: 0,
        at: VecDeque::from([listeners.len()]),
        sent: 0,
    };
    let mut out: Vec<u8> = Vec::new();
    let mut written = 0;
    let mut hist = Histogram::default();
    let (mut total, mut in_window) = (0u64, 0u64);

    phases.ready()?;
    let start = Instant::now();
    let end = start + duration;
    let mut drain_deadline = end + DRAIN_DEADLINE;
    let mut sending = true;
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if sending && now >= end {
            sending = false;
            drain_deadline = now + DRAIN_DEADLINE;
        }
        if sending {
            while board.sent - board.slowest() < window as u64 {
                let body = message(board.sent, size);
                out.extend_from_slice(&body);
                let mut line = format!("{talker_name}: ").into_bytes();
                line.extend_from_slice(&body);
                board.lines.push_back((line, now));
                board.sent += 1;
            }
        }
        while written < out.len() {
            match talker.write(&out[written..]) {
                Ok(n) => written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("talker: write: {e}")),
            }
        }
        if written == out.len() {
            out.clear();
            written = 0;
        }
        if !sending && board.slowest() == board.sent {
            break;
        }
        if !sending && now >= drain_deadline {
            return Err(format!(
                "the slowest listener still misses {} messages {DRAIN_DEADLINE:?} after the run",
                board.sent - board.slowest()
            ));
        }
        let wait = if sending {
            end - now
        } else {
            drain_deadline - now
        };
        poll.poll(&mut events, Some(wait.min(Duration::from_millis(100))))
            .map_err(|e| format!("poll: {e}"))?;
        for event in events.iter() {
            let id = event.token().0;
            if id == talker_id {
                match talker.read(&mut buf) {
                    Ok(0) => return Err("the server closed the talker".into()),
                    Ok(n) => {
                        return Err(format!(
                            "the talker got {:?}, expected nothing",
                            String::from_utf8_lossy(&buf[..n])
                        ))
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(format!("talker: read: {e}")),
                }
                continue;
            }
            let l = &mut listeners[id];
            loop {
                let n = match l.stream.read(&mut buf) {
                    Ok(0) => return Err(format!("listener {id}: closed by the server")),
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("listener {id}: read: {e}")),
                };
                let mut data = &buf[..n];
                while !data.is_empty() {
                    let want: &[u8] = if l.seen < l.notices.len() {
                        &l.notices[l.seen..]
                    } else {
                        let k = l.received;
                        if k >= board.sent {
                            return Err(format!(
                                "listener {id}: got {:?} beyond the {} messages sent",
                                String::from_utf8_lossy(data),
                                board.sent
                            ));
                        }
                        &board.lines[(k - board.base) as usize].0[l.offset..]
                    };
                    let m = want.len().min(data.len());
                    if want[..m] != data[..m] {
                        return Err(format!(
                            "listener {id}: got {:?}, expected {:?}",
                            String::from_utf8_lossy(&data[..m]),
                            String::from_utf8_lossy(&want[..m])
                        ));
                    }
                    data = &data[m..];
                    if l.seen < l.notices.len() {
                        l.seen += m;
                        continue;
                    }
                    l.offset += m;
                    let k = l.received;
                    let (line, queued) = &board.lines[(k - board.base) as usize];
                    if l.offset == line.len() {
                        let now = Instant::now();
                        total += 1;
                        if now <= end {
                            in_window += 1;
                            hist.record(now - *queued);
                        }
                        l.offset = 0;
                        l.received += 1;
                        board.advance(k);
                    }
                }
            }
        }
    }
    phases.done()?;
    Ok(Report {
        total,
        window: in_window,
        seconds: duration.as_secs_f64(),
        hist,
    })
}

/// A flood of joins: one user connects and reads its welcome, then `users` more connect
/// as fast as the kernel lets them, each reading its welcome, while the first must be
/// told of every one of them (`* NAME joined`), in order. Reports joins per second and
/// the latency from a connect to its welcome.
pub fn joins(addr: SocketAddr, users: usize, phases: &mut Phases) -> Result<Report, String> {
    crate::idle::raise_nofile_limit()?;
    let mut first =
        std::net::TcpStream::connect(addr).map_err(|e| format!("first user: connect: {e}"))?;
    first
        .set_read_timeout(Some(DRAIN_DEADLINE))
        .map_err(|e| e.to_string())?;
    let welcome = read_line(&mut first)?;
    if !welcome.starts_with("* welcome ") {
        return Err(format!(
            "first user: expected `* welcome NAME`, got {welcome:?}"
        ));
    }
    first.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut first = TcpStream::from_std(first);
    const FIRST: Token = Token(usize::MAX);
    poll.registry()
        .register(&mut first, FIRST, Interest::READABLE)
        .map_err(|e| format!("register: {e}"))?;

    phases.ready()?;
    let start = Instant::now();
    let mut hist = Histogram::default();
    let mut joiners: Vec<(TcpStream, Instant, Vec<u8>, bool)> = Vec::with_capacity(users);
    for i in 0..users {
        let mut s = TcpStream::connect(addr).map_err(|e| format!("user {i}: connect: {e}"))?;
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE)
            .map_err(|e| format!("register: {e}"))?;
        joiners.push((s, Instant::now(), Vec::new(), false));
    }
    let (mut welcomed, mut notices) = (0usize, Vec::new());
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = start + DRAIN_DEADLINE;
    while welcomed < users || notices.iter().filter(|&&b| b == b'\n').count() < users {
        if Instant::now() >= deadline {
            return Err(format!(
                "{welcomed} of {users} welcomed, {} notices after {DRAIN_DEADLINE:?}",
                notices.iter().filter(|&&b| b == b'\n').count()
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .map_err(|e| format!("poll: {e}"))?;
        for ev in events.iter() {
            let stream = if ev.token() == FIRST {
                &mut first
            } else {
                &mut joiners[ev.token().0].0
            };
            loop {
                match stream.read(&mut buf) {
                    Ok(0) => return Err("the server closed a connection".into()),
                    Ok(n) if ev.token() == FIRST => notices.extend_from_slice(&buf[..n]),
                    Ok(n) => {
                        let (_, at, got, done) = &mut joiners[ev.token().0];
                        got.extend_from_slice(&buf[..n]);
                        if !*done && got.contains(&b'\n') {
                            *done = true;
                            welcomed += 1;
                            hist.record(at.elapsed());
                        }
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    phases.done()?;
    // Every join announced once, in the order of the welcomes' names.
    let text = String::from_utf8_lossy(&notices);
    let mut names: Vec<&str> = text
        .lines()
        .map(|l| {
            l.strip_prefix("* ")
                .and_then(|l| l.strip_suffix(" joined"))
                .unwrap_or("")
        })
        .collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(format!(
            "the first user got other lines than notices: {text:?}"
        ));
    }
    names.sort_unstable();
    names.dedup();
    if names.len() != users {
        return Err(format!(
            "{} distinct join notices for {users} joins",
            names.len()
        ));
    }
    Ok(Report {
        total: users as u64,
        window: users as u64,
        seconds,
        hist,
    })
}
