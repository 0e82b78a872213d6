//! TLS for channels (the `tls` feature), on rustls with the *ring* provider.
//!
//! A channel becomes TLS with
//! [`Channel::start_tls_server`](crate::Channel::start_tls_server) (an accepted socket,
//! or STARTTLS) or [`Channel::start_tls_client`](crate::Channel::start_tls_client); then
//! its `recv` and `send` carry plaintext and
//! [`DispatcherWithSend`](crate::DispatcherWithSend), `async_chat` and plain dispatchers
//! work unchanged on top. The loop drives the handshake, delivers plaintext
//! TLS has decrypted already without waiting for the OS, sends `close_notify` before a
//! close, and ends a handshake that takes longer than
//! [`SocketMap::set_tls_handshake_timeout`] (10 s by default) with a `TimedOut` error for
//! `handle_error`.
//!
//! This module has what a program needs around that: configurations from PEM files, and
//! the rustls crate itself (re-exported, so that its version is the one this crate uses).
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use asyncore_core::tls;
//! # let dir = std::env::temp_dir().join(format!("asyncore-doc-tlsmod-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
//! # let made = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
//! # std::fs::write(&cert, made.cert.pem())?;
//! # std::fs::write(&key, made.key_pair.serialize_pem())?;
//! // The server's side: its certificate chain and key.
//! let server = tls::server_config_from_pem(&cert, &key)?;
//! // A client that trusts the CA certificates of a PEM file (here the self-signed one).
//! let client = tls::client_config_from_pem(&cert)?;
//! assert!(server.alpn_protocols.is_empty() && client.alpn_protocols.is_empty());
//! // A missing file is a clear error.
//! let err = tls::load_certs("/nonexistent.pem").unwrap_err();
//! assert!(err.to_string().contains("/nonexistent.pem"));
//! # Ok(())
//! # }
//! ```

use crate::socket_map::{ChannelId, SocketMap};
use crate::timer::{after, Target};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use rustls;
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// How long a TLS handshake may take unless the map says otherwise (10 s).
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The crypto provider the helpers here build configurations with: rustls's *ring*.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn pem_error(path: &Path, what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot read {what} from {}: {e}", path.display()),
    )
}

/// The certificates of the PEM file `path`, in order (a server's chain: its own first).
///
/// # Errors
/// `NotFound` (with the path) for a missing file, `InvalidData` for a file that is not
/// PEM or holds no certificate.
pub fn load_certs(path: impl AsRef<Path>) -> io::Result<Vec<CertificateDer<'static>>> {
    let path = path.as_ref();
    std::fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, "certificates", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, "certificates", e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "certificates", "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The private key of the PEM file `path` (PKCS #8, PKCS #1 or SEC1).
///
/// # Errors
/// As [`load_certs`], for a file with no private key.
pub fn load_private_key(path: impl AsRef<Path>) -> io::Result<PrivateKeyDer<'static>> {
    let path = path.as_ref();
    std::fs::metadata(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    PrivateKeyDer::from_pem_file(path).map_err(|e| pem_error(path, "a private key", e))
}

/// A server configuration with the certificate chain of `cert` and the key of `key`
/// (PEM files), no client authentication, TLS 1.2 and 1.3.
///
/// # Errors
/// As [`load_certs`] and [`load_private_key`], and `InvalidInput` when the key does not
/// match the certificate or is of a kind rustls does not take.
pub fn server_config_from_pem(
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> io::Result<Arc<ServerConfig>> {
    let certs = load_certs(cert.as_ref())?;
    let key = load_private_key(key.as_ref())?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(invalid)?;
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CA certificates in the PEM file `ca_file`
/// (Python: `ssl.create_default_context(cafile=...)`).
///
/// # Errors
/// As [`load_certs`]; `InvalidData` when a certificate is not a usable trust anchor.
pub fn client_config_from_pem(ca_file: impl AsRef<Path>) -> io::Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file.as_ref())? {
        roots
            .add(cert)
            .map_err(|e| pem_error(ca_file.as_ref(), "a trust anchor", e))?;
    }
    client_config_with_roots(roots)
}

/// A client configuration that trusts `roots` (e.g. `webpki-roots`' Mozilla set).
///
/// # Errors
/// `InvalidInput` when the provider offers no safe protocol version (never with *ring*).
pub fn client_config_with_roots(roots: RootCertStore) -> io::Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn invalid(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

impl SocketMap {
    /// How long a TLS handshake may take from the moment the channel's session starts
    /// (at most; the default is [`DEFAULT_HANDSHAKE_TIMEOUT`], 10 s): a channel still
    /// handshaking then gets a `TimedOut` error in `handle_error` (whose default closes
    /// it), so that half-open handshakes do not pile up. Applies to sessions started
    /// after the call. `Duration::MAX`: never.
    pub fn set_tls_handshake_timeout(&mut self, timeout: Duration) {
        self.tls_handshake_timeout = timeout;
    }

    /// The handshake timeout; see [`set_tls_handshake_timeout`](Self::set_tls_handshake_timeout).
    pub fn tls_handshake_timeout(&self) -> Duration {
        self.tls_handshake_timeout
    }

    /// Arms the handshake timeout of channel `id`, whose session just started.
    pub(crate) fn arm_tls_handshake(&mut self, id: ChannelId) {
        if self.tls_handshake_timeout == Duration::MAX {
            return;
        }
        let at = after(Instant::now(), self.tls_handshake_timeout);
        self.timers.insert(at, Target::Handshake(id));
    }
}
