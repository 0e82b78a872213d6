//! The classic asyncore HTTP client: every URL on its own channel, all in one loop.
//!
//! ```text
//! http_client URL...        (RUST_LOG=debug shows every event, logged under the URL)
//! ```
//! Prints `URL got N bytes` per URL at the end (N counts the whole response), or
//! `URL error: REASON`; exits 1 when any URL failed.

use asyncore_core::{Loop, SocketMap};
use asyncore_examples::cli::Args;
use asyncore_examples::http::{HttpClient, HttpUrl, Outcome, Shared};
use std::cell::RefCell;
use std::rc::Rc;

const USAGE: &str = "usage: http_client URL...   (http://HOST[:PORT][/PATH])";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = Args::from_env(USAGE);
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
    let mut results: Vec<(String, Shared)> = Vec::new();
    for url in &urls {
        match HttpClient::start(url) {
            Ok((chan, client, outcome)) => {
                if let Err(e) = map.insert(chan, client) {
                    *outcome.borrow_mut() = Outcome::Error(e.to_string());
                }
                results.push((url.text.clone(), outcome));
            }
            Err(e) => results.push((url.text.clone(), Rc::new(RefCell::new(Outcome::Error(e))))),
        }
    }
    Loop::new().run(&mut map)?;
    let mut failed = false;
    for (url, outcome) in &results {
        let outcome = outcome.borrow();
        failed |= !matches!(*outcome, Outcome::Got(_));
        println!("{url} {outcome}");
    }
    std::process::exit(i32::from(failed));
}
