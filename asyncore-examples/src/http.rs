//! The classic asyncore HTTP client: one channel per URL, an HTTP/1.0 GET, every event
//! logged with the URL as the log target (PyMOTW's `asyncore_http_client.py`); `https://`
//! URLs too in a build with the `tls` feature (the same handler, on a TLS channel).

use asyncore_core::{BoxError, Channel, Context, Dispatcher, Domain, HandlerResult, Type};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// An `http://host[:port][/path]` URL, or `https://` (in a build with the `tls` feature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as given.
    pub text: String,
    /// The host, without brackets for IPv6 literals.
    pub host: String,
    /// The port (80 when absent; 443 for `https`).
    pub port: u16,
    /// `https://`: TLS, checked against the host name.
    pub tls: bool,
    /// The path and query, `/` when absent.
    pub path: String,
}

impl HttpUrl {
    /// Parses `text`.
    ///
    /// # Errors
    /// A message saying what is wrong: another scheme, no host, a bad port, `https://` in
    /// a build without TLS.
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let (rest, tls) = match (text.strip_prefix("http://"), text.strip_prefix("https://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(_)) if !cfg!(feature = "tls") => {
                return Err(format!(
                    "{text:?}: https:// needs a build with TLS (`--features tls`)"
                ))
            }
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(format!("{text:?} is not an http:// URL")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or_else(|| format!("{text:?}: unclosed '[' in host"))?;
            let port = v6[end + 1..].strip_prefix(':');
            (&v6[..end], port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{text:?} has no host"));
        }
        let port = match port {
            None if tls => 443,
            None => 80,
            Some(p) => p
                .parse()
                .map_err(|_| format!("{text:?} has a bad port {p:?}"))?,
        };
        Ok(HttpUrl {
            text: text.to_string(),
            host: host.to_string(),
            port,
            tls,
            path: path.to_string(),
        })
    }

    /// The `Host` header's value.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// How one fetch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still running.
    Pending,
    /// The server closed after sending this many bytes (headers and body).
    Got(usize),
    /// The fetch failed.
    Error(String),
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Pending => f.write_str("error: unfinished"),
            Outcome::Got(n) => write!(f, "got {n} bytes"),
            Outcome::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// How each fetch of a run ended, one slot per URL: the map's data (see
/// [`SocketMap::insert_data`](asyncore_core::SocketMap::insert_data)), which each handler
/// writes its slot of and the program reads when the loop is done.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes(pub Vec<Outcome>);

impl Outcomes {
    /// `n` fetches, all pending.
    pub fn pending(n: usize) -> Outcomes {
        Outcomes(vec![Outcome::Pending; n])
    }
}

/// One HTTP/1.0 GET. Python: PyMOTW's `HttpClient(asyncore.dispatcher)`.
#[derive(Debug)]
pub struct HttpClient {
    url: String,
    request: Vec<u8>,
    received: usize,
    /// Its slot in the map's [`Outcomes`].
    slot: usize,
}

impl HttpClient {
    /// A channel connecting to `url`'s host and its handler; the handler reports into
    /// slot `slot` of the map's [`Outcomes`]. An `https://` URL is fetched over TLS with
    /// the roots of `webpki-roots`; see [`start_with`](Self::start_with).
    ///
    /// # Errors
    /// The host does not resolve, or the socket cannot be made.
    pub fn start(url: &HttpUrl, slot: usize) -> Result<(Channel, HttpClient), String> {
        HttpClient::start_with(url, slot, None)
    }

    /// As [`start`](Self::start), with the TLS configuration for `https://` URLs (`None`:
    /// the Mozilla roots of `webpki-roots`).
    ///
    /// # Errors
    /// As [`start`](Self::start), and a host name TLS cannot check.
    pub fn start_with(
        url: &HttpUrl,
        slot: usize,
        tls: Option<&crate::tls::ClientTls>,
    ) -> Result<(Channel, HttpClient), String> {
        let addr: SocketAddr = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
            .next()
            .ok_or_else(|| format!("cannot resolve {}", url.host))?;
        let mut chan = Channel::create_socket(Domain::for_address(addr), Type::STREAM)
            .map_err(|e| e.to_string())?;
        chan.set_tag(&url.text);
        if url.tls {
            crate::tls::connect(&mut chan, &url.host, tls).map_err(|e| e.to_string())?;
        }
        chan.connect(addr).map_err(|e| e.to_string())?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\n\r\n",
            url.path,
            url.host_header()
        );
        let client = HttpClient {
            url: url.text.clone(),
            request: request.into_bytes(),
            received: 0,
            slot,
        };
        Ok((chan, client))
    }

    /// This fetch's slot in the map's [`Outcomes`].
    fn outcome<'m>(&self, ctx: &'m mut Context<'_>) -> Option<&'m mut Outcome> {
        let outcomes = ctx.map().data_mut::<Outcomes>()?;
        outcomes.0.get_mut(self.slot)
    }
}

impl Dispatcher for HttpClient {
    fn readable(&self, _chan: &Channel) -> bool {
        log::debug!(target: &self.url, "readable() -> true");
        true
    }

    fn writable(&self, _chan: &Channel) -> bool {
        let is_active = !self.request.is_empty();
        log::debug!(target: &self.url, "writable() -> {is_active}");
        is_active
    }

    fn handle_connect(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        log::debug!(target: &self.url, "handle_connect()");
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let sent = ctx.send(&self.request)?;
        log::debug!(target: &self.url, "handle_write() -> {sent} bytes");
        self.request.drain(..sent);
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 8192];
        let n = ctx.recv(&mut buf)?;
        log::debug!(target: &self.url, "handle_read() -> {n} bytes");
        self.received += n;
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        log::debug!(target: &self.url, "handle_close()");
        let received = self.received;
        if let Some(outcome) = self.outcome(ctx).filter(|o| **o == Outcome::Pending) {
            *outcome = Outcome::Got(received);
        }
        ctx.close()?;
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        log::debug!(target: &self.url, "handle_error({err})");
        if let Some(outcome) = self.outcome(ctx) {
            *outcome = Outcome::Error(err.to_string());
        }
        ctx.close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let u = HttpUrl::parse("http://127.0.0.1:8000/a/b?c=d").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8000, "/a/b?c=d")
        );
        assert_eq!(u.host_header(), "127.0.0.1:8000");
        let u = HttpUrl::parse("http://example.org").unwrap();
        assert_eq!(
            (u.port, u.path.as_str(), u.host_header().as_str()),
            (80, "/", "example.org")
        );
        let u = HttpUrl::parse("http://[::1]:81/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.host_header().as_str()),
            ("::1", "[::1]:81")
        );
    }

    #[test]
    fn rejects_what_it_cannot_fetch() {
        assert_eq!(
            HttpUrl::parse("https://example.org/").is_ok(),
            cfg!(feature = "tls")
        );
        assert!(HttpUrl::parse("http:///path").is_err());
        assert!(HttpUrl::parse("http://host:99999/").is_err());
        assert!(HttpUrl::parse("http://[::1/").is_err());
    }
}
