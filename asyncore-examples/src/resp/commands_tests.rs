//! Unit tests of the commands: each reply is the one Debian's redis-server 7.0 gave for
//! the same request (recorded by hand; `tests/data/resp_cases.txt` has more).

use super::*;
use crate::resp::parser::split_args;

struct World {
    store: Store,
    session: Session,
    now: Instant,
}

impl World {
    fn new() -> World {
        World {
            store: Store::new(),
            session: Session::default(),
            now: Instant::now(),
        }
    }

    /// The reply to the inline request `line`, and whether the connection closes.
    fn run_action(&mut self, line: &str) -> Action {
        let words = split_args(line.as_bytes()).expect("balanced quotes");
        let args: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
        let mut x = Exec {
            store: &mut self.store,
            session: &mut self.session,
            limits: Limits::default(),
            now: self.now,
        };
        execute(&mut x, &args)
    }

    fn run(&mut self, line: &str) -> String {
        match self.run_action(line) {
            Action::Reply(r) => String::from_utf8_lossy(&r.to_bytes()).into_owned(),
            Action::ReplyAndClose(_) => panic!("{line} closed the connection"),
        }
    }
}

fn check(w: &mut World, pairs: &[(&str, &str)]) {
    for (req, want) in pairs {
        assert_eq!(w.run(req), *want, "request {req:?}");
    }
}

#[test]
fn ping_and_echo() {
    check(
        &mut World::new(),
        &[
            ("PING", "+PONG\r\n"),
            ("ping hello", "$5\r\nhello\r\n"),
            ("PING \"\"", "$0\r\n\r\n"),
            (
                "PING a b",
                "-ERR wrong number of arguments for 'ping' command\r\n",
            ),
            ("ECHO x", "$1\r\nx\r\n"),
            (
                "ECHO",
                "-ERR wrong number of arguments for 'echo' command\r\n",
            ),
            (
                "ECHO a b",
                "-ERR wrong number of arguments for 'echo' command\r\n",
            ),
        ],
    );
}

#[test]
fn set_get_del_exists() {
    check(
        &mut World::new(),
        &[
            ("GET k", "$-1\r\n"),
            ("SET k v", "+OK\r\n"),
            ("GET k", "$1\r\nv\r\n"),
            ("SET \"a b\" ''", "+OK\r\n"),
            ("GET \"a b\"", "$0\r\n\r\n"),
            ("SET a 1", "+OK\r\n"),
            ("EXISTS a a nokey", ":2\r\n"),
            ("DEL a k nokey a", ":2\r\n"),
            ("EXISTS a", ":0\r\n"),
            (
                "GET",
                "-ERR wrong number of arguments for 'get' command\r\n",
            ),
            (
                "GET a b",
                "-ERR wrong number of arguments for 'get' command\r\n",
            ),
            (
                "SET k",
                "-ERR wrong number of arguments for 'set' command\r\n",
            ),
            (
                "DEL",
                "-ERR wrong number of arguments for 'del' command\r\n",
            ),
            (
                "EXISTS",
                "-ERR wrong number of arguments for 'exists' command\r\n",
            ),
        ],
    );
}

#[test]
fn set_options() {
    check(
        &mut World::new(),
        &[
            ("SET k v NX", "+OK\r\n"),
            ("SET k w NX", "$-1\r\n"),
            ("SET k w XX", "+OK\r\n"),
            ("SET nokey w XX", "$-1\r\n"),
            ("SET k x GET", "$1\r\nw\r\n"),
            ("SET newkey v GET", "$-1\r\n"),
            ("SET k y NX GET", "$1\r\nx\r\n"),
            ("GET k", "$1\r\nx\r\n"),
            ("SET k v ex 10", "+OK\r\n"),
            ("SET k v EX 10 EX 20", "+OK\r\n"),
            ("SET k v PX 100", "+OK\r\n"),
            ("SET k v KEEPTTL", "+OK\r\n"),
            ("SET k v EX 922337203685477", "+OK\r\n"),
            ("SET k v NX XX", "-ERR syntax error\r\n"),
            ("SET k v EX", "-ERR syntax error\r\n"),
            ("SET k v FOO", "-ERR syntax error\r\n"),
            ("SET k v EX 10 PX 100", "-ERR syntax error\r\n"),
            ("SET k v EX 10 KEEPTTL", "-ERR syntax error\r\n"),
            ("SET k v KEEPTTL EX 10", "-ERR syntax error\r\n"),
            ("SET k v EX abc FOO", "-ERR syntax error\r\n"),
            (
                "SET k v EX abc",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "SET k v EX 0",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v EX -1",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v PX 0",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v EX 9223372036854775",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
            (
                "SET k v PX 9223372036854775807",
                "-ERR invalid expire time in 'set' command\r\n",
            ),
        ],
    );
}

#[test]
fn expiry_follows_the_command_time() {
    let mut w = World::new();
    check(
        &mut w,
        &[("SET k v PX 100", "+OK\r\n"), ("SET p v", "+OK\r\n")],
    );
    w.now += Duration::from_millis(99);
    check(&mut w, &[("GET k", "$1\r\nv\r\n"), ("DBSIZE", ":2\r\n")]);
    w.now += Duration::from_millis(1);
    check(&mut w, &[("GET k", "$-1\r\n"), ("DBSIZE", ":1\r\n")]);
    // INCR keeps the expiry time; a plain SET drops it.
    check(&mut w, &[("SET n 1 EX 1", "+OK\r\n"), ("INCR n", ":2\r\n")]);
    check(
        &mut w,
        &[("SET m 1 EX 1", "+OK\r\n"), ("SET m 2", "+OK\r\n")],
    );
    w.now += Duration::from_secs(1);
    check(&mut w, &[("GET n", "$-1\r\n"), ("GET m", "$1\r\n2\r\n")]);
    // An absolute time gone by expires the key at once.
    check(
        &mut w,
        &[("SET old v EXAT 1", "+OK\r\n"), ("GET old", "$-1\r\n")],
    );
    check(
        &mut w,
        &[("SET old v PXAT 1000", "+OK\r\n"), ("EXISTS old", ":0\r\n")],
    );
}

#[test]
fn counters() {
    check(
        &mut World::new(),
        &[
            ("INCR n", ":1\r\n"),
            ("SET n 10", "+OK\r\n"),
            ("INCR n", ":11\r\n"),
            ("DECR n", ":10\r\n"),
            ("INCRBY n 5", ":15\r\n"),
            ("INCRBY n -20", ":-5\r\n"),
            ("DECRBY n 5", ":-10\r\n"),
            ("GET n", "$3\r\n-10\r\n"),
            (
                "INCRBY n x",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "INCRBY n 9223372036854775808",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "INCRBY n",
                "-ERR wrong number of arguments for 'incrby' command\r\n",
            ),
            (
                "INCR",
                "-ERR wrong number of arguments for 'incr' command\r\n",
            ),
            (
                "DECRBY n -9223372036854775808",
                "-ERR decrement would overflow\r\n",
            ),
            ("SET s 9223372036854775807", "+OK\r\n"),
            ("INCR s", "-ERR increment or decrement would overflow\r\n"),
            ("SET s -9223372036854775808", "+OK\r\n"),
            ("DECR s", "-ERR increment or decrement would overflow\r\n"),
        ],
    );
    for bad in ["abc", "\" 1\"", "01", "+1", "-0", "1.5", "\"\""] {
        let mut w = World::new();
        assert_eq!(w.run(&format!("SET s {bad}")), "+OK\r\n");
        assert_eq!(
            w.run("INCR s"),
            "-ERR value is not an integer or out of range\r\n",
            "value {bad}"
        );
    }
}

#[test]
fn mget_mset_dbsize_flush() {
    check(
        &mut World::new(),
        &[
            ("MSET a 1 b 2 a 3", "+OK\r\n"),
            ("MGET a b c", "*3\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n"),
            ("DBSIZE", ":2\r\n"),
            (
                "MSET a",
                "-ERR wrong number of arguments for 'mset' command\r\n",
            ),
            (
                "MSET a 1 b",
                "-ERR wrong number of arguments for 'mset' command\r\n",
            ),
            (
                "MGET",
                "-ERR wrong number of arguments for 'mget' command\r\n",
            ),
            (
                "DBSIZE x",
                "-ERR wrong number of arguments for 'dbsize' command\r\n",
            ),
            ("FLUSHDB foo", "-ERR syntax error\r\n"),
            ("FLUSHALL x y", "-ERR syntax error\r\n"),
            ("FLUSHDB", "+OK\r\n"),
            ("DBSIZE", ":0\r\n"),
            ("SET a 1", "+OK\r\n"),
            ("FLUSHALL ASYNC", "+OK\r\n"),
            ("FLUSHDB sync", "+OK\r\n"),
            ("DBSIZE", ":0\r\n"),
        ],
    );
}

#[test]
fn select_has_one_database() {
    check(
        &mut World::new(),
        &[
            ("SELECT 0", "+OK\r\n"),
            ("SELECT 1", "-ERR DB index is out of range\r\n"),
            ("SELECT -1", "-ERR DB index is out of range\r\n"),
            (
                "SELECT x",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "SELECT 00",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "SELECT 4294967296",
                "-ERR value is not an integer or out of range\r\n",
            ),
            (
                "SELECT",
                "-ERR wrong number of arguments for 'select' command\r\n",
            ),
        ],
    );
}

#[test]
fn config_get() {
    check(
        &mut World::new(),
        &[
            ("CONFIG GET save", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
            (
                "CONFIG GET appendonly",
                "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
            ),
            ("config get SAVE", "*2\r\n$4\r\nSAVE\r\n$0\r\n\r\n"),
            ("CONFIG GET SAVE save", "*2\r\n$4\r\nSAVE\r\n$0\r\n\r\n"),
            ("CONFIG GET sa?e", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
            (
                "CONFIG GET databases",
                "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n",
            ),
            (
                "CONFIG GET proto-max-bulk-len",
                "*2\r\n$18\r\nproto-max-bulk-len\r\n$9\r\n536870912\r\n",
            ),
            ("CONFIG GET nosuch", "*0\r\n"),
            (
                "CONFIG GET",
                "-ERR wrong number of arguments for 'config|get' command\r\n",
            ),
            (
                "CONFIG",
                "-ERR wrong number of arguments for 'config' command\r\n",
            ),
            (
                "CONFIG FOO",
                "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n",
            ),
            (
                "config foo",
                "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n",
            ),
        ],
    );
}

#[test]
fn command_and_client() {
    let n = COMMANDS.len();
    check(
        &mut World::new(),
        &[
            ("COMMAND", "*0\r\n"),
            ("COMMAND DOCS", "*0\r\n"),
            ("COMMAND DOCS get set", "*0\r\n"),
            ("COMMAND COUNT", &format!(":{n}\r\n")),
            (
                "COMMAND COUNT x",
                "-ERR wrong number of arguments for 'command|count' command\r\n",
            ),
            (
                "COMMAND FOO",
                "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n",
            ),
            ("CLIENT GETNAME", "$-1\r\n"),
            ("CLIENT SETNAME foo", "+OK\r\n"),
            ("CLIENT GETNAME", "$3\r\nfoo\r\n"),
            (
                "CLIENT SETNAME \"a b\"",
                "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
            ),
            ("CLIENT SETNAME \"\"", "+OK\r\n"),
            ("CLIENT GETNAME", "$-1\r\n"),
            (
                "CLIENT SETNAME",
                "-ERR wrong number of arguments for 'client|setname' command\r\n",
            ),
            (
                "CLIENT GETNAME x",
                "-ERR wrong number of arguments for 'client|getname' command\r\n",
            ),
            ("CLIENT SETINFO lib-name redis-py", "+OK\r\n"),
            ("CLIENT SETINFO LIB-VER 5.0", "+OK\r\n"),
            (
                "CLIENT SETINFO color red",
                "-ERR Unrecognized option 'color'\r\n",
            ),
            (
                "CLIENT SETINFO lib-name \"a b\"",
                "-ERR lib-name cannot contain spaces, newlines or special characters.\r\n",
            ),
            (
                "CLIENT FOO",
                "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n",
            ),
            (
                "CLIENT",
                "-ERR wrong number of arguments for 'client' command\r\n",
            ),
        ],
    );
    let list = World::new().run("COMMAND LIST");
    assert!(
        list.starts_with(&format!("*{n}\r\n$4\r\nping\r\n")),
        "{list}"
    );
}

#[test]
fn quit_replies_then_closes() {
    let mut w = World::new();
    for req in ["QUIT", "quit now"] {
        assert_eq!(w.run_action(req), Action::ReplyAndClose(Reply::OK));
    }
}

#[test]
fn unknown_commands_quote_their_arguments() {
    check(
        &mut World::new(),
        &[
            (
                "FOO bar baz",
                "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' \r\n",
            ),
            (
                "FOO",
                "-ERR unknown command 'FOO', with args beginning with: \r\n",
            ),
            (
                "foo \"a\\r\\nb\"",
                "-ERR unknown command 'foo', with args beginning with: 'a  b' \r\n",
            ),
            (
                "FOO \"a\\x00b\" c",
                "-ERR unknown command 'FOO', with args beginning with: 'a' 'c' \r\n",
            ),
        ],
    );
    // 128 bytes of arguments at most, then the list stops.
    let long = "x".repeat(200);
    let reply = World::new().run(&format!("{long} {long} more"));
    let want = format!(
        "-ERR unknown command '{}', with args beginning with: '{}' \r\n",
        "x".repeat(128),
        "x".repeat(128)
    );
    assert_eq!(reply, want);
    let reply = World::new().run(&format!("FOO {} {} z", "a".repeat(100), "b".repeat(100)));
    let want = format!(
        "-ERR unknown command 'FOO', with args beginning with: '{}' '{}' \r\n",
        "a".repeat(100),
        "b".repeat(25)
    );
    assert_eq!(reply, want);
}
