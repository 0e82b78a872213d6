//! Idle connections for the idle-scale scenario, and the descriptor limit they need.

use crate::workload::Workload;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Raises this process's soft limit on open descriptors to its hard limit; returns the new
/// soft limit.
pub fn raise_nofile_limit() -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the call's duration.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(format!("getrlimit: {}", std::io::Error::last_os_error()));
    }
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid `rlimit`; raising the soft limit up to the hard one is allowed.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    Ok(lim.rlim_cur)
}

/// One connection in this many (and the last) makes a round trip; the others never send.
const PROBE_EVERY: usize = 256;

/// Opens `count` connections to `addr` and leaves them idle: they never send, except one
/// in [`PROBE_EVERY`] and the last, which make one round trip of `workload`'s probe
/// request. A server accepts connections in the order they came (the accept queue is
/// first in, first out), so when a probe is answered, every connection before it has
/// been accepted; probing in batches also keeps the accept queue from overflowing.
pub fn open(addr: SocketAddr, workload: Workload, count: usize) -> Result<Vec<TcpStream>, String> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let limit = raise_nofile_limit()?;
    if (count as u64) + 64 > limit {
        return Err(format!(
            "{count} idle connections need more descriptors than the hard limit {limit}"
        ));
    }
    let (probe, reply) = workload.probe();
    let mut got = vec![0u8; reply.len()];
    let mut idle = Vec::with_capacity(count);
    for i in 0..count {
        let fail = |what: &str, e: std::io::Error| format!("idle connection {i}: {what}: {e}");
        let mut s = TcpStream::connect(addr).map_err(|e| fail("connect", e))?;
        if (i + 1) % PROBE_EVERY == 0 || i + 1 == count {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .map_err(|e| fail("timeout", e))?;
            s.write_all(&probe).map_err(|e| fail("write", e))?;
            s.read_exact(&mut got).map_err(|e| fail("read", e))?;
            if got != reply {
                return Err(format!(
                    "idle connection {i}: got {:?}, expected {:?}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&reply)
                ));
            }
        }
        idle.push(s);
    }
    Ok(idle)
}
