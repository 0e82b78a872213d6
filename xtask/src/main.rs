//! Project automation, run as `cargo xtask <task>`.
//!
//! - `test`: the whole gate, in order, stopping at the first failure: formatting, clippy
//!   with warnings as errors, every test of the workspace (unit, integration, doc), the
//!   library crates for a 32-bit target (`i686-unknown-linux-gnu`: clippy, and their unit
//!   tests built and run there; the build's lints catch overflowing shifts that `cargo
//!   check` does not), clippy of them for macOS and FreeBSD (kqueue) and of core and chat
//!   for Windows (MSVC), rustdoc with warnings as errors, `cargo package` of the library
//!   crates (built from their packages), and a build of them with the toolchain of
//!   `rust-version`.
//! - `bench`: our servers side by side with redis-server, tokio and CPython's
//!   asyncore/asynchat; writes `target/bench/report.md` (`--quick` for a smoke run).
//! - `soak`: about 1,000 connections of random valid requests, garbage and disconnects
//!   against resp_server and chat_server; every reply checked, RSS must stay flat.
//! - `interop`: drives the example programs with real outside peers (`python3`,
//!   `redis-cli`, `redis-benchmark`, `redis-server`); fails when one is missing.
//! - `wine`: the Windows build (`x86_64-pc-windows-gnu`) of core, chat, the tests and the
//!   examples, its tests run under Wine (see `wine.rs`).
//!
//! Every command is printed before it runs.

mod bench;
mod interop;
mod interop_tls;
mod proc;
mod soak;
mod wine;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

pub(crate) fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

/// Runs `cargo ARGS` at the workspace root with extra environment, printing it first.
pub(crate) fn run_cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let shown: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    eprintln!("$ {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(cargo())
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn test() -> Result<(), String> {
    run_cargo(&["fmt", "--all", "--", "--check"], &[])?;
    // Without and with the optional features (`tls`): a user who needs no TLS compiles
    // none, and each build must be warning-free and pass on its own.
    for features in [&[][..], &["--all-features"][..]] {
        let mut args = vec!["clippy", "--workspace", "--all-targets"];
        args.extend(features);
        args.extend(["--", "-D", "warnings"]);
        run_cargo(&args, &[])?;
        let mut args = vec!["test", "--workspace"];
        args.extend(features);
        run_cargo(&args, &[])?;
    }
    check_other_targets()?;
    run_cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    check_release()?;
    Ok(())
}

/// Removes what an earlier `cargo package` left of our own crates: the copies it unpacked
/// from its temporary registry into `$CARGO_HOME/registry/src`, and its build directory
/// ([`PACKAGE_TARGET`]). Cargo takes a registry crate of one version to be immutable (it
/// unpacks and builds it once), so after a change (the version stays 0.1.0) the next
/// verification would build the dependent crates against the old one. The crates.io
/// registry's directory is left alone.
fn forget_packaged_crates() {
    let _ = std::fs::remove_dir_all(project_root().join(PACKAGE_TARGET));
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return;
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return;
    };
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io")
        {
            continue;
        }
        let Ok(crates) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for krate in crates.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if ["asyncore-core-", "asyncore-chat-", "asyncore-file-"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                let _ = std::fs::remove_dir_all(krate.path());
            }
        }
    }
}

/// Where `cargo package` builds: a directory of its own, emptied before each run (see
/// [`forget_packaged_crates`]), so that it never mixes our crates' registry copies of
/// one run with another's.
const PACKAGE_TARGET: &str = "target/package-build";

/// The toolchain of the workspace's `rust-version`: the library crates must build with it.
const MSRV: &str = "1.87";

/// What publishing needs: each library crate packaged and its package built on its own
/// (`cargo package` resolves the path dependencies between the unpublished crates), and
/// the library crates built with the oldest toolchain their `rust-version` promises.
fn check_release() -> Result<(), String> {
    let manifest = std::fs::read_to_string(project_root().join("Cargo.toml"))
        .map_err(|e| format!("cannot read Cargo.toml: {e}"))?;
    if !manifest.contains(&format!("rust-version = \"{MSRV}\"")) {
        return Err(format!(
            "Cargo.toml's rust-version is not {MSRV}, the toolchain xtask checks"
        ));
    }
    forget_packaged_crates();
    let mut args = vec!["package", "--allow-dirty"];
    args.extend(LIBRARIES);
    run_cargo(&args, &[("CARGO_TARGET_DIR", PACKAGE_TARGET)])?;
    // Through rustup (the `cargo` running xtask is one toolchain's own binary), in a
    // target directory of its own, so that neither toolchain rebuilds the other's work.
    let mut args = vec!["run", MSRV, "cargo", "check", "--all-features"];
    args.extend(LIBRARIES);
    eprintln!("$ CARGO_TARGET_DIR=target/msrv rustup {}", args.join(" "));
    let status = Command::new("rustup")
        .args(&args)
        .env("CARGO_TARGET_DIR", "target/msrv")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .current_dir(project_root())
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the library crates do not build with rust-version's toolchain {MSRV} ({status}); \
             is it installed? `rustup toolchain install {MSRV} --profile minimal`"
        ))
    }
}

/// The library crates, checked for other targets than the host's.
const LIBRARIES: [&str; 6] = [
    "-p",
    "asyncore-core",
    "-p",
    "asyncore-chat",
    "-p",
    "asyncore-file",
];

/// The Windows crates: `asyncore-file` is Unix only by design.
const WINDOWS_LIBRARIES: [&str; 4] = ["-p", "asyncore-core", "-p", "asyncore-chat"];

/// The targets the library crates are checked for (with clippy, warnings as errors),
/// why each, which crates, and whether their unit tests are built and run there too
/// (only where this machine runs the target's programs; Windows runs in `cargo xtask
/// wine`).
const OTHER_TARGETS: [(&str, &str, &[&str], bool); 4] = [
    (
        "i686-unknown-linux-gnu",
        "32-bit: mio tokens hold a usize, and sizes must not assume 64 bits",
        &LIBRARIES,
        true,
    ),
    (
        "x86_64-apple-darwin",
        "kqueue, and a libc without MSG_NOSIGNAL or accept4",
        &LIBRARIES,
        false,
    ),
    (
        "x86_64-unknown-freebsd",
        "kqueue, the other BSD libc",
        &LIBRARIES,
        false,
    ),
    (
        "x86_64-pc-windows-msvc",
        "Windows with Microsoft's toolchain: the code the mingw build of `cargo xtask wine` runs",
        &WINDOWS_LIBRARIES,
        false,
    ),
];

/// Fails, saying how to install it, when the standard library for `target` is missing.
pub(crate) fn require_target(target: &str, why: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == target)
        })
        .unwrap_or(false);
    if installed {
        Ok(())
    } else {
        Err(format!(
            "the standard library for {target} is not installed ({why}): run `rustup target add {target}`"
        ))
    }
}

/// Clippy of the library crates for each of [`OTHER_TARGETS`], and their unit tests built
/// and run where it says so (running i686 programs needs `gcc-multilib` on Debian); a
/// target whose standard library is not installed is a failure that says how to install
/// it.
fn check_other_targets() -> Result<(), String> {
    for (target, why, crates, run_tests) in OTHER_TARGETS {
        require_target(target, why)?;
        let mut args = vec!["clippy", "--target", target];
        args.extend(crates);
        args.extend(["--", "-D", "warnings"]);
        run_cargo(&args, &[])?;
        if !run_tests {
            continue;
        }
        let mut args = vec!["test", "--target", target, "--lib"];
        args.extend(crates);
        run_cargo(&args, &[]).map_err(|e| {
            format!("{e} (linking and running {target} programs needs a C toolchain for it: `apt-get install gcc-multilib`)")
        })?;
    }
    Ok(())
}

const USAGE: &str = "usage: cargo xtask <task>

tasks:
  test      fmt check, clippy -D warnings, cargo test --workspace, clippy and the unit
            tests of the libraries for i686-unknown-linux-gnu, their clippy for
            x86_64-apple-darwin and x86_64-unknown-freebsd (core and chat for
            x86_64-pc-windows-msvc), rustdoc -D warnings, cargo package of the
            libraries, a check of them with rust-version's toolchain
  wine      core, chat, the workspace tests and the example programs built for
            x86_64-pc-windows-gnu (mingw-w64) and their tests run under Wine, with the
            counts printed; a missing tool is a failure
  bench     [--quick] [--only 1,2,3,4,5] [--rounds N] [--duration SECS]: our servers
            against redis-server, tokio and CPython asynchat; writes target/bench/report.md
  soak      [--secs N]: ~1,000 connections of valid requests, garbage and disconnects
            against resp_server and chat_server for N seconds (default 60)
  interop   [WORD]: the example programs against real peers (python3, redis-cli,
            redis-benchmark, redis-server, openssl), also with TLS; only the checks whose
            name contains WORD when given; a missing tool is a failure";

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("interop") => interop::interop(args.get(1).map(String::as_str)),
        Some("bench") => bench::bench(&args[1..]),
        Some("soak") => soak::soak(&args[1..]),
        Some("wine") => wine::wine(),
        Some("help") | Some("--help") | Some("-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => {
            eprintln!("unknown task `{other}`\n\n{USAGE}");
            exit(2);
        }
        None => {
            eprintln!("{USAGE}");
            exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("xtask: {e}");
        exit(1);
    }
    eprintln!("xtask: all steps passed");
}
