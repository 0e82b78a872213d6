//! The tokio anchor of the line-echo benchmark: a `current_thread` runtime, one task per
//! connection, `tokio-util`'s `LinesCodec` framing.
//!
//! ```text
//! tokio_echo [--listen HOST:PORT]      (default 127.0.0.1:0)
//! ```
//!
//! Written as a tokio user would write it for speed: every line that is already decoded
//! is answered before one flush (`feed`, then `flush` when the input runs dry), so a
//! pipelined batch costs one write. `TCP_NODELAY` is set, as redis-server does.

#[path = "support/listen.rs"]
mod listen;

use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};

const USAGE: &str = "usage: tokio_echo [--listen HOST:PORT]";

/// Lines longer than this close the connection (the chat servers' input cap).
const MAX_LINE: usize = 64 * 1024;

async fn serve(sock: TcpStream) -> Result<(), LinesCodecError> {
    sock.set_nodelay(true)?;
    let mut framed = Framed::new(sock, LinesCodec::new_with_max_length(MAX_LINE));
    while let Some(line) = framed.next().await {
        framed.feed(line?).await?;
        while let Some(Some(line)) = framed.next().now_or_never() {
            framed.feed(line?).await?;
        }
        SinkExt::<String>::flush(&mut framed).await?;
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr = listen::listen_arg(USAGE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        listen::announce(listener.local_addr()?)?;
        loop {
            let (sock, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = serve(sock).await {
                    eprintln!("tokio_echo: {e}");
                }
            });
        }
    })
}
