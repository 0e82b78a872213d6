//! Child processes for the tasks: finding tools, background servers with deadlines.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How many of a background program's last output lines are kept for error messages.
const TAIL_LINES: usize = 20;

/// How long a background program may take to say it is ready.
const READY_DEADLINE: Duration = Duration::from_secs(20);

/// Fails loudly when `tool` is not on the PATH.
pub fn find_tool(tool: &str) -> Result<(), String> {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    if found {
        Ok(())
    } else {
        Err(format!(
            "`{tool}` is not installed (on Debian: apt-get install -y {})",
            match tool {
                "redis-cli" | "redis-benchmark" => "redis-tools",
                "redis-server" => "redis-server",
                "python3" => "python3",
                "taskset" | "prlimit" => "util-linux",
                "wine" | "wineserver" => "wine",
                other => other,
            }
        ))
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn unused_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// A program running in the background until dropped (then killed).
pub struct Background {
    child: Child,
    /// What `ready` extracted from the program's output (e.g. its port).
    pub found: String,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Background {
    /// Starts `cmd` and reads its standard output (and error) line by line until `ready`
    /// returns `Some`, or fails after a deadline.
    pub fn start(
        cmd: &mut Command,
        ready: impl Fn(&str) -> Option<String> + Send + Clone + 'static,
    ) -> Result<Background, String> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let out = child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        let err = child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
        for stream in [out, err].into_iter().flatten() {
            let tx = tx.clone();
            let ready = ready.clone();
            let tail = tail.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(found) = ready(&line) {
                        let _ = tx.send(found);
                    }
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == TAIL_LINES {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        // Only the reading threads hold senders now: the channel disconnects when both end.
        drop(tx);
        let deadline = std::time::Instant::now() + READY_DEADLINE;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(found) => return Ok(Background { child, found, tail }),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                // Both output streams are closed: the program exited or closed them.
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.kill();
                    let status = child.wait();
                    return Err(format!(
                        "{cmd:?} ended its output before it was ready ({status:?}){}",
                        show_tail(&tail)
                    ));
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // Whatever it printed before exiting has been read by now or never will.
                if let Ok(found) = rx.recv_timeout(Duration::from_millis(100)) {
                    return Ok(Background { child, found, tail });
                }
                return Err(format!(
                    "{cmd:?} exited before it was ready ({status}){}",
                    show_tail(&tail)
                ));
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{cmd:?} did not become ready within {READY_DEADLINE:?}"
                ));
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the program is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The program's last lines of output (standard output and error mixed), for errors.
    pub fn tail(&self) -> String {
        show_tail(&self.tail)
    }
}

fn show_tail(tail: &Mutex<VecDeque<String>>) -> String {
    match tail.lock() {
        Ok(t) if !t.is_empty() => {
            let lines: Vec<&str> = t.iter().map(String::as_str).collect();
            format!("; its last output:\n  {}", lines.join("\n  "))
        }
        _ => String::new(),
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
