//! The tokio anchor of the Redis-protocol benchmark: a `current_thread` runtime, one task
//! per connection on a `LocalSet` sharing one store, requests decoded by a `tokio-util`
//! decoder, with the command set of `resp_server`.
//!
//! ```text
//! tokio_resp [--listen HOST:PORT]      (default 127.0.0.1:0)
//! ```
//!
//! Written as a tokio user would write it for speed: every request already decoded is
//! answered into one buffer, written when the input runs dry, so a pipelined batch costs
//! one read and one write. `TCP_NODELAY` is set, as redis-server does. Commands: PING,
//! ECHO, SET [EX|PX], GET, DEL, EXISTS, INCR, DECR, INCRBY, MGET, MSET, DBSIZE, FLUSHDB,
//! FLUSHALL, SELECT 0, CONFIG GET (save, appendonly), COMMAND, CLIENT, QUIT.

#[path = "../support/listen.rs"]
mod listen;

mod codec;
mod commands;

use commands::{After, Store};
use futures::{FutureExt, StreamExt};
use std::cell::RefCell;
use std::rc::Rc;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

const USAGE: &str = "usage: tokio_resp [--listen HOST:PORT]";

async fn serve(sock: TcpStream, store: Rc<RefCell<Store>>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let (read, mut write) = sock.into_split();
    let mut requests = FramedRead::new(read, codec::RespCodec);
    let mut out = Vec::with_capacity(16 * 1024);
    while let Some(request) = requests.next().await {
        let mut request = Some(request);
        let mut after = After::Continue;
        while let Some(r) = request.take() {
            match r {
                Ok(args) => after = store.borrow_mut().execute(&args, &mut out),
                Err(e) => {
                    out.extend_from_slice(format!("-ERR Protocol error: {e}\r\n").as_bytes());
                    after = After::Close;
                }
            }
            if after == After::Close {
                break;
            }
            request = requests.next().now_or_never().flatten();
        }
        write.write_all(&out).await?;
        out.clear();
        if after == After::Close {
            break;
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr = listen::listen_arg(USAGE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = TcpListener::bind(addr).await?;
        listen::announce(listener.local_addr()?)?;
        let store = Rc::new(RefCell::new(Store::default()));
        loop {
            let (sock, _) = listener.accept().await?;
            let store = store.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = serve(sock, store).await {
                    eprintln!("tokio_resp: {e}");
                }
            });
        }
    })
}
