//! `PORTING.md` stays true.
//!
//! - **The tables name real items.** [`rust_names`] refers to every Rust item the tables of
//!   `PORTING.md` may name, so this file stops compiling when one is renamed or removed; it
//!   records each reference's text (`stringify!`, generic arguments dropped, so
//!   `AsyncChat::<Probe>::push` reads `AsyncChat::push`). The Rust names in the tables and
//!   this list must be equal as sets: a table naming something not in the list fails, and
//!   so does a list entry no table names (the list cannot drift into a second document).
//! - **Every Python name has its row.** [`PYTHON_NAMES`] is every public name of CPython
//!   3.11's `asyncore` and `asynchat` (module functions and globals, classes, methods,
//!   attributes, plus the private names ports use, such as `_get_data`); it must equal the
//!   Python column. A row without a Rust name must say "Not provided".
//! - **The Rust programs are the real files.** Every `rust` code block in `PORTING.md` and
//!   in the crates' READMEs is marked `<!-- quote: PATH -->` and must appear word for word
//!   in that file (lines starting `// ...` mark cuts: each piece must appear, in order). A
//!   quote of a doc comment matches its text as rustdoc shows it (hidden `# ` lines left
//!   out), so a README can quote a crate's doctest.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[path = "porting_names/lists.rs"]
mod lists;
use lists::{rust_names, PYTHON_NAMES};

/// A reference's text as the tables write it: `<T as Trait>::m` reads `Trait::m`, generic
/// arguments (`::<..>`, `<..>`) and spaces are dropped.
fn normalize(text: &str) -> String {
    let mut text = text.to_string();
    if let Some(rest) = text.strip_prefix('<') {
        let end = closing_angle(rest).expect("balanced <..> in a qualified path");
        let inner = &rest[..end];
        let trait_part = inner.rsplit_once(" as ").map_or(inner, |(_, t)| t);
        text = format!("{trait_part}{}", &rest[end + 1..]);
    }
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let text = text.replace("->", "");
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("::::", "::").trim_end_matches("::").to_string()
}

/// The index of the `>` that closes a `<` just before `s` starts.
fn closing_angle(s: &str) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

fn read(path: &str) -> String {
    let full = workspace_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// The cells of a table row, split at `|` outside backticks (`\|` is a literal bar).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut in_code = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                in_code = !in_code;
                out.last_mut().expect("one cell at least").push(c);
            }
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("one cell at least").push('|');
                chars.next();
            }
            '|' if !in_code => out.push(String::new()),
            _ => out.last_mut().expect("one cell at least").push(c),
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// The `code spans` of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A table row of `PORTING.md`.
#[derive(Debug)]
struct Row {
    line: usize,
    python: Option<String>,
    rust: Vec<String>,
    note: String,
}

/// The rows of the tables whose second column is "Rust"; `python` is set in the tables
/// whose first column is "Python".
fn table_rows(markdown: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut in_fence = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence || !line.starts_with('|') {
            header = None;
            continue;
        }
        let c = cells(line);
        let Some(h) = &header else {
            header = Some(c);
            continue;
        };
        if c.iter().all(|x| x.chars().all(|ch| ch == '-' || ch == ':')) {
            continue; // the separator row
        }
        if h.get(1).map(String::as_str) != Some("Rust") {
            continue;
        }
        let python = (h[0] == "Python").then(|| {
            let spans = code_spans(&c[0]);
            assert_eq!(
                spans.len(),
                1,
                "PORTING.md:{}: the Python cell names one thing: {line}",
                i + 1
            );
            spans[0].clone()
        });
        rows.push(Row {
            line: i + 1,
            python,
            rust: code_spans(c.get(1).map_or("", String::as_str)),
            note: c.get(2).cloned().unwrap_or_default(),
        });
    }
    rows
}

#[test]
fn porting_table_names_resolve() {
    let rows = table_rows(&read("PORTING.md"));
    let known: BTreeSet<String> = rust_names().into_iter().collect();
    let mut problems = Vec::new();

    let mut used = BTreeSet::new();
    for row in &rows {
        for name in &row.rust {
            if !known.contains(name) {
                problems.push(format!(
                    "PORTING.md:{}: `{name}` is not in rust_names() (renamed? a typo?)",
                    row.line
                ));
            }
            used.insert(name.clone());
        }
        if row.rust.is_empty() && !row.note.starts_with("Not provided") {
            problems.push(format!(
                "PORTING.md:{}: a row without a Rust name must say \"Not provided\"",
                row.line
            ));
        }
    }
    for name in known.difference(&used) {
        problems.push(format!(
            "`{name}` is in rust_names() but in no table of PORTING.md"
        ));
    }

    let python: Vec<&str> = rows.iter().filter_map(|r| r.python.as_deref()).collect();
    let python_set: BTreeSet<&str> = python.iter().copied().collect();
    let expected: BTreeSet<&str> = PYTHON_NAMES.iter().copied().collect();
    for name in expected.difference(&python_set) {
        problems.push(format!("Python's `{name}` has no row in PORTING.md"));
    }
    for name in python_set.difference(&expected) {
        problems.push(format!(
            "PORTING.md has a row for `{name}`, not in PYTHON_NAMES"
        ));
    }
    if python.len() != python_set.len() {
        problems.push("PORTING.md has two rows for the same Python name".to_string());
    }
    assert_eq!(
        expected.len(),
        PYTHON_NAMES.len(),
        "PYTHON_NAMES repeats a name"
    );
    assert!(
        problems.is_empty(),
        "PORTING.md's tables are out of date:\n{}",
        problems.join("\n")
    );
}

/// The lines a quote may match in `source`: the file as it is, or the text of its doc
/// comments as rustdoc shows it (`//!` / `///` and one space removed, hidden `# ` lines
/// left out).
fn quotable_texts(source: &str) -> [Vec<String>; 2] {
    let raw = source.lines().map(|l| l.trim_end().to_string()).collect();
    let doc = source
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let rest = t.strip_prefix("//!").or_else(|| t.strip_prefix("///"))?;
            let rest = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
            (rest != "#" && !rest.starts_with("# ")).then(|| rest.to_string())
        })
        .collect();
    [raw, doc]
}

/// Whether `pieces` appear in `lines`, each as consecutive lines, in order.
fn quoted_in(pieces: &[Vec<String>], lines: &[String]) -> bool {
    let mut from = 0;
    for piece in pieces {
        let found = (from..lines.len().saturating_sub(piece.len() - 1))
            .find(|&i| lines[i..i + piece.len()] == piece[..]);
        match found {
            Some(i) => from = i + piece.len(),
            None => return false,
        }
    }
    true
}

/// A `rust` code block and the file it says it quotes.
struct Quote {
    line: usize,
    source: Option<String>,
    pieces: Vec<Vec<String>>,
}

fn quotes(markdown: &str) -> Vec<Quote> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if !line.starts_with("```") {
            i += 1;
            continue;
        }
        let lang = line.trim_start_matches('`').trim();
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push(lines[i].trim_end().to_string());
            i += 1;
        }
        i += 1;
        if !lang.starts_with("rust") {
            continue;
        }
        let marker = lines[..start].iter().rev().find(|l| !l.trim().is_empty());
        let source = marker.and_then(|m| {
            m.trim()
                .strip_prefix("<!-- quote:")
                .and_then(|r| r.strip_suffix("-->"))
                .map(|p| p.trim().to_string())
        });
        let mut pieces = vec![Vec::new()];
        for l in body {
            if l.trim() == "// ..." {
                pieces.push(Vec::new());
            } else {
                pieces.last_mut().expect("one piece at least").push(l);
            }
        }
        out.push(Quote {
            line: start + 1,
            source,
            pieces,
        });
    }
    out
}

/// Checks every `rust` block of `doc` (a workspace path); returns the files quoted.
fn check_quotes(doc: &str, problems: &mut Vec<String>) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    for q in quotes(&read(doc)) {
        let Some(source) = q.source else {
            problems.push(format!(
                "{doc}:{}: a rust block without `<!-- quote: PATH -->` before it",
                q.line
            ));
            continue;
        };
        if q.pieces.iter().any(|p| p.iter().all(|l| l.is_empty())) {
            problems.push(format!("{doc}:{}: an empty piece between cuts", q.line));
            continue;
        }
        let texts = quotable_texts(&read(&source));
        if !texts.iter().any(|t| quoted_in(&q.pieces, t)) {
            problems.push(format!(
                "{doc}:{}: this block is no longer word for word in {source}",
                q.line
            ));
        }
        sources.insert(source);
    }
    sources
}

#[test]
fn porting_and_readme_code_is_quoted_from_real_files() {
    let mut problems = Vec::new();
    let porting = check_quotes("PORTING.md", &mut problems);
    // The classic programs keep their real files.
    for required in [
        "asyncore-core/examples/echo_server.rs",
        "asyncore-examples/src/bin/echo_server.rs",
        "asyncore-examples/src/http.rs",
        "asyncore-examples/src/bin/http_client.rs",
        "asyncore-examples/src/bin/echo_pair.rs",
        "asyncore-examples/src/bin/loop_count.rs",
        "asyncore-examples/src/bin/file_reader.rs",
        "asyncore-chat/src/lib.rs",
        "asyncore-examples/src/chat.rs",
    ] {
        if !porting.contains(required) {
            problems.push(format!("PORTING.md no longer quotes {required}"));
        }
    }
    for readme in [
        "asyncore-core/README.md",
        "asyncore-chat/README.md",
        "asyncore-file/README.md",
    ] {
        if check_quotes(readme, &mut problems).is_empty() {
            problems.push(format!(
                "{readme} has no example quoted from a compiled file"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn normalize_reads_references_as_the_tables_write_them() {
    assert_eq!(
        normalize("<DefaultDispatcher as Dispatcher>::handle_read"),
        "Dispatcher::handle_read"
    );
    assert_eq!(normalize("AsyncChat::<Probe>::push"), "AsyncChat::push");
    assert_eq!(
        normalize("ChatContext::<'s, 'a>::push"),
        "ChatContext::push"
    );
    assert_eq!(
        normalize("SocketMap::insert::<DefaultDispatcher>"),
        "SocketMap::insert"
    );
    assert_eq!(
        normalize("DispatcherWithSend<DefaultDispatcher>"),
        "DispatcherWithSend"
    );
    assert_eq!(
        normalize("LoopGroup::spawn::<fn(usize, &mut SocketMap) -> io::Result<()>>"),
        "LoopGroup::spawn"
    );
}

#[test]
fn quotes_match_pieces_in_order_only() {
    let lines: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let piece = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(quoted_in(&[piece(&["b", "c"])], &lines));
    assert!(quoted_in(&[piece(&["a"]), piece(&["c", "d"])], &lines));
    assert!(!quoted_in(&[piece(&["c"]), piece(&["a"])], &lines));
    assert!(!quoted_in(&[piece(&["a", "c"])], &lines));
    let [raw, doc] = quotable_texts("//! ```\n//! # hidden\n//! shown\n//! ```\nfn f() {}");
    assert_eq!(doc, ["```", "shown", "```"]);
    assert_eq!(raw.len(), 5);
}
