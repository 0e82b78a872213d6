//! Child processes for the tasks: finding tools, background servers with deadlines.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

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
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if let Some(found) = ready(&line) {
                        let _ = tx.send(found);
                    }
                }
            });
        }
        match rx.recv_timeout(READY_DEADLINE) {
            Ok(found) => Ok(Background { child, found }),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "{cmd:?} did not become ready within {READY_DEADLINE:?}"
                ))
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
