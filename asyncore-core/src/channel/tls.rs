//! TLS on a channel (the `tls` feature): a rustls session between the socket and the
//! channel's `recv`/`send`, so that the layers above see plaintext.
//!
//! The session sits where Python's `ssl.SSLSocket` sat under an asyncore dispatcher, with
//! the recipes of CPython's `test_ssl` done once, here: the handshake is driven by the
//! loop from readiness (no `do_handshake()` retried by hand), plaintext decrypted and not
//! yet read raises a read event by itself (Python's `pending()` check in `readable`), and
//! what TLS itself must send or receive (handshake messages, alerts, `close_notify`) adds
//! to the channel's predicates.
//!
//! Reads: `recv` hands out decrypted plaintext; when there is none it reads one batch of
//! records from the socket, decrypts it and tries again. Writes: `send` and
//! `initiate_send` first flush the records TLS holds from before; only when they are all
//! on the wire is more plaintext taken (at most one [`max_send`](Channel::max_send)), so
//! that what TLS buffers stays bounded and a peer that does not read is held back by the
//! same watermarks as over plaintext.
//!
//! STARTTLS: the bytes queued in the channel's send queue when TLS starts go out in
//! plaintext first (the reply to `STARTTLS`); records follow them.

use super::{not_open, Channel};
use crate::raw_io::Io;
use crate::send_queue::MAX_IOVECS;
use crate::state::seen;
use crate::sys::{self, ErrorClass};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};
use socket2::Socket;
use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;

/// A channel's TLS session and what the channel knows about it.
pub(crate) struct TlsSession {
    conn: Connection,
    /// Bytes at the front of the send queue that were queued before TLS started: they go
    /// out in plaintext, before any record.
    plain_out: usize,
    /// Plaintext decrypted and not read yet.
    plain_in: usize,
    /// The socket returned its end of stream.
    tcp_eof: bool,
    /// The peer's close_notify has been processed (its end of the plaintext stream).
    peer_closed: bool,
    /// The end of the plaintext stream was handed out (`recv` returned 0).
    eof_told: bool,
    /// A `close_notify` is queued (or sent).
    close_notify: bool,
    /// The session failed: every later read or write fails with it.
    failed: Option<rustls::Error>,
    /// The loop has not yet armed the handshake timeout for this session.
    pub(crate) unarmed: bool,
}

/// What one read of records from the socket brought.
enum Fill {
    /// Records were read and processed.
    Progress,
    /// Nothing to read now.
    Drained,
    /// The socket's end of stream.
    Eof,
    /// The connection broke (a disconnect error).
    Gone,
}

/// The socket as rustls's reader, noting a short read (on a stream socket under epoll, it
/// shows the socket drained: see `sys::SHORT_READ_DRAINS`).
struct RecvFrom<'a> {
    sock: &'a Socket,
    short: bool,
}

impl Read for RecvFrom<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (&mut &*self.sock).read(buf)?;
        self.short = n > 0 && n < buf.len();
        Ok(n)
    }
}

/// The socket as rustls's writer: `send(2)` with the crate's flags (no `SIGPIPE`).
struct SendTo<'a>(&'a Socket);

impl Write for SendTo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.send_with_flags(buf, sys::SEND_FLAGS)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.send_vectored_with_flags(bufs, sys::SEND_FLAGS)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rustls error as an `io::Error` (kind `InvalidData`); the rustls error is its source:
/// `err.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())`.
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsSession {
    fn new(conn: Connection, plain_out: usize) -> TlsSession {
        TlsSession {
            conn,
            plain_out,
            plain_in: 0,
            tcp_eof: false,
            peer_closed: false,
            eof_told: false,
            close_notify: false,
            failed: None,
            unarmed: true,
        }
    }

    /// Writes the records TLS holds, until they are all sent or the socket is full.
    /// Returns the notes for the channel.
    fn write_out(&mut self, sock: &Socket, notes: &mut u8, has_sent: &mut bool) -> io::Result<()> {
        if self.plain_out > 0 {
            return Ok(()); // The plaintext before the upgrade goes first.
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut SendTo(sock)) {
                Ok(0) => break,
                Ok(_) => *has_sent = true,
                Err(e) => match sys::classify(&e) {
                    ErrorClass::WouldBlock => {
                        *notes |= seen::WRITE_FULL;
                        break;
                    }
                    ErrorClass::Interrupted => {}
                    class if class.is_disconnect() => {
                        *notes |= seen::GONE;
                        break;
                    }
                    _ => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Reads one batch of records from the socket and processes it; then sends what that
    /// made TLS want to send (handshake replies, alerts).
    fn fill(&mut self, sock: &Socket, notes: &mut u8, has_sent: &mut bool) -> io::Result<Fill> {
        if let Some(e) = &self.failed {
            return Err(tls_error(e.clone()));
        }
        let mut reader = RecvFrom { sock, short: false };
        let got = loop {
            match self.conn.read_tls(&mut reader) {
                Ok(n) => break n,
                Err(e) => match sys::classify(&e) {
                    ErrorClass::WouldBlock => {
                        *notes |= seen::READ_DRAINED;
                        return Ok(Fill::Drained);
                    }
                    ErrorClass::Interrupted => {}
                    class if class.is_disconnect() => return Ok(Fill::Gone),
                    _ => return Err(e),
                },
            }
        };
        if got == 0 {
            self.tcp_eof = true;
            return Ok(Fill::Eof);
        }
        if reader.short && sys::SHORT_READ_DRAINS {
            // No read that would only find the socket empty: the next input raises an edge.
            *notes |= seen::READ_DRAINED;
        }
        let was_handshaking = self.conn.is_handshaking();
        match self.conn.process_new_packets() {
            Ok(state) => {
                self.plain_in = state.plaintext_bytes_to_read();
                self.peer_closed = state.peer_has_closed();
                if was_handshaking && !self.conn.is_handshaking() {
                    // Plaintext held back during the handshake can go now.
                    *notes |= seen::TRY_WRITE;
                }
            }
            Err(e) => {
                // rustls queued the alert that tells the peer why: send it, then fail.
                self.failed = Some(e.clone());
                let _ = self.write_out(sock, notes, has_sent);
                return Err(tls_error(e));
            }
        }
        self.write_out(sock, notes, has_sent)?;
        Ok(Fill::Progress)
    }
}

/// A channel's TLS session with what its operations need beside it: the socket, the
/// notes for the loop, and whether bytes were sent.
struct Parts<'a> {
    sock: &'a Socket,
    t: &'a mut TlsSession,
    notes: &'a mut u8,
    has_sent: &'a mut bool,
}

impl Channel {
    /// The session and its socket, when the channel has both.
    fn tls_parts(&mut self) -> Option<Parts<'_>> {
        let Channel {
            io,
            tls,
            notes,
            has_sent,
            ..
        } = self;
        match (io.as_ref(), tls.as_mut()) {
            (Some(Io::Socket(sock)), Some(t)) => Some(Parts {
                sock,
                t,
                notes,
                has_sent,
            }),
            _ => None,
        }
    }
    /// Makes this channel the server side of a TLS session: from now on `recv` and `send`
    /// carry plaintext and the loop drives the handshake. For an accepted socket, and for
    /// STARTTLS on a channel that has talked plaintext: what is in the send queue now (the
    /// reply to `STARTTLS`) is sent in plaintext first. Python:
    /// `ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)`.
    ///
    /// Input the layers above hold already is theirs to drop (a plaintext command sent
    /// behind `STARTTLS` must not be taken as if it came over TLS);
    /// `ChatContext::start_tls_server` in asyncore-chat does it.
    ///
    /// The handshake must end within the map's handshake timeout (10 s unless
    /// [`SocketMap::set_tls_handshake_timeout`](crate::SocketMap::set_tls_handshake_timeout)
    /// says otherwise), or `handle_error` gets a `TimedOut` error. A failed handshake
    /// reaches `handle_error` with an `InvalidData` error whose source is the
    /// `rustls::Error` (the alert is sent to the peer first).
    ///
    /// # Errors
    /// `InvalidInput` when the channel holds no stream socket or is TLS already; the
    /// rustls error when the configuration cannot make a session.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use asyncore_core::{tls, Channel, Domain, Type};
    /// # let dir = std::env::temp_dir().join(format!("asyncore-doc-tls-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// # let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    /// # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    /// # std::fs::write(&cert, made.cert.pem())?;
    /// # std::fs::write(&key, made.key_pair.serialize_pem())?;
    /// let config = tls::server_config_from_pem(&cert, &key)?;
    /// let mut chan = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
    /// chan.start_tls_server(config)?;
    /// assert!(chan.is_tls() && chan.tls_handshaking());
    /// # Ok(())
    /// # }
    /// ```
    pub fn start_tls_server(&mut self, config: Arc<ServerConfig>) -> io::Result<()> {
        self.check_tls_start()?;
        let conn = ServerConnection::new(config).map_err(tls_error)?;
        self.begin_tls(Connection::Server(conn));
        Ok(())
    }

    /// Makes this channel the client side of a TLS session with `server_name` (checked
    /// against the server's certificate and sent as SNI). Call it before or after
    /// `connect`: the client's first message goes out once the connection is made.
    /// `handle_connect` runs when the TCP connection is made; plaintext pushed before the
    /// handshake ends is sent after it. Python:
    /// `ssl_context.wrap_socket(sock, server_hostname=name, do_handshake_on_connect=False)`.
    ///
    /// # Errors
    /// As [`start_tls_server`](Self::start_tls_server).
    pub fn start_tls_client(
        &mut self,
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> io::Result<()> {
        self.check_tls_start()?;
        let conn = ClientConnection::new(config, server_name).map_err(tls_error)?;
        self.begin_tls(Connection::Client(conn));
        Ok(())
    }

    fn check_tls_start(&self) -> io::Result<()> {
        if self.tls.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the channel speaks TLS already",
            ));
        }
        match &self.io {
            Some(Io::Socket(_)) if self.stream => Ok(()),
            Some(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TLS needs a stream socket",
            )),
            None => Err(not_open()),
        }
    }

    fn begin_tls(&mut self, conn: Connection) {
        let plain_out = self.out.len();
        self.tls = Some(Box::new(TlsSession::new(conn, plain_out)));
        // The first records (a client's hello) are tried without waiting for a new edge:
        // the socket of a channel that talked plaintext reported its readiness long ago.
        self.note(seen::TRY_WRITE);
    }

    /// Whether the channel speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Whether the TLS handshake is under way (`false` without TLS and once it is done).
    pub fn tls_handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.conn.is_handshaking())
    }

    /// The TLS session, for what it negotiated once the handshake is done: the peer's
    /// certificates (`peer_certificates`), ALPN (`alpn_protocol`), the protocol version
    /// and cipher suite; `None` without TLS. Python: `SSLSocket.getpeercert`,
    /// `selected_alpn_protocol`, `version`, `cipher`.
    pub fn tls_connection(&self) -> Option<&Connection> {
        self.tls.as_ref().map(|t| &t.conn)
    }

    /// The server name the client asked for (SNI), on the server side of a session.
    /// Python: the name given to `SSLContext.sni_callback`.
    pub fn tls_server_name(&self) -> Option<&str> {
        match self.tls.as_ref().map(|t| &t.conn) {
            Some(Connection::Server(s)) => s.server_name(),
            _ => None,
        }
    }

    /// What TLS itself waits for, beyond the handler's wishes: `(read, write)`.
    pub(crate) fn tls_wants(&self) -> (bool, bool) {
        match &self.tls {
            Some(t) if t.failed.is_none() => (
                t.conn.is_handshaking() && !t.tcp_eof,
                t.plain_out == 0 && t.conn.wants_write(),
            ),
            Some(t) => (false, t.plain_out == 0 && t.conn.wants_write()),
            None => (false, false),
        }
    }

    /// Whether decrypted input waits to be read, or its end to be told (a close_notify
    /// processed with the records before it, or the socket's end): a read event is due
    /// without the OS.
    pub(crate) fn tls_input_waiting(&self) -> bool {
        self.tls
            .as_ref()
            .is_some_and(|t| t.plain_in > 0 || ((t.tcp_eof || t.peer_closed) && !t.eof_told))
    }

    /// Records TLS holds that are not on the wire yet, or a handshake still under way
    /// (plaintext sent before its end goes out after it): a flush before close waits.
    pub(crate) fn tls_output_waiting(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| {
            t.conn.wants_write() || (t.conn.is_handshaking() && t.failed.is_none() && !t.tcp_eof)
        })
    }

    /// For a close after a flush: queues `close_notify` (once) and sends what it can;
    /// `true` while records still wait for the socket.
    pub(crate) fn tls_finish(&mut self) -> bool {
        let Some(Parts {
            sock,
            t,
            notes,
            has_sent,
        }) = self.tls_parts()
        else {
            return false;
        };
        if !t.close_notify && t.failed.is_none() {
            t.close_notify = true;
            t.conn.send_close_notify();
        }
        if t.write_out(sock, notes, has_sent).is_err() {
            return false; // The socket failed: nothing more will go out.
        }
        t.plain_out == 0 && t.conn.wants_write()
    }

    /// At a close: `close_notify` and one attempt to send it, never blocking.
    pub(crate) fn tls_close(&mut self) {
        let _ = self.tls_finish();
    }

    /// Drives the TLS session from a read event while the handshake is under way:
    /// records are read and processed until the socket is drained or the handshake done.
    ///
    /// # Errors
    /// The handshake failed (the rustls error, as `InvalidData`), or the socket did.
    pub(crate) fn tls_pump_read(&mut self) -> io::Result<()> {
        for _ in 0..16 {
            let Some(Parts {
                sock,
                t,
                notes,
                has_sent,
            }) = self.tls_parts()
            else {
                return Ok(());
            };
            if !t.conn.is_handshaking() {
                return Ok(());
            }
            match t.fill(sock, notes, has_sent)? {
                Fill::Progress => {}
                Fill::Drained => return Ok(()),
                Fill::Eof => {
                    // A peer that leaves during the handshake: a close, not an error.
                    t.eof_told = true;
                    *notes |= seen::EOF;
                    return Ok(());
                }
                Fill::Gone => {
                    *notes |= seen::GONE;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Sends the records TLS holds (from a write event).
    ///
    /// # Errors
    /// The socket's error.
    pub(crate) fn tls_flush(&mut self) -> io::Result<()> {
        match self.tls_parts() {
            Some(p) => p.t.write_out(p.sock, p.notes, p.has_sent),
            None => Ok(()),
        }
    }

    /// `recv` through TLS: decrypted plaintext, reading records as needed.
    pub(super) fn tls_recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(Parts {
            sock,
            t,
            notes,
            has_sent,
        }) = self.tls_parts()
        else {
            return Err(not_open());
        };
        loop {
            if let Some(e) = &t.failed {
                return Err(tls_error(e.clone()));
            }
            match t.conn.reader().read(buf) {
                Ok(0) => {
                    // The peer's close_notify: the end of the plaintext stream.
                    t.eof_told = true;
                    *notes |= seen::EOF;
                    return Ok(0);
                }
                Ok(n) => {
                    t.plain_in = t.plain_in.saturating_sub(n);
                    *notes |= seen::GOT_DATA;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    // The socket ended without close_notify: a truncation, which ends
                    // the stream as a close would (line protocols frame their own ends).
                    log::debug!(target: "asyncore", "TLS peer closed without close_notify");
                    t.eof_told = true;
                    *notes |= seen::EOF;
                    return Ok(0);
                }
                Err(e) => return Err(e),
            }
            if t.tcp_eof {
                t.eof_told = true;
                *notes |= seen::EOF;
                return Ok(0);
            }
            match t.fill(sock, notes, has_sent)? {
                Fill::Progress | Fill::Eof => {}
                Fill::Drained => return Err(io::ErrorKind::WouldBlock.into()),
                Fill::Gone => {
                    *notes |= seen::GONE;
                    return Ok(0);
                }
            }
        }
    }

    /// `send` through TLS of `data`: the plaintext TLS took.
    pub(super) fn tls_send(&mut self, data: &[u8]) -> io::Result<usize> {
        let parts = self.tls_parts().ok_or_else(not_open)?;
        send_through(parts, &[IoSlice::new(data)])
    }

    /// `initiate_send` through TLS: the front of the send queue.
    pub(super) fn tls_initiate_send(&mut self) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let n = self.out.gather(&mut slices, self.max_send);
        // The slices borrow the queue: the session is reached field by field beside it.
        let Channel {
            io,
            tls,
            notes,
            has_sent,
            ..
        } = self;
        let (Some(Io::Socket(sock)), Some(t)) = (io.as_ref(), tls.as_mut()) else {
            return Err(not_open());
        };
        let parts = Parts {
            sock,
            t,
            notes,
            has_sent,
        };
        let sent = send_through(parts, &slices[..n])?;
        self.out.consume(sent);
        Ok(sent)
    }

    /// How much of the front of the send queue still goes out in plaintext (STARTTLS).
    pub(super) fn tls_plain_prefix(&self) -> Option<usize> {
        self.tls.as_ref().map(|t| t.plain_out)
    }

    /// `sent` bytes of the plaintext prefix went out.
    pub(super) fn tls_plain_sent(&mut self, sent: usize) {
        if let Some(t) = self.tls.as_mut() {
            t.plain_out = t.plain_out.saturating_sub(sent);
            if t.plain_out == 0 {
                self.note(seen::TRY_WRITE);
            }
        }
    }

    /// Whether the loop has yet to arm this session's handshake timeout (once).
    pub(crate) fn take_tls_unarmed(&mut self) -> bool {
        self.tls
            .as_mut()
            .is_some_and(|t| std::mem::take(&mut t.unarmed))
    }
}

/// Plaintext `bufs` into the TLS session of `parts`; what it took.
fn send_through(parts: Parts<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let Parts {
        sock,
        t,
        notes,
        has_sent,
    } = parts;
    if let Some(e) = &t.failed {
        return Err(tls_error(e.clone()));
    }
    if t.close_notify {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the TLS session was closed (close_notify sent)",
        ));
    }
    // Records from before first: TLS holds at most one send's worth at a time.
    t.write_out(sock, notes, has_sent)?;
    if t.conn.wants_write() {
        *notes |= seen::WRITE_FULL;
        return Ok(0);
    }
    let taken = t.conn.writer().write_vectored(bufs)?;
    if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
        // Before the handshake ends rustls buffers a limited amount; the rest waits for
        // the handshake's end (which raises a write event).
        *notes |= seen::WRITE_FULL;
        return Ok(0);
    }
    t.write_out(sock, notes, has_sent)?;
    Ok(taken)
}
