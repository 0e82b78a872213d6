//! CPython 3.11's `smtpd` on `async_chat`: `SMTPChannel` ([`SmtpChannel`]), `SMTPServer`
//! ([`SmtpServer`]) and `DebuggingServer` ([`debugging_server`]), ported line by line
//! from `Lib/smtpd.py`, with its replies, limits and quirks.
//!
//! A client written against `python -m smtpd -n -c DebuggingServer` sees the same
//! conversation: the greeting `220 HOST Python SMTP proxy version 0.3`, the same reply to
//! every command, the 512-byte command lines (and MAIL's allowance grown by each EHLO,
//! which smtpd keeps in a class attribute shared by every connection: here the map's
//! data), SIZE, 8BITMIME and SMTPUTF8, dot-stuffing, and DebuggingServer's printout of
//! each message. Where smtpd raises (a command line that is not UTF-8, an address its
//! parser refuses, a reply that is not ASCII without SMTPUTF8, `SIZE` without a value),
//! asyncore closed the connection without a reply; so does this port.
//!
//! What differs: the greeting's host name is `--hostname` or the same lookup as
//! `socket.getfqdn()` (the host name resolved, then its address reversed); nothing is
//! printed on the debug stream (`-d`); and the program prints `listening on HOST:PORT`
//! first.

mod addr;
mod channel;
#[cfg(unix)]
mod fqdn;
mod pyrepr;

pub use addr::{getaddr, AddrError};
pub use channel::SmtpChannel;
#[cfg(unix)]
pub use fqdn::getfqdn;
pub use pyrepr::{bytes_repr, list_repr};

use asyncore_chat::{AsyncChat, Terminator};
use asyncore_core::{
    Channel, Context, Dispatcher, DisplayAddr, HandlerResult, SockAddr, Socket, SocketMap,
};
use std::collections::HashMap;
use std::io::Write;

/// smtpd's `__version__`, which its greeting shows.
pub const VERSION: &str = "Python SMTP proxy version 0.3";

/// smtpd's `command_size_limit`: the longest command line, in bytes.
pub const COMMAND_SIZE_LIMIT: usize = 512;

/// smtpd's `DATA_SIZE_DEFAULT` (32 MiB). `python -m smtpd` passes no limit unless `-s`.
pub const DATA_SIZE_DEFAULT: usize = 33_554_432;

/// A message as `process_message` gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The client's address (`peer[0]`).
    pub peer: String,
    /// The address of `MAIL FROM:`.
    pub mailfrom: String,
    /// The addresses of `RCPT TO:`.
    pub rcpttos: Vec<String>,
    /// The message, with its lines joined by `\n` and the dot-stuffing undone.
    pub data: Vec<u8>,
    /// The parameters of `MAIL FROM:`, upper-cased.
    pub mail_options: Vec<String>,
    /// The parameters of the last `RCPT TO:`, upper-cased.
    pub rcpt_options: Vec<String>,
}

/// What a server does with a message: `None` for `250 OK`, else the reply to send.
/// Python: `SMTPServer.process_message`.
pub type ProcessMessage = fn(&Message) -> Option<String>;

/// `DebuggingServer.process_message`: prints the message on standard output exactly as
/// smtpd does (each line as Python's `repr` of its bytes, `X-Peer` after the headers).
pub fn debugging_server(msg: &Message) -> Option<String> {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(debugging_printout(msg).as_bytes());
    let _ = out.flush();
    None
}

/// The text [`debugging_server`] prints for `msg`.
pub fn debugging_printout(msg: &Message) -> String {
    let mut out = String::from("---------- MESSAGE FOLLOWS ----------\n");
    if !msg.mail_options.is_empty() {
        out.push_str(&format!("mail options: {}\n", list_repr(&msg.mail_options)));
    }
    if !msg.rcpt_options.is_empty() {
        out.push_str(&format!(
            "rcpt options: {}\n\n",
            list_repr(&msg.rcpt_options)
        ));
    }
    let mut in_headers = true;
    for line in splitlines(&msg.data) {
        if in_headers && line.is_empty() {
            let peer = format!("X-Peer: {}", msg.peer);
            out.push_str(&bytes_repr(peer.as_bytes()));
            out.push('\n');
            in_headers = false;
        }
        out.push_str(&bytes_repr(line));
        out.push('\n');
    }
    out.push_str("------------ END MESSAGE ------------\n");
    out
}

/// Python's `bytes.splitlines()`: lines ended by `\n`, `\r\n` or `\r`, without them.
fn splitlines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                lines.push(&data[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&data[start..i]);
                if data.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        lines.push(&data[start..]);
    }
    lines
}

/// What every connection of a server shares. Python: `SMTPServer.__init__`'s arguments.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `data_size_limit`: the largest message, advertised as SIZE; `None`: no limit (what
    /// `python -m smtpd` passes without `-s`).
    pub data_size_limit: Option<usize>,
    /// `enable_SMTPUTF8`.
    pub enable_smtputf8: bool,
    /// The name in the greeting and in HELO/EHLO replies (smtpd: `socket.getfqdn()`).
    pub hostname: String,
    /// What to do with each message.
    pub process_message: ProcessMessage,
    /// Close a conversation after this long without traffic (not in smtpd).
    pub idle_timeout: Option<std::time::Duration>,
    /// STARTTLS (RFC 3207; not in smtpd), advertised in EHLO when set.
    pub tls: Option<crate::tls::ServerTls>,
}

/// smtpd's class-level `command_size_limits`, shared by every connection of a server:
/// each new connection clears it, each EHLO grows MAIL's entry. The map's data.
#[derive(Debug, Default)]
struct CommandSizeLimits(HashMap<String, usize>);

impl CommandSizeLimits {
    /// `command_size_limits[command]` of a `defaultdict`: a missing command gets the
    /// default, and keeps it.
    fn get(&mut self, command: &str) -> usize {
        *self
            .0
            .entry(command.to_string())
            .or_insert(COMMAND_SIZE_LIMIT)
    }

    fn add(&mut self, command: &str, n: usize) {
        *self
            .0
            .entry(command.to_string())
            .or_insert(COMMAND_SIZE_LIMIT) += n;
    }

    /// `max_command_size_limit`.
    fn max(&self) -> usize {
        self.0.values().copied().max().unwrap_or(COMMAND_SIZE_LIMIT)
    }
}

/// Runs `f` on the server's shared command size limits.
fn limits<R>(map: &mut SocketMap, f: impl FnOnce(&mut CommandSizeLimits) -> R) -> R {
    f(map.data_or_default::<CommandSizeLimits>())
}

/// `SMTPServer`: the listener; each connection becomes an [`SmtpChannel`].
#[derive(Debug)]
pub struct SmtpServer {
    settings: Settings,
}

impl SmtpServer {
    /// A server with these settings.
    pub fn new(settings: Settings) -> SmtpServer {
        SmtpServer { settings }
    }
}

impl Dispatcher for SmtpServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        log::debug!("Incoming connection from {}", DisplayAddr(&addr));
        let peer = addr
            .as_socket()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let channel = SmtpChannel::new(self.settings.clone(), peer);
        let mut chat = AsyncChat::with_terminator(channel, Terminator::CRLF);
        // The handler bounds what it keeps (smtpd's limits), as smtpd does.
        chat.set_max_input(None);
        let id = ctx.insert(Channel::from_socket(sock)?, chat)?;
        if let Some(period) = self.settings.idle_timeout {
            ctx.map().set_idle_timeout(id, Some(period))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_as_python_bytes() {
        assert_eq!(splitlines(b"a\nb\r\nc\rd\n"), [&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(splitlines(b"a\n\nb"), [&b"a"[..], b"", b"b"]);
        assert!(splitlines(b"").is_empty());
    }

    #[test]
    fn the_printout_is_debugging_servers() {
        let msg = Message {
            peer: "127.0.0.1".into(),
            mailfrom: "a@b".into(),
            rcpttos: vec!["c@d".into()],
            data: b"Subject: hi\n\nbody line\n.dot".to_vec(),
            mail_options: vec!["BODY=8BITMIME".into()],
            rcpt_options: vec![],
        };
        assert_eq!(
            debugging_printout(&msg),
            "---------- MESSAGE FOLLOWS ----------\n\
             mail options: ['BODY=8BITMIME']\n\
             b'Subject: hi'\n\
             b'X-Peer: 127.0.0.1'\n\
             b''\n\
             b'body line'\n\
             b'.dot'\n\
             ------------ END MESSAGE ------------\n"
        );
    }
}
