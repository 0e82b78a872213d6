//! Command dispatch, and the key-space commands.
//!
//! Dispatch does what Redis's `processCommand` does, in the same order: look the command
//! up (case-insensitively), then its subcommand for a container (`CONFIG GET`), then check
//! the arity; each failure has Redis's exact error text. The connection and server
//! commands (`CONFIG`, `COMMAND`, `CLIENT`, `SELECT`, ...) are in the private `admin`
//! module beside this one.

use super::admin;
use super::parser::{parse_i64, Limits};
use super::reply::Reply;
use super::store::{Expiry, Store};
use bytes::Bytes;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What one connection remembers between its commands.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Session {
    /// `CLIENT SETNAME`.
    pub name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Option<Bytes>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Option<Bytes>,
}

/// Everything a command runs against.
#[derive(Debug)]
pub struct Exec<'a> {
    /// The key space.
    pub store: &'a mut Store,
    /// The connection's state.
    pub session: &'a mut Session,
    /// The server's protocol limits (`CONFIG GET proto-max-bulk-len` shows `max_bulk`).
    pub limits: Limits,
    /// The command's time: keys due at or before it have expired.
    pub now: Instant,
}

impl Exec<'_> {
    /// `arg` (an argument of the request) as a value to store: a copy of its own, so that
    /// a stored value keeps no request buffer alive.
    pub fn value(&self, arg: &[u8]) -> Bytes {
        Bytes::copy_from_slice(arg)
    }
}

/// What the connection does after a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the reply and go on.
    Reply(Reply),
    /// Send the reply, then close (`QUIT`).
    ReplyAndClose(Reply),
}

/// A command of the table: its name (`config|get` for a subcommand), Redis's arity (`n`:
/// exactly `n` arguments with the name; `-n`: at least `n`), and its subcommands.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    arity: i32,
    run: fn(&mut Exec<'_>, &[&[u8]]) -> Reply,
    subcommands: &'static [Spec],
    closes: bool,
}

const fn cmd(name: &'static str, arity: i32, run: fn(&mut Exec<'_>, &[&[u8]]) -> Reply) -> Spec {
    Spec {
        name,
        arity,
        run,
        subcommands: &[],
        closes: false,
    }
}

/// The commands, in the order `COMMAND LIST` shows them.
pub(crate) static COMMANDS: &[Spec] = &[
    cmd("ping", -1, ping),
    cmd("echo", 2, |_, a| Reply::bulk(a[1])),
    cmd("set", -3, set),
    cmd("get", 2, |x, a| bulk_or_null(x.store.get(a[1]))),
    cmd("del", -2, del),
    cmd("exists", -2, exists),
    cmd("incr", 2, |x, a| incr_by(x, a[1], 1)),
    cmd("decr", 2, |x, a| incr_by(x, a[1], -1)),
    cmd("incrby", 3, incrby),
    cmd("decrby", 3, decrby),
    cmd("mget", -2, mget),
    cmd("mset", -3, mset),
    cmd("dbsize", 1, |x, _| Reply::Integer(count(x.store.len()))),
    cmd("flushdb", -1, admin::flush),
    cmd("flushall", -1, admin::flush),
    cmd("select", 2, admin::select),
    Spec {
        subcommands: admin::CONFIG,
        ..cmd("config", -2, admin::no_subcommand)
    },
    Spec {
        subcommands: admin::COMMAND,
        ..cmd("command", -1, admin::command)
    },
    Spec {
        subcommands: admin::CLIENT,
        ..cmd("client", -2, admin::no_subcommand)
    },
    Spec {
        closes: true,
        ..cmd("quit", -1, |_, _| Reply::OK)
    },
];

/// Subcommand specs are built by [`admin`] with this.
pub(crate) const fn subcommand(
    name: &'static str,
    arity: i32,
    run: fn(&mut Exec<'_>, &[&[u8]]) -> Reply,
) -> Spec {
    cmd(name, arity, run)
}

/// Runs the command `args` (the name first; never empty).
///
/// ```
/// use asyncore_examples::resp::{execute, Action, Exec, Limits, Reply, Session, Store};
///
/// let (mut store, mut session) = (Store::new(), Session::default());
/// let mut x = Exec {
///     store: &mut store,
///     session: &mut session,
///     limits: Limits::default(),
///     now: std::time::Instant::now(),
/// };
/// let run = |x: &mut Exec<'_>, words: &[&str]| {
///     let args: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
///     match execute(x, &args) {
///         Action::Reply(r) | Action::ReplyAndClose(r) => r.to_bytes(),
///     }
/// };
/// assert_eq!(run(&mut x, &["SET", "k", "41"]), b"+OK\r\n");
/// assert_eq!(run(&mut x, &["INCR", "k"]), b":42\r\n");
/// assert_eq!(run(&mut x, &["GET", "k", "x"]), b"-ERR wrong number of arguments for 'get' command\r\n");
/// ```
pub fn execute(x: &mut Exec<'_>, args: &[&[u8]]) -> Action {
    x.store.expire_due(x.now);
    let Some(name) = args.first() else {
        return Action::Reply(unknown_command(args));
    };
    let Some(mut spec) = lookup(COMMANDS, name) else {
        return Action::Reply(unknown_command(args));
    };
    if !spec.subcommands.is_empty() && args.len() >= 2 {
        match lookup(spec.subcommands, args[1]) {
            Some(sub) => spec = sub,
            None => return Action::Reply(unknown_subcommand(args)),
        }
    }
    let argc = args.len();
    let arity_ok = match usize::try_from(spec.arity) {
        Ok(exact) => argc == exact,
        Err(_) => argc >= spec.arity.unsigned_abs() as usize,
    };
    if !arity_ok {
        return Action::Reply(wrong_arity(spec.name));
    }
    let reply = (spec.run)(x, args);
    if spec.closes {
        Action::ReplyAndClose(reply)
    } else {
        Action::Reply(reply)
    }
}

/// The command of `specs` named `name` (a subcommand matches the part after `|`).
fn lookup(specs: &'static [Spec], name: &[u8]) -> Option<&'static Spec> {
    // A subcommand's name is `parent|name`: compare the part after the last '|'.
    specs.iter().find(|s| {
        let full = s.name.as_bytes();
        let Some(start) = full.len().checked_sub(name.len()) else {
            return false;
        };
        (start == 0 || full[start - 1] == b'|') && full[start..].eq_ignore_ascii_case(name)
    })
}

/// `s` as C code sees it: up to its first NUL byte.
pub(crate) fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

/// At most `n` bytes of `s` (C's `%.Ns`).
fn at_most(s: &[u8], n: usize) -> &[u8] {
    &s[..s.len().min(n)]
}

/// `unknown command '%.128s', with args beginning with: 'a' 'b' ` (arguments quoted
/// until 128 bytes of them are shown).
fn unknown_command(args: &[&[u8]]) -> Reply {
    let name = args.first().map_or(&b""[..], |a| c_str(a));
    let mut shown = Vec::new();
    for arg in args.iter().skip(1) {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(at_most(c_str(arg), room));
        shown.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(at_most(name, 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&shown);
    Reply::error(text)
}

/// `unknown subcommand '%.128s'. Try CONTAINER HELP.`
fn unknown_subcommand(args: &[&[u8]]) -> Reply {
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(at_most(c_str(args[1]), 128));
    text.extend_from_slice(b"'. Try ");
    text.extend(c_str(args[0]).iter().map(u8::to_ascii_uppercase));
    text.extend_from_slice(b" HELP.");
    Reply::error(text)
}

/// `wrong number of arguments for 'NAME' command`.
pub(crate) fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// `ERR syntax error`.
pub(crate) fn syntax_error() -> Reply {
    Reply::error("ERR syntax error")
}

/// `ERR value is not an integer or out of range`.
pub(crate) fn not_an_integer() -> Reply {
    Reply::error("ERR value is not an integer or out of range")
}

fn bulk_or_null(value: Option<&Bytes>) -> Reply {
    value.map_or(Reply::Null, |v| Reply::Bulk(v.clone()))
}

/// A count as a RESP integer (counts of keys and arguments fit).
pub(crate) fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn ping(_: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    match a {
        [_] => Reply::Simple("PONG"),
        [_, msg] => Reply::bulk(msg),
        _ => wrong_arity("ping"),
    }
}

fn del(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    Reply::Integer(count(a[1..].iter().filter(|k| x.store.remove(k)).count()))
}

fn exists(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    Reply::Integer(count(a[1..].iter().filter(|k| x.store.contains(k)).count()))
}

fn mget(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    Reply::Array(
        a[1..]
            .iter()
            .map(|k| bulk_or_null(x.store.get(k)))
            .collect(),
    )
}

fn mset(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    if a[1..].len() % 2 == 1 {
        return wrong_arity("mset");
    }
    for pair in a[1..].chunks_exact(2) {
        let value = x.value(pair[1]);
        x.store.set(pair[0], value, Expiry::Clear);
    }
    Reply::OK
}

fn incrby(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    match parse_i64(a[2]) {
        Some(by) => incr_by(x, a[1], by),
        None => not_an_integer(),
    }
}

fn decrby(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    match parse_i64(a[2]) {
        Some(i64::MIN) => Reply::error("ERR decrement would overflow"),
        Some(by) => incr_by(x, a[1], -by),
        None => not_an_integer(),
    }
}

/// `INCRBY key by`: the value must be an integer as Redis parses one; the key keeps its
/// expiry time.
fn incr_by(x: &mut Exec<'_>, key: &[u8], by: i64) -> Reply {
    let current = match x.store.get(key) {
        None => 0,
        Some(v) => match parse_i64(v) {
            Some(n) => n,
            None => return not_an_integer(),
        },
    };
    match current.checked_add(by) {
        Some(n) => {
            x.store.set(key, Bytes::from(n.to_string()), Expiry::Keep);
            Reply::Integer(n)
        }
        None => Reply::error("ERR increment or decrement would overflow"),
    }
}

/// The expiry option of a `SET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpireKind {
    fn from_option(opt: &[u8]) -> Option<ExpireKind> {
        let kinds = [
            (&b"ex"[..], ExpireKind::Ex),
            (b"px", ExpireKind::Px),
            (b"exat", ExpireKind::ExAt),
            (b"pxat", ExpireKind::PxAt),
        ];
        kinds
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(opt))
            .map(|(_, kind)| kind)
    }

    fn in_seconds(self) -> bool {
        matches!(self, ExpireKind::Ex | ExpireKind::ExAt)
    }

    fn absolute(self) -> bool {
        matches!(self, ExpireKind::ExAt | ExpireKind::PxAt)
    }
}

/// `SET key value [NX | XX] [GET] [EX s | PX ms | EXAT t | PXAT t | KEEPTTL]`, with
/// Redis's rules for which options go together (a repeated option is allowed, a
/// conflicting one is a syntax error) and its checks of the expiry time.
fn set(x: &mut Exec<'_>, a: &[&[u8]]) -> Reply {
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expire: Option<(ExpireKind, &[u8])> = None;
    let mut j = 3;
    while j < a.len() {
        let opt = a[j];
        let next = a.get(j + 1).copied();
        let kind = ExpireKind::from_option(opt);
        if opt.eq_ignore_ascii_case(b"nx") && !xx {
            nx = true;
        } else if opt.eq_ignore_ascii_case(b"xx") && !nx {
            xx = true;
        } else if opt.eq_ignore_ascii_case(b"get") {
            get = true;
        } else if opt.eq_ignore_ascii_case(b"keepttl") && expire.is_none() {
            keep_ttl = true;
        } else if let (Some(kind), Some(value), false) = (kind, next, keep_ttl) {
            if expire.is_some_and(|(k, _)| k != kind) {
                return syntax_error();
            }
            expire = Some((kind, value));
            j += 1;
        } else {
            return syntax_error();
        }
        j += 1;
    }
    let expiry = match expire {
        None if keep_ttl => Expiry::Keep,
        None => Expiry::Clear,
        Some((kind, value)) => match expire_at(kind, value, x.now) {
            Ok(Some(at)) => Expiry::At(at),
            Ok(None) => Expiry::Clear,
            Err(reply) => return reply,
        },
    };
    let key = a[1];
    // Only NX, XX and GET look at the old value (a plain SET, the common case, does not).
    let old = if nx || xx || get {
        x.store.get(key).cloned()
    } else {
        None
    };
    if (nx && old.is_some()) || (xx && old.is_none()) {
        return if get {
            bulk_or_null(old.as_ref())
        } else {
            Reply::Null
        };
    }
    let value = x.value(a[2]);
    x.store.set(key, value, expiry);
    if get {
        bulk_or_null(old.as_ref())
    } else {
        Reply::OK
    }
}

/// When a key set now with expiry option `kind value` expires (`None`: later than an
/// `Instant` can tell, so never in this process's life); `Err` is the reply to a bad value.
/// An instant in the past (an `EXAT` gone by) expires the key at once.
fn expire_at(kind: ExpireKind, value: &[u8], now: Instant) -> Result<Option<Instant>, Reply> {
    let invalid = || Reply::error("ERR invalid expire time in 'set' command");
    let n = parse_i64(value).ok_or_else(not_an_integer)?;
    if n <= 0 || (kind.in_seconds() && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if kind.in_seconds() { n * 1000 } else { n };
    let unix_now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let from_now_ms = if kind.absolute() {
        ms - unix_now_ms
    } else {
        // Redis adds the time and refuses a sum that overflows.
        ms.checked_add(unix_now_ms).ok_or_else(invalid)?;
        ms
    };
    let from_now = Duration::from_millis(u64::try_from(from_now_ms).unwrap_or(0));
    Ok(now.checked_add(from_now))
}

/// Calls `f` with the arguments as a slice of byte slices, on the stack for up to 8 of
/// them (almost every request).
pub fn with_args<'a, R>(
    args: impl ExactSizeIterator<Item = &'a [u8]>,
    f: impl FnOnce(&[&'a [u8]]) -> R,
) -> R {
    const ON_STACK: usize = 8;
    let n = args.len();
    if n <= ON_STACK {
        let mut slots: [&[u8]; ON_STACK] = [&[]; ON_STACK];
        for (slot, arg) in slots.iter_mut().zip(args) {
            *slot = arg;
        }
        f(&slots[..n])
    } else {
        f(&args.collect::<Vec<_>>())
    }
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
