//! Driving the loop yourself: one pass at a time (`count = 1`) from the program's own
//! `while` loop, over the thread's default map, as PyMOTW's `asyncore_loop.py`.
//!
//! ```text
//! loop_count URL...         (RUST_LOG=debug shows loop_counter=N for each pass)
//! ```

use asyncore_core::{with_socket_map, Loop};
use asyncore_examples::cli::{usage_error, Args};
use asyncore_examples::http::{HttpClient, HttpUrl, Outcome, Outcomes};
use std::time::Duration;

const USAGE: &str = "usage: loop_count URL...   (http://HOST[:PORT][/PATH])";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let urls = Args::from_env(USAGE).positional();
    if urls.is_empty() {
        usage_error(USAGE, "no URL given");
    }
    with_socket_map(|map| map.insert_data(Outcomes::pending(urls.len())));
    for (slot, text) in urls.iter().enumerate() {
        let url = HttpUrl::parse(text).unwrap_or_else(|e| usage_error(USAGE, &e));
        let (chan, client) = HttpClient::start(&url, slot).unwrap_or_else(|e| {
            eprintln!("{text} error: {e}");
            std::process::exit(1);
        });
        with_socket_map(|map| map.insert(chan, client).map(|_| ()))?;
    }

    // Python: while asyncore.socket_map: loop_counter += 1; asyncore.loop(timeout=1, count=1)
    let mut loop_counter = 0u64;
    while !with_socket_map(|map| map.is_empty()) {
        loop_counter += 1;
        log::debug!("loop_counter={loop_counter}");
        Loop::new()
            .timeout(Duration::from_secs(1))
            .count(1)
            .run_default()?;
    }
    let mut failed = false;
    let outcomes = with_socket_map(|map| map.remove_data::<Outcomes>()).unwrap_or_default();
    for (url, outcome) in urls.iter().zip(&outcomes.0) {
        failed |= !matches!(outcome, Outcome::Got(_));
        println!("{url} {outcome}");
    }
    std::process::exit(i32::from(failed));
}
