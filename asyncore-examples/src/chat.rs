//! The chat server's protocol: a multi-user line chat on `async_chat`.
//!
//! ```text
//! on connect        -> "* welcome guestN\n" to the newcomer, "* guestN joined\n" to the others
//! TEXT              -> "NAME: TEXT\n" to every other user (a '\r' before '\n' is dropped)
//! /nick NEW         -> "* you are NEW\n", others "* OLD is now NEW\n"
//!                      ("* error: name taken\n" when another user has it,
//!                       "* error: name too long\n" past 32 bytes)
//! /who              -> "* users: A, B, C\n" (sorted)
//! /quit             -> "* bye\n", then close; others "* NAME left\n" (also on disconnect)
//! a line over the cap -> "* error: line too long\n", then close
//! a user too far behind -> closed; others "* NAME left (too far behind)\n"
//! ```
//! Empty lines are ignored; an unknown `/command` gets `* error: unknown command /X\n`.
//!
//! Notices (joins, leaves, renames) are sent at the end of the loop's pass, all those of
//! one pass in one push per user: a flood of joins costs a push per user per pass, not
//! per join.
//!
//! A user that does not read what the others say is "too far behind" once more than
//! [`Settings::max_queued`] bytes have waited for it at two checks a second apart (the
//! kernel took too little of them meanwhile), or at once when 16 times that wait: so
//! one stalled reader cannot grow the server's memory without bound (IRC's "SendQ
//! exceeded"), and a burst that a reading user takes within the second does not close
//! it.

use asyncore_chat::{
    push_to, AsyncChat, ChatContext, ChatError, ChatHandle, ChatHandler, Terminator,
};
use asyncore_core::{
    BoxError, Channel, ChannelId, Context, Dispatcher, HandlerResult, SockAddr, Socket, SocketMap,
    TimerAction,
};
use bytes::{Bytes, BytesMut};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// The longest line by default, in bytes (without its `\n`).
pub const DEFAULT_MAX_LINE: usize = 4096;

/// The most output that may wait for one user by default: 1 MiB.
pub const DEFAULT_MAX_QUEUED: usize = 1024 * 1024;

/// The longest name, in bytes.
pub const MAX_NICK: usize = 32;

/// How often the users' queues are checked against [`Settings::max_queued`].
const BEHIND_CHECK: Duration = Duration::from_secs(1);

/// Output waiting for one user past this many times [`Settings::max_queued`] closes it
/// at once, without waiting for the next check.
const HARD_FACTOR: usize = 16;

/// Who is in the room, shared by every user's handler on the loop's thread.
#[derive(Debug, Default)]
pub struct Room {
    names: BTreeMap<User, String>,
    next_guest: u64,
    max_queued: usize,
    /// The notices of this pass, each with the user it is about (who does not get it).
    notices: Vec<(ChannelId, Bytes)>,
    /// The users that joined during this pass, each with the number of `notices` there
    /// were when it joined: it hears only of what came after.
    fresh: BTreeMap<ChannelId, usize>,
    /// A flush of `notices` is scheduled for the end of the pass.
    flush_due: bool,
    /// The users that had more than `max_queued` bytes waiting at the last check.
    over: BTreeSet<User>,
}

/// A user's channel.
type User = ChatHandle<ChatUser>;

impl Room {
    fn taken(&self, name: &str) -> bool {
        self.names.values().any(|n| n == name)
    }

    /// The users' names, sorted.
    pub fn users(&self) -> Vec<String> {
        let mut names: Vec<String> = self.names.values().cloned().collect();
        names.sort();
        names
    }
}

/// The bytes waiting for user `id`, or `None` for a user no longer in the map.
fn queued(map: &mut SocketMap, id: User) -> Option<usize> {
    let (chat, chan) = map.get_mut(id).ok()?;
    Some(chat.queued_output(chan))
}

/// Runs `f` with the room and the map together. The room is the map's data (see
/// [`SocketMap::with_data`]), put there when the server joins the map.
fn in_room<R>(
    map: &mut SocketMap,
    f: impl FnOnce(&mut Room, &mut SocketMap) -> R,
) -> Result<R, NoRoom> {
    map.with_data(f).ok_or(NoRoom)
}

/// A user's channel in a map without a room: only when a `ChatUser` is used without its
/// [`ChatServer`].
#[derive(Debug)]
pub struct NoRoom;

impl std::fmt::Display for NoRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the map holds no chat room (a ChatServer puts it there)")
    }
}

impl std::error::Error for NoRoom {}

/// Sends `line` to every user but `except`; closes the users it takes past the hard
/// limit (a notice about each follows at the end of the pass).
fn broadcast(room: &mut Room, map: &mut SocketMap, except: ChannelId, line: &Bytes) {
    let hard = room.max_queued.saturating_mul(HARD_FACTOR);
    let mut behind = Vec::new();
    for &id in room.names.keys().filter(|&&id| id != except) {
        match push_to(map, id, line.clone()) {
            Ok(queued) if queued > hard => behind.push(id),
            // Unavailable: the running user (the caller pushes to it).
            Ok(_) | Err(ChatError::Closing | ChatError::Unavailable(_)) => {}
            Err(e) => log::debug!("broadcast to {id} failed: {e}"),
        }
    }
    for id in behind {
        drop_behind(room, map, id);
    }
}

/// Queues a notice about user `about` for every other user, to go out at the end of the
/// pass with the other notices of the pass.
fn announce(room: &mut Room, map: &mut SocketMap, about: ChannelId, line: Bytes) {
    room.notices.push((about, line));
    if !room.flush_due {
        room.flush_due = true;
        map.call_later(Duration::ZERO, |map| {
            let _ = in_room(map, flush_notices);
        });
    }
}

/// Sends the notices of the pass: to each user, in one push, those not about itself.
fn flush_notices(room: &mut Room, map: &mut SocketMap) {
    let hard = room.max_queued.saturating_mul(HARD_FACTOR);
    // Closing a user here announces it: go round until no notice is left.
    loop {
        room.flush_due = false;
        let notices = std::mem::take(&mut room.notices);
        let fresh = std::mem::take(&mut room.fresh);
        if notices.is_empty() {
            return;
        }
        let everyone = concat(notices.iter().map(|(_, line)| line));
        let ids: Vec<User> = room.names.keys().copied().collect();
        for id in ids {
            // Most users get every notice, as one shared buffer; a user who joined during
            // the pass gets those after its join, and a user a notice is about does not
            // get that one.
            let since = fresh.get(&id.id()).copied().unwrap_or(0);
            let data = if since > 0 || notices.iter().any(|(about, _)| *about == id) {
                let mine = notices[since..].iter().filter(|(a, _)| *a != id);
                concat(mine.map(|(_, line)| line))
            } else {
                everyone.clone()
            };
            if data.is_empty() {
                continue;
            }
            match push_to(map, id, data) {
                Ok(queued) if queued > hard => drop_behind(room, map, id),
                Ok(_) | Err(ChatError::Closing | ChatError::Unavailable(_)) => {}
                Err(e) => log::debug!("notice to {id} failed: {e}"),
            }
        }
    }
}

fn concat<'a>(lines: impl Iterator<Item = &'a Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    for line in lines {
        out.extend_from_slice(line);
    }
    out.freeze()
}

/// Closes user `id`, too far behind, and tells the others.
fn drop_behind(room: &mut Room, map: &mut SocketMap, id: User) {
    let Some(name) = room.names.remove(&id) else {
        return;
    };
    room.over.remove(&id);
    log::info!("{name}: too far behind, closing");
    if let Err(e) = map.close(id) {
        log::debug!("closing {name}: {e}");
    }
    let note = Bytes::from(format!("* {name} left (too far behind)\n"));
    announce(room, map, id.id(), note);
}

/// Every [`BEHIND_CHECK`]: closes the users that had more than `max_queued` bytes waiting
/// at this check and at the one before.
fn check_behind(room: &mut Room, map: &mut SocketMap) {
    let max = room.max_queued;
    let ids: Vec<User> = room.names.keys().copied().collect();
    for id in ids {
        let over = queued(map, id).is_some_and(|q| q > max);
        match (over, room.over.contains(&id)) {
            (true, true) => drop_behind(room, map, id),
            (true, false) => {
                room.over.insert(id);
            }
            (false, _) => {
                room.over.remove(&id);
            }
        }
    }
}

/// The settings every connection shares.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The longest line accepted, without its `\n` (and `\r`).
    pub max_line: usize,
    /// Close a user after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// Close a user once more than this many bytes have waited for it for a second (or
    /// 16 times this at once): it does not read.
    pub max_queued: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_line: DEFAULT_MAX_LINE,
            idle_timeout: None,
            max_queued: DEFAULT_MAX_QUEUED,
        }
    }
}

/// The listening channel's handler: each connection becomes a [`ChatUser`]. The room
/// they share is the map's data ([`SocketMap::data_mut`]), put there as the server joins
/// the map: every callback reaches it through the map, with no `Rc<RefCell<..>>`.
#[derive(Debug)]
pub struct ChatServer {
    settings: Settings,
    tls: Option<crate::tls::ServerTls>,
}

impl ChatServer {
    /// A server; its room is made as it joins the map.
    pub fn new(settings: Settings) -> ChatServer {
        ChatServer {
            settings,
            tls: None,
        }
    }

    /// Speaks TLS on every connection it accepts (`--tls-cert`/`--tls-key`).
    pub fn with_tls(mut self, tls: Option<crate::tls::ServerTls>) -> ChatServer {
        self.tls = tls;
        self
    }
}

impl Dispatcher for ChatServer {
    /// The room joins the map with the server, and the check of the users' queues starts.
    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let room = Room {
            max_queued: self.settings.max_queued,
            ..Room::default()
        };
        ctx.map().insert_data(room);
        ctx.map()
            .schedule(Instant::now() + BEHIND_CHECK, move |map| {
                let _ = in_room(map, check_behind);
                TimerAction::Again(BEHIND_CHECK)
            });
        Ok(())
    }

    /// Accepts every connection waiting (up to 64 per event): a flood of them is taken in
    /// as fast as they come, and their notices go out together.
    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        for _ in 0..64 {
            let Some((sock, addr)) = ctx.accept()? else {
                break;
            };
            if let Err(e) = self.handle_accepted(ctx, sock, addr) {
                log::warn!("dropped a connection: {e}");
            }
        }
        Ok(())
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        let name = in_room(ctx.map(), |room, _| {
            room.next_guest += 1;
            format!("guest{}", room.next_guest)
        })?;
        let mut chat = AsyncChat::with_terminator(
            ChatUser {
                name: name.clone(),
                max_line: self.settings.max_line,
            },
            Terminator::LF,
        );
        // One byte of slack for the '\r' that may stand before the '\n'.
        chat.set_max_input(Some(self.settings.max_line + 1));
        let mut chan = Channel::from_socket(sock)?;
        chan.set_nodelay(true)?;
        chan.set_tag(&name);
        crate::tls::accept(&mut chan, self.tls.as_ref())?;
        let id = ctx.insert(chan, chat)?;
        if let Some(period) = self.settings.idle_timeout {
            ctx.map().set_idle_timeout(id, Some(period))?;
        }
        Ok(())
    }
}

/// One connected user.
#[derive(Debug)]
pub struct ChatUser {
    name: String,
    max_line: usize,
}

impl ChatUser {
    fn command(&mut self, chat: &mut ChatContext<'_, '_>, line: &str) -> HandlerResult {
        let (cmd, arg) = match line.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        let me = chat.id();
        match cmd {
            "/nick" => {
                if arg.is_empty() || arg.contains(char::is_whitespace) {
                    chat.push("* error: usage: /nick NAME\n")?;
                } else if arg.len() > MAX_NICK {
                    chat.push("* error: name too long\n")?;
                } else if arg == self.name {
                    chat.push(format!("* you are {arg}\n"))?;
                } else if in_room(chat.map(), |room, _| room.taken(arg))? {
                    chat.push("* error: name taken\n")?;
                } else {
                    let old = std::mem::replace(&mut self.name, arg.to_string());
                    chat.set_tag(&self.name);
                    chat.push(format!("* you are {}\n", self.name))?;
                    let note = Bytes::from(format!("* {old} is now {}\n", self.name));
                    let name = &self.name;
                    in_room(chat.map(), |room, map| {
                        if let Some(n) = room.names.get_mut(&me) {
                            n.clone_from(name);
                        }
                        announce(room, map, me, note);
                    })?;
                }
            }
            "/who" => {
                let users = in_room(chat.map(), |room, _| room.users().join(", "))?;
                chat.push(format!("* users: {users}\n"))?;
            }
            "/quit" => {
                chat.push("* bye\n")?;
                chat.close_when_done();
            }
            other => chat.push(format!("* error: unknown command {other}\n"))?,
        }
        Ok(())
    }

    /// Leaves the room once, telling the others.
    fn leave(&mut self, map: &mut SocketMap, me: ChannelId) {
        let note = Bytes::from(format!("* {} left\n", self.name));
        let _ = in_room(map, |room, map| {
            if room.names.remove(&me).is_some() {
                room.over.remove(&me);
                announce(room, map, me, note);
            }
        });
    }
}

impl ChatHandler for ChatUser {
    /// Joins the room as the channel joins the map: the welcome, then the others told.
    fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let me: User = chat.handle::<ChatUser>()?;
        chat.push(format!("* welcome {}\n", self.name))?;
        let note = Bytes::from(format!("* {} joined\n", self.name));
        let name = self.name.clone();
        in_room(chat.map(), |room, map| {
            room.names.insert(me, name);
            // It hears of what happens from now on, not of the joins before its own.
            room.fresh.insert(me.id(), room.notices.len());
            announce(room, map, me.id(), note);
        })?;
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let data = chat.take_data();
        let line = data.strip_suffix(b"\r").unwrap_or(&data);
        if line.len() > self.max_line {
            return Err(ChatError::InputLimit {
                len: line.len(),
                limit: self.max_line,
            }
            .into());
        }
        if line.is_empty() {
            return Ok(());
        }
        if line.starts_with(b"/") {
            let text = String::from_utf8_lossy(line).into_owned();
            self.command(chat, &text)?;
            return Ok(());
        }
        let mut msg = Vec::with_capacity(self.name.len() + 3 + line.len());
        msg.extend_from_slice(self.name.as_bytes());
        msg.extend_from_slice(b": ");
        msg.extend_from_slice(line);
        msg.push(b'\n');
        let me = chat.id();
        let msg = Bytes::from(msg);
        in_room(chat.map(), |room, map| broadcast(room, map, me, &msg))?;
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let me = chat.id();
        self.leave(chat.map(), me);
        chat.close()?;
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        if matches!(
            err.downcast_ref::<ChatError>(),
            Some(ChatError::InputLimit { .. })
        ) {
            log::info!("{}: line too long, closing", self.name);
            // The framer kept nothing of the line; say why and close once that is sent.
            chat.push("* error: line too long\n")?;
            chat.close_when_done();
            return Ok(());
        }
        log::warn!("{}: {err}; closing", self.name);
        self.handle_close(chat)
    }
}
