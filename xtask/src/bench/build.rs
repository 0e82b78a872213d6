//! Building the measured programs in release and finding them from cargo's JSON messages.

use crate::project_root;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The executables of asyncore-examples' binaries and bench targets, by target name.
pub type Programs = BTreeMap<String, PathBuf>;

/// `cargo build --release -p asyncore-examples --bins --benches --features tls`, then the executables
/// that cargo reports (`compiler-artifact` messages with an `executable`).
///
/// # Errors
/// Cargo cannot run or the build fails.
pub fn build() -> Result<Programs, String> {
    build_in(&project_root(), None)
}

/// The programs of an earlier commit `rev`, for an A/B run: checked out (once) in a git
/// worktree under `dir`, built there in release with a target folder of their own.
///
/// # Errors
/// `rev` names no commit, or the checkout or the build fails.
pub fn build_baseline(rev: &str, dir: &Path) -> Result<Programs, String> {
    let commit = git(
        &project_root(),
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?;
    let tree = dir.join(format!("baseline-{}", &commit[..commit.len().min(12)]));
    if !tree.join("Cargo.toml").exists() {
        let path = tree.display().to_string();
        git(
            &project_root(),
            &["worktree", "add", "--force", "--detach", &path, &commit],
        )?;
    }
    build_in(&tree, Some(&dir.join("baseline-target")))
}

fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    eprintln!("$ git {}", args.join(" "));
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`git {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build_in(root: &Path, target_dir: Option<&Path>) -> Result<Programs, String> {
    let mut args = vec![
        "build",
        "--release",
        "-p",
        "asyncore-examples",
        "--bins",
        "--benches",
        "--message-format=json-render-diagnostics",
    ];
    // A baseline from before TLS has no such feature (and no TLS scenario to run).
    let manifest =
        std::fs::read_to_string(root.join("asyncore-examples/Cargo.toml")).unwrap_or_default();
    if manifest.contains("\ntls = [") {
        args.extend(["--features", "tls"]);
    }
    eprintln!("$ (cd {}; cargo {})", root.display(), args.join(" "));
    let mut cmd = Command::new(crate::cargo());
    cmd.args(args).current_dir(root).stdout(Stdio::piped());
    if let Some(dir) = target_dir {
        cmd.env("CARGO_TARGET_DIR", dir);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut programs = Programs::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.map_err(|e| format!("reading cargo's output: {e}"))?;
            if let Some((name, exe)) = artifact(&line) {
                programs.insert(name, exe);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("cargo: {e}"))?;
    if !status.success() {
        return Err(format!("the release build failed ({status})"));
    }
    Ok(programs)
}

/// The target name and executable of a `compiler-artifact` message, if it has one.
fn artifact(line: &str) -> Option<(String, PathBuf)> {
    if !line.contains(r#""reason":"compiler-artifact""#) {
        return None;
    }
    let exe = json_string(line, r#""executable":"#)?;
    let target = &line[line.find(r#""target":{"#)?..];
    let name = json_string(target, r#""name":"#)?;
    // `--benches` also builds every binary as a libtest harness (binaries have
    // `bench = true`): keep the binaries built as programs. Bench targets with
    // `harness = false` are reported with a test profile but are plain programs.
    let profile = &line[line.find(r#""profile":{"#)?..];
    let profile = &profile[..profile.find('}')?];
    let bench = target.starts_with(r#""target":{"kind":["bench"]"#);
    if !bench && profile.contains(r#""test":true"#) {
        return None;
    }
    Some((name, PathBuf::from(exe)))
}

/// The JSON string value right after `key` in `text` (`None` for `null` or a non-string),
/// with the escapes a path or a target name can carry.
fn json_string(text: &str, key: &str) -> Option<String> {
    let rest = text[text.find(key)? + key.len()..].strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    // As cargo 1.95 prints them (shortened).
    const BENCH: &str = r#"{"reason":"compiler-artifact","package_id":"x","target":{"kind":["bench"],"crate_types":["bin"],"name":"loadgen","src_path":"/w/benches/loadgen/main.rs","test":false},"profile":{"opt_level":"3","test":true},"features":[],"executable":"/t/release/deps/loadgen-1","fresh":true}"#;
    const HARNESS: &str = r#"{"reason":"compiler-artifact","target":{"kind":["bin"],"crate_types":["bin"],"name":"echo_server","test":true},"profile":{"opt_level":"3","test":true},"executable":"/t/release/deps/echo_server-2"}"#;

    #[test]
    fn artifact_finds_bench_targets_and_programs_not_harnesses() {
        let exe = |p: &str| PathBuf::from(p);
        assert_eq!(
            artifact(BENCH),
            Some(("loadgen".into(), exe("/t/release/deps/loadgen-1")))
        );
        let lib = BENCH.replace(
            r#""executable":"/t/release/deps/loadgen-1""#,
            r#""executable":null"#,
        );
        assert_eq!(artifact(&lib), None);
        assert_eq!(artifact(HARNESS), None);
        let program = HARNESS.replace(r#""test":true},"ex"#, r#""test":false},"ex"#);
        assert_eq!(
            artifact(&program),
            Some(("echo_server".into(), exe("/t/release/deps/echo_server-2")))
        );
    }

    #[test]
    fn json_string_unescapes() {
        assert_eq!(
            json_string(r#""a":"x\"y\\z""#, r#""a":"#),
            Some(r#"x"y\z"#.into())
        );
        assert_eq!(json_string(r#""a":null"#, r#""a":"#), None);
    }
}
