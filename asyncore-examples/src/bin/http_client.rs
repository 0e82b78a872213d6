//! The classic asyncore HTTP client: every URL on its own channel, all in one loop.
//!
//! ```text
//! http_client [--cafile PEM] URL...   (RUST_LOG=debug shows every event, logged under the URL)
//! ```
//! `https://` URLs need a build with `--features tls`; their servers are checked against
//! the Mozilla roots of `webpki-roots`, or against the certificates of `--cafile`.
//! Prints `URL got N bytes` per URL at the end (N counts the whole response), or
//! `URL error: REASON`; exits 1 when any URL failed.

use asyncore_core::{Loop, SocketMap};
use asyncore_examples::cli::Args;
use asyncore_examples::http::{HttpClient, HttpUrl, Outcome, Outcomes};

const USAGE: &str =
    "usage: http_client [--cafile PEM] URL...   (http://HOST[:PORT][/PATH], or https://)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let tls = asyncore_examples::tls::client_options(&mut args, USAGE);
    let urls: Vec<HttpUrl> = args
        .positional()
        .iter()
        .map(|u| HttpUrl::parse(u))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| asyncore_examples::cli::usage_error(USAGE, &e));
    if urls.is_empty() {
        asyncore_examples::cli::usage_error(USAGE, "no URL given");
    }
    let mut map = SocketMap::new();
    map.insert_data(Outcomes::pending(urls.len()));
    for (slot, url) in urls.iter().enumerate() {
        let started = HttpClient::start_with(url, slot, tls.as_ref())
            .and_then(|(chan, client)| map.insert(chan, client).map_err(|e| e.to_string()));
        if let (Err(e), Some(outcomes)) = (started, map.data_mut::<Outcomes>()) {
            outcomes.0[slot] = Outcome::Error(e);
        }
    }
    Loop::new().run(&mut map)?;
    let mut failed = false;
    let outcomes = map.remove_data::<Outcomes>().unwrap_or_default();
    for (url, outcome) in urls.iter().zip(&outcomes.0) {
        failed |= !matches!(outcome, Outcome::Got(_));
        println!("{} {outcome}", url.text);
    }
    std::process::exit(i32::from(failed));
}
