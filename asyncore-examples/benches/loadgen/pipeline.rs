//! C connections, each keeping up to W requests in flight, every reply byte checked.

use crate::hist::Histogram;
use crate::workload::Workload;
use crate::{Phases, Report};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long outstanding replies may take to arrive once sending has stopped.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// One client connection and what it still expects.
struct Conn {
    stream: TcpStream,
    /// Requests generated but not yet written: `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    /// Reply bytes still to come: `expect[matched..]`.
    expect: Vec<u8>,
    matched: usize,
    /// For each request in flight: reply bytes still to come, and when it was queued.
    replies: VecDeque<(usize, Instant)>,
    seq: u64,
    write_blocked: bool,
}

/// Counters of one run.
struct Stats {
    start: Instant,
    end: Instant,
    /// Replies completed between `start` and `end`.
    window: u64,
    /// Replies completed in all.
    total: u64,
    hist: Histogram,
}

impl Conn {
    /// Queues requests until `window` are in flight.
    fn fill(&mut self, id: usize, workload: Workload, window: usize, now: Instant) {
        while self.replies.len() < window {
            let len = workload.request(id, self.seq, &mut self.out, &mut self.expect);
            self.replies.push_back((len, now));
            self.seq += 1;
        }
    }

    /// Writes queued requests until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.sent < self.out.len() {
            match self.stream.write(&self.out[self.sent..]) {
                Ok(0) => return Err(io::Error::new(ErrorKind::WriteZero, "write returned 0")),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.write_blocked = false;
        self.out.clear();
        self.sent = 0;
        Ok(())
    }

    /// Reads until the socket is empty, checking every byte against what is expected.
    fn read(&mut self, id: usize, buf: &mut [u8], stats: &mut Stats) -> Result<(), String> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => {
                    return Err(format!(
                        "connection {id}: the server closed it with {} replies outstanding",
                        self.replies.len()
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("connection {id}: read: {e}")),
            };
            self.check(id, &buf[..n], stats)?;
        }
    }

    fn check(&mut self, id: usize, data: &[u8], stats: &mut Stats) -> Result<(), String> {
        let want = &self.expect[self.matched..];
        if data.len() > want.len() || want[..data.len()] != *data {
            let at = data
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(want.len());
            let show =
                |b: &[u8]| String::from_utf8_lossy(&b[at..b.len().min(at + 60)]).into_owned();
            return Err(format!(
                "connection {id}: wrong reply after {} good bytes of this read: got {:?}, expected {:?}",
                at,
                show(data),
                show(want)
            ));
        }
        self.matched += data.len();
        let now = Instant::now();
        let mut left = data.len();
        while left > 0 {
            // The expected bytes cover exactly the replies in flight, so one is there.
            let Some(front) = self.replies.front_mut() else {
                return Err(format!("connection {id}: bookkeeping lost a reply"));
            };
            if left < front.0 {
                front.0 -= left;
                break;
            }
            left -= front.0;
            let queued = front.1;
            self.replies.pop_front();
            stats.total += 1;
            if now >= stats.start && now <= stats.end {
                stats.window += 1;
                stats.hist.record(now - queued);
            }
        }
        if self.matched == self.expect.len() {
            self.expect.clear();
            self.matched = 0;
        } else if self.matched > 1 << 16 {
            self.expect.drain(..self.matched);
            self.matched = 0;
        }
        Ok(())
    }
}

/// Runs the pipelined load: connects, tells the harness, runs for `duration`, waits for
/// every outstanding reply.
pub fn run(
    addr: SocketAddr,
    workload: Workload,
    connections: usize,
    window: usize,
    duration: Duration,
    phases: &mut Phases,
) -> Result<Report, String> {
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut conns = Vec::with_capacity(connections);
    for id in 0..connections {
        let std = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        std.set_nodelay(true).map_err(|e| e.to_string())?;
        std.set_nonblocking(true).map_err(|e| e.to_string())?;
        let mut stream = TcpStream::from_std(std);
        poll.registry()
            .register(
                &mut stream,
                Token(id),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("register: {e}"))?;
        conns.push(Conn {
            stream,
            out: Vec::new(),
            sent: 0,
            expect: Vec::new(),
            matched: 0,
            replies: VecDeque::new(),
            seq: 0,
            write_blocked: false,
        });
    }
    phases.ready()?;
    let start = Instant::now();
    let end = start + duration;
    let mut stats = Stats {
        start,
        end,
        window: 0,
        total: 0,
        hist: Histogram::default(),
    };
    for (id, c) in conns.iter_mut().enumerate() {
        c.fill(id, workload, window, start);
        c.flush()
            .map_err(|e| format!("connection {id}: write: {e}"))?;
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0u8; 64 * 1024];
    let mut sending = true;
    let mut drain_deadline = end + DRAIN_DEADLINE;
    loop {
        let now = Instant::now();
        if sending && now >= end {
            sending = false;
            drain_deadline = now + DRAIN_DEADLINE;
        }
        let in_flight: usize = conns.iter().map(|c| c.replies.len()).sum();
        if !sending && in_flight == 0 {
            break;
        }
        if !sending && now >= drain_deadline {
            return Err(format!(
                "{in_flight} replies still missing {DRAIN_DEADLINE:?} after the run"
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
            let c = &mut conns[id];
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                c.read(id, &mut buf, &mut stats)?;
                if sending {
                    c.fill(id, workload, window, Instant::now());
                }
            }
            if !c.out.is_empty() && (event.is_writable() || !c.write_blocked) {
                c.flush()
                    .map_err(|e| format!("connection {id}: write: {e}"))?;
            }
        }
    }
    phases.done()?;
    Ok(Report {
        total: stats.total,
        window: stats.window,
        seconds: duration.as_secs_f64(),
        hist: stats.hist,
    })
}
