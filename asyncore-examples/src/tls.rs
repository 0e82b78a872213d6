//! The servers' `--tls-cert PEM --tls-key PEM` options: TLS on every accepted connection
//! (or, for `smtp_server`, STARTTLS), when the programs are built with the `tls` feature
//! (`cargo build -p asyncore-examples --features tls`). Built without it, the options are
//! refused with a message that says so, and [`ServerTls`] has no values.

use crate::cli::usage_error;
use asyncore_core::Channel;
use std::io;

/// A server's TLS configuration.
#[cfg(feature = "tls")]
pub type ServerTls = std::sync::Arc<asyncore_core::tls::rustls::ServerConfig>;

/// A server's TLS configuration: none can exist in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum ServerTls {}

/// A client's TLS configuration (`http_client --cafile`).
#[cfg(feature = "tls")]
pub type ClientTls = std::sync::Arc<asyncore_core::tls::rustls::ClientConfig>;

/// A client's TLS configuration: none can exist in a build without the `tls` feature.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub enum ClientTls {}

/// Reads `--cafile PEM` into a client configuration trusting its certificates; a bad
/// file ends the program with `usage`.
pub fn client_options(args: &mut crate::cli::Args, usage: &str) -> Option<ClientTls> {
    let cafile = args.option("--cafile")?;
    #[cfg(feature = "tls")]
    return Some(
        asyncore_core::tls::client_config_from_pem(&cafile)
            .unwrap_or_else(|e| usage_error(usage, &e.to_string())),
    );
    #[cfg(not(feature = "tls"))]
    usage_error(
        usage,
        &format!(
            "--cafile {cafile}: this program was built without TLS: build it with `--features tls`"
        ),
    )
}

/// Makes a connecting channel the client side of TLS with `host` (checked against the
/// server's certificate): with `tls`, or with the Mozilla roots of `webpki-roots`.
///
/// # Errors
/// `host` is not a name or address TLS can check; as `Channel::start_tls_client`.
#[cfg(feature = "tls")]
pub fn connect(chan: &mut Channel, host: &str, tls: Option<&ClientTls>) -> io::Result<()> {
    use asyncore_core::tls::{self, rustls::RootCertStore, ServerName};
    let config = match tls {
        Some(config) => config.clone(),
        None => tls::client_config_with_roots(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })?,
    };
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?}: {e}")))?;
    chan.start_tls_client(config, name)
}

/// Without the `tls` feature no URL asks for TLS (`HttpUrl::parse` refuses `https://`).
///
/// # Errors
/// Always: TLS is not built in.
#[cfg(not(feature = "tls"))]
pub fn connect(_chan: &mut Channel, _host: &str, _tls: Option<&ClientTls>) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "built without TLS",
    ))
}

/// Reads `--tls-cert` and `--tls-key` (both or neither) into a configuration; a bad
/// option or file ends the program with `usage`.
pub fn options(args: &mut crate::cli::Args, usage: &str) -> Option<ServerTls> {
    let cert = args.option("--tls-cert");
    let key = args.option("--tls-key");
    let (cert, key) = match (cert, key) {
        (None, None) => return None,
        (Some(cert), Some(key)) => (cert, key),
        _ => usage_error(usage, "--tls-cert and --tls-key go together"),
    };
    load(&cert, &key).unwrap_or_else(|e| usage_error(usage, &e))
}

#[cfg(feature = "tls")]
fn load(cert: &str, key: &str) -> Result<Option<ServerTls>, String> {
    asyncore_core::tls::server_config_from_pem(cert, key)
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "tls"))]
fn load(_cert: &str, _key: &str) -> Result<Option<ServerTls>, String> {
    Err("this program was built without TLS: build it with `--features tls`".into())
}

/// Makes an accepted connection's channel TLS, when the server has a configuration.
///
/// # Errors
/// As `Channel::start_tls_server`.
pub fn accept(chan: &mut Channel, tls: Option<&ServerTls>) -> io::Result<()> {
    match tls {
        #[cfg(feature = "tls")]
        Some(config) => chan.start_tls_server(config.clone()),
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
        None => {
            let _ = chan;
            Ok(())
        }
    }
}

/// Upgrades an `async_chat` conversation to TLS in place (STARTTLS), after the reply
/// pushed already; the plaintext input behind the command is dropped.
///
/// # Errors
/// As `ChatContext::start_tls_server`.
pub fn start_in_place(
    chat: &mut asyncore_chat::ChatContext<'_, '_>,
    tls: &ServerTls,
) -> io::Result<()> {
    #[cfg(feature = "tls")]
    return chat.start_tls_server(tls.clone());
    #[cfg(not(feature = "tls"))]
    {
        let _ = chat;
        match *tls {}
    }
}
