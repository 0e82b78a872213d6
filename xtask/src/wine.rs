//! `cargo xtask wine`: asyncore-core, asyncore-chat, the workspace tests and the example
//! programs built for Windows (`x86_64-pc-windows-gnu`, linked by Debian's mingw-w64) and
//! their tests run under Wine.
//!
//! 1. Clippy of the Windows build, warnings as errors (libraries, programs and tests).
//! 2. The shim `bcryptprimitives.dll` (`xtask/wine/process_prng.c`): Rust's standard
//!    library for Windows imports `ProcessPrng` from that DLL, which Wine 8 lacks, so
//!    every Windows binary fails to start. The shim exports that one function,
//!    forwarding to `SystemFunction036` of advapi32; built with mingw and copied next to
//!    every binary (Windows looks for DLLs beside the program first).
//! 3. Every test binary run under `wine`, in its package's directory as `cargo test`
//!    does, in a Wine prefix of its own under `target/`; the counts are added up and
//!    printed. A failed test, a binary that does not finish in time, or no test at all is
//!    a failure.
//!
//! Tests that cannot apply on Windows are left out by `cfg` in their files, each with its
//! reason; nothing is skipped here.

use crate::proc::find_tool;
use crate::{project_root, run_cargo};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Windows target that this machine can link (mingw-w64) and run (Wine).
pub(crate) const TARGET: &str = "x86_64-pc-windows-gnu";

/// What is built and tested for Windows: every crate but `asyncore-file` (Unix only by
/// design) and xtask.
const PACKAGES: [&str; 8] = [
    "-p",
    "asyncore-core",
    "-p",
    "asyncore-chat",
    "-p",
    "asyncore-tests",
    "-p",
    "asyncore-examples",
];

/// The targets built: no benchmarks (they measure Linux against Linux).
const TARGETS: [&str; 3] = ["--lib", "--bins", "--tests"];

/// How long one test binary may run under Wine.
const BINARY_DEADLINE: Duration = Duration::from_secs(600);

/// What Wine prints when a program loses its wineserver (not the program's failure).
const WINE_CLIENT_ERROR: &str = "wine client error";

/// A persistent wineserver for a prefix, stopped when dropped.
struct WineServer {
    prefix: PathBuf,
}

impl WineServer {
    fn start(prefix: &Path) -> Result<WineServer, String> {
        std::fs::create_dir_all(prefix)
            .map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
        // A server left running by an earlier run would refuse to start a second one.
        let _ = Command::new("wineserver")
            .arg("--kill")
            .env("WINEPREFIX", prefix)
            .status();
        let status = Command::new("wineserver")
            .arg("--persistent")
            .env("WINEPREFIX", prefix)
            .status()
            .map_err(|e| format!("cannot run wineserver: {e}"))?;
        if !status.success() {
            return Err(format!("wineserver --persistent failed ({status})"));
        }
        Ok(WineServer {
            prefix: prefix.to_path_buf(),
        })
    }
}

impl Drop for WineServer {
    fn drop(&mut self) {
        let _ = Command::new("wineserver")
            .arg("--kill")
            .env("WINEPREFIX", &self.prefix)
            .status();
    }
}

/// What one test binary reported.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub(crate) fn wine() -> Result<(), String> {
    find_tool("wine")?;
    find_tool("wineserver")?;
    find_tool("x86_64-w64-mingw32-gcc").map_err(|e| {
        format!("{e}: the Windows build links with it (apt-get install -y gcc-mingw-w64-x86-64)")
    })?;
    crate::require_target(TARGET, "the Windows build")?;

    let mut args = vec!["clippy", "--target", TARGET, "--all-features"];
    args.extend(PACKAGES);
    args.extend(TARGETS);
    args.extend(["--", "-D", "warnings"]);
    run_cargo(&args, &[])?;

    let binaries = build_tests()?;
    let shim = build_shim()?;
    let mut dirs: Vec<&Path> = binaries.iter().filter_map(|b| b.exe.parent()).collect();
    // The programs the examples' tests start (`CARGO_BIN_EXE_*`) live one level up.
    dirs.extend(dirs.clone().iter().filter_map(|d| d.parent()));
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        std::fs::copy(&shim, dir.join("bcryptprimitives.dll"))
            .map_err(|e| format!("cannot copy the shim to {}: {e}", dir.display()))?;
    }

    let prefix = project_root().join("target").join("wine-prefix");
    // One wineserver for the whole run: started per binary, it exits between them, and a
    // binary that starts while it is exiting dies with "wine client error".
    let _server = WineServer::start(&prefix)?;
    let mut total = Counts::default();
    let mut failures = Vec::new();
    let started = Instant::now();
    for binary in binaries.iter().filter(|b| b.test) {
        let name = binary
            .exe
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let (mut counts, mut ok, mut output) = run_under_wine(binary, &prefix)?;
        if !ok && output.contains(WINE_CLIENT_ERROR) {
            // Wine's own failure before any test ran, not the binary's: once more.
            eprintln!("wine: {name}: Wine failed ({WINE_CLIENT_ERROR}); running it again");
            (counts, ok, output) = run_under_wine(binary, &prefix)?;
        }
        eprintln!(
            "wine: {name}: {} passed, {} failed, {} ignored",
            counts.passed, counts.failed, counts.ignored
        );
        total.passed += counts.passed;
        total.failed += counts.failed;
        total.ignored += counts.ignored;
        if !ok {
            eprintln!("{output}");
            failures.push(name);
        }
    }
    eprintln!(
        "wine: Windows ({TARGET} under Wine): {} tests passed, {} failed, {} ignored, in {} \
         test binaries, {:.0} s",
        total.passed,
        total.failed,
        total.ignored,
        binaries.iter().filter(|b| b.test).count(),
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        return Err(format!("under Wine, failed: {}", failures.join(", ")));
    }
    if total.passed == 0 {
        return Err("under Wine, no test ran".to_string());
    }
    Ok(())
}

/// A binary cargo built for the target, and the manifest of its package.
struct Binary {
    exe: PathBuf,
    manifest_dir: PathBuf,
    test: bool,
}

/// Builds the test binaries (and the programs they start) and lists them, from cargo's
/// JSON messages.
fn build_tests() -> Result<Vec<Binary>, String> {
    let mut args = vec![
        "test",
        "--no-run",
        "--message-format=json-render-diagnostics",
        "--target",
        TARGET,
        "--all-features",
    ];
    args.extend(PACKAGES);
    args.extend(TARGETS);
    eprintln!("$ cargo {}", args.join(" "));
    let out = Command::new(crate::cargo())
        .args(&args)
        .current_dir(project_root())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("the Windows build failed ({})", out.status));
    }
    let mut binaries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if !line.contains("\"reason\":\"compiler-artifact\"") {
            continue;
        }
        let (Some(exe), Some(manifest)) = (
            json_string(line, "executable"),
            json_string(line, "manifest_path"),
        ) else {
            continue;
        };
        let manifest = PathBuf::from(manifest);
        binaries.push(Binary {
            exe: PathBuf::from(exe),
            manifest_dir: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
            // The profile's `test`, not the target's (which says whether it has tests).
            test: line.find("\"profile\":{").is_some_and(|at| {
                line[at..]
                    .split('}')
                    .next()
                    .is_some_and(|p| p.contains("\"test\":true"))
            }),
        });
    }
    Ok(binaries)
}

/// The string value of `"key":"..."` in one line of cargo's JSON (paths here hold no
/// quotes or escapes; a value that does is not taken).
fn json_string(line: &str, key: &str) -> Option<String> {
    let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let rest = &line[start..];
    let value = &rest[..rest.find('"')?];
    (!value.contains('\\')).then(|| value.to_string())
}

/// Builds the `ProcessPrng` shim (see the module docs) into `target/wine/`.
fn build_shim() -> Result<PathBuf, String> {
    let root = project_root();
    let source = root.join("xtask").join("wine").join("process_prng.c");
    let out_dir = root.join("target").join("wine");
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("cannot create target/wine: {e}"))?;
    let dll = out_dir.join("bcryptprimitives.dll");
    let args = [
        "-shared".as_ref(),
        "-O2".as_ref(),
        "-o".as_ref(),
        dll.as_os_str(),
        source.as_os_str(),
        "-ladvapi32".as_ref(),
    ];
    eprintln!(
        "$ x86_64-w64-mingw32-gcc {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let status = Command::new("x86_64-w64-mingw32-gcc")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run x86_64-w64-mingw32-gcc: {e}"))?;
    if !status.success() {
        return Err(format!("building the ProcessPrng shim failed ({status})"));
    }
    Ok(dll)
}

/// Runs one test binary under Wine: its counts, whether it passed, and its output.
fn run_under_wine(binary: &Binary, prefix: &Path) -> Result<(Counts, bool, String), String> {
    let output_path = prefix.with_extension("out");
    let output = std::fs::File::create(&output_path)
        .map_err(|e| format!("cannot create {}: {e}", output_path.display()))?;
    let errors = output
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", output_path.display()))?;
    let mut child = Command::new("wine")
        .arg(&binary.exe)
        .current_dir(&binary.manifest_dir)
        .env("WINEPREFIX", prefix)
        .env("WINEDEBUG", "-all")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .map_err(|e| format!("cannot run wine: {e}"))?;
    let deadline = Instant::now() + BINARY_DEADLINE;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for wine: {e}")),
        }
    };
    let text = std::fs::read_to_string(&output_path).unwrap_or_default();
    let mut counts = Counts::default();
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let number = |word: &str| -> u64 {
            let words: Vec<&str> = line
                .split([' ', ';', '.'])
                .filter(|w| !w.is_empty())
                .collect();
            words
                .windows(2)
                .find(|w| w[1] == word)
                .and_then(|w| w[0].parse().ok())
                .unwrap_or(0)
        };
        counts.passed += number("passed");
        counts.failed += number("failed");
        counts.ignored += number("ignored");
    }
    let ok = match status {
        Some(status) => status.success() && counts.failed == 0,
        None => {
            return Ok((
                counts,
                false,
                format!("{text}\n(killed after {BINARY_DEADLINE:?})"),
            ))
        }
    };
    Ok((counts, ok, text))
}
