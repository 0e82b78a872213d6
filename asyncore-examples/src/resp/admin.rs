//! The server and connection commands: `FLUSHDB`, `FLUSHALL`, `SELECT`, `CONFIG GET`,
//! `COMMAND`, `CLIENT`.
//!
//! This server has one database, so it answers as `redis-server --databases 1` does:
//! `SELECT 0` is `+OK`, any other index `-ERR DB index is out of range`. `CONFIG GET`
//! knows the parameters clients ask about at start (`save`, `appendonly`, `databases`,
//! `proto-max-bulk-len`); `COMMAND` and `COMMAND DOCS` answer an empty array (clients
//! then fall back to their built-in help).

use super::commands::{count, not_an_integer, subcommand, syntax_error, Exec, Spec, COMMANDS};
use super::parser::parse_i64;
use super::reply::Reply;
use bytes::Bytes;

/// The subcommands of `CONFIG`.
pub(crate) static CONFIG: &[Spec] = &[subcommand("config|get", -3, config_get)];

/// The subcommands of `COMMAND`.
pub(crate) static COMMAND: &[Spec] = &[
    subcommand("command|count", 2, |_, _| {
        Reply::Integer(count(COMMANDS.len()))
    }),
    subcommand("command|docs", -2, |_, _| Reply::Array(Vec::new())),
    subcommand("command|list", -2, command_list),
];

/// The subcommands of `CLIENT`.
pub(crate) static CLIENT: &[Spec] = &[
    subcommand("client|setname", 3, client_setname),
    subcommand("client|getname", 2, |x, _| {
        x.session.name.clone().map_or(Reply::Null, Reply::Bulk)
    }),
    subcommand("client|setinfo", 4, client_setinfo),
];

/// A container command without its subcommand; the arity check never lets it run.
pub(crate) fn no_subcommand(_: &mut Exec<'_>, _: &[&[u8]]) -> Reply {
    syntax_error()
}

/// `FLUSHDB` / `FLUSHALL [SYNC | ASYNC]`: both empty the one key space.
pub(crate) fn flush(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    let mode_ok = match a {
        [_] => true,
        [_, mode] => mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !mode_ok {
        return syntax_error();
    }
    x.store.clear();
    Reply::OK
}

/// `SELECT index`: only database 0 exists.
pub(crate) fn select(_: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    match parse_i64(a[1]).map(i32::try_from) {
        Some(Ok(0)) => Reply::OK,
        Some(Ok(_)) => Reply::error("ERR DB index is out of range"),
        _ => not_an_integer(),
    }
}

/// `COMMAND` alone: the details of every command; we give none.
pub(crate) fn command(_: &mut Exec<'_>, _: &[&[u8]]) -> Reply {
    Reply::Array(Vec::new())
}

/// `COMMAND LIST`: the command names (no `FILTERBY`).
fn command_list(_: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    if a.len() != 2 {
        return syntax_error();
    }
    Reply::Array(COMMANDS.iter().map(|c| Reply::bulk(c.name)).collect())
}

/// The configuration parameters `CONFIG GET` knows, with their values.
fn parameters(x: &Exec<'_>) -> [(&'static str, String); 4] {
    [
        ("save", String::new()),
        ("appendonly", "no".to_string()),
        ("databases", "1".to_string()),
        ("proto-max-bulk-len", x.limits.max_bulk.to_string()),
    ]
}

/// `CONFIG GET parameter...`: each argument is a name (answered with the name as given)
/// or a glob pattern (answered with the names it matches), case-insensitively; each
/// parameter appears once. (Redis answers in its hash table's order; we answer in the
/// order asked.)
fn config_get(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    let params = parameters(x);
    let mut seen = [false; 4];
    let mut out = Vec::new();
    for arg in &a[2..] {
        let is_pattern = arg.iter().any(|&b| matches!(b, b'[' | b'*' | b'?'));
        for (i, (name, value)) in params.iter().enumerate() {
            let hit = if is_pattern {
                glob_match(arg, name.as_bytes())
            } else {
                arg.eq_ignore_ascii_case(name.as_bytes())
            };
            if hit && !seen[i] {
                seen[i] = true;
                let shown = if is_pattern {
                    Reply::bulk(name)
                } else {
                    Reply::bulk(arg)
                };
                out.push(shown);
                out.push(Reply::bulk(value));
            }
        }
    }
    Reply::Array(out)
}

/// A client name or library attribute: printable ASCII without spaces (`!` to `~`).
fn valid_attribute(value: &[u8]) -> bool {
    value.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// `CLIENT SETNAME name` (an empty name clears it).
fn client_setname(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    let name = a[2];
    if !valid_attribute(name) {
        return Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        );
    }
    x.session.name = (!name.is_empty()).then(|| Bytes::copy_from_slice(name));
    Reply::OK
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`, as Redis 7.2 answers it (7.0 has no
/// `SETINFO`; clients of 7.2 send it at start and ignore the error of older servers).
fn client_setinfo(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    let (attr, value) = (a[2], a[3]);
    let slot = if attr.eq_ignore_ascii_case(b"lib-name") {
        &mut x.session.lib_name
    } else if attr.eq_ignore_ascii_case(b"lib-ver") {
        &mut x.session.lib_ver
    } else {
        let mut text = b"ERR Unrecognized option '".to_vec();
        text.extend_from_slice(super::commands::c_str(attr));
        text.push(b'\'');
        return Reply::error(text);
    };
    if !valid_attribute(value) {
        let mut text = b"ERR ".to_vec();
        text.extend_from_slice(super::commands::c_str(attr));
        text.extend_from_slice(b" cannot contain spaces, newlines or special characters.");
        return Reply::error(text);
    }
    *slot = Some(Bytes::copy_from_slice(value));
    Reply::OK
}

/// One token of a glob pattern at `p` against the byte `c`: whether it matches, and
/// where the next token starts. Redis's `stringmatchlen` with `nocase`: `?`, `[...]`
/// (with `^`, ranges `a-z`, `\x`), `\x`, or a literal byte.
fn match_token(pat: &[u8], mut p: usize, c: u8) -> (bool, usize) {
    let lower = |b: u8| b.to_ascii_lowercase();
    match pat[p] {
        b'?' => (true, p + 1),
        b'[' => {
            p += 1;
            let negate = pat.get(p) == Some(&b'^');
            if negate {
                p += 1;
            }
            let mut hit = false;
            loop {
                match (pat.get(p), pat.get(p + 1), pat.get(p + 2)) {
                    (None, _, _) => break,
                    (Some(b'\\'), Some(&lit), _) => {
                        hit |= lit == c;
                        p += 2;
                    }
                    (Some(b']'), _, _) => {
                        p += 1;
                        break;
                    }
                    (Some(&lo), Some(b'-'), Some(&hi)) => {
                        let (lo, hi) = (lower(lo.min(hi)), lower(lo.max(hi)));
                        hit |= (lo..=hi).contains(&lower(c));
                        p += 3;
                    }
                    (Some(&lit), _, _) => {
                        hit |= lower(lit) == lower(c);
                        p += 1;
                    }
                }
            }
            (hit != negate, p)
        }
        b'\\' if p + 1 < pat.len() => (lower(pat[p + 1]) == lower(c), p + 2),
        lit => (lower(lit) == lower(c), p + 1),
    }
}

/// Whether `s` matches the glob `pat` (case-insensitively). Every token but `*` matches
/// one byte, so backtracking to the last `*` is enough: time O(len(pat) * len(s)).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if pat.get(p) == Some(&b'*') {
            p += 1;
            star = Some((p, i));
            continue;
        }
        if p < pat.len() {
            let (hit, next) = match_token(pat, p, s[i]);
            if hit {
                p = next;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn glob_patterns_match_as_redis_matches_them() {
        let yes: [(&str, &str); 10] = [
            ("*", "save"),
            ("sav*", "save"),
            ("SA?E", "save"),
            ("*a*e*", "appendonly"),
            ("[ps]ave", "save"),
            ("[^x]ave", "save"),
            ("[a-z]ave", "save"),
            ("s\\ave", "save"),
            ("*-*-*-*", "proto-max-bulk-len"),
            ("**s**", "databases"),
        ];
        for (p, s) in yes {
            assert!(glob_match(p.as_bytes(), s.as_bytes()), "{p} ~ {s}");
        }
        let no: [(&str, &str); 6] = [
            ("sav", "save"),
            ("?", "save"),
            ("[^s]ave", "save"),
            ("*x*", "save"),
            ("save?", "save"),
            ("[", "save"),
        ];
        for (p, s) in no {
            assert!(!glob_match(p.as_bytes(), s.as_bytes()), "{p} !~ {s}");
        }
    }

    #[test]
    fn many_stars_do_not_blow_up() {
        let pat = "*a".repeat(10_000) + "x";
        assert!(!glob_match(
            pat.as_bytes(),
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaa".as_bytes()
        ));
    }
}
