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
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
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

/// The room as every handler holds it.
type SharedRoom = Rc<RefCell<Room>>;

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

/// Sends `line` to every user but `except`; closes the users it takes past the hard
/// limit (a notice about each follows at the end of the pass).
fn broadcast(room: &SharedRoom, map: &mut SocketMap, except: ChannelId, line: &Bytes) {
    let mut behind = Vec::new();
    {
        let r = room.borrow();
        let hard = r.max_queued.saturating_mul(HARD_FACTOR);
        for &id in r.names.keys().filter(|&&id| id != except) {
            match push_to(map, id, line.clone()) {
                Ok(queued) if queued > hard => behind.push(id),
                // NotFound: the running user (the caller pushes to it).
                Ok(_) | Err(ChatError::Closing | ChatError::Unavailable(_)) => {}
                Err(e) => log::debug!("broadcast to {id} failed: {e}"),
            }
        }
    }
    for id in behind {
        drop_behind(room, map, id);
    }
}

/// Queues a notice about user `about` for every other user, to go out at the end of the
/// pass with the other notices of the pass.
fn announce(room: &SharedRoom, map: &mut SocketMap, about: ChannelId, line: Bytes) {
    let mut r = room.borrow_mut();
    r.notices.push((about, line));
    if !r.flush_due {
        r.flush_due = true;
        let room = room.clone();
        map.call_later(Duration::ZERO, move |map| flush_notices(&room, map));
    }
}

/// Sends the notices of the pass: to each user, in one push, those not about itself.
fn flush_notices(room: &SharedRoom, map: &mut SocketMap) {
    let hard = room.borrow().max_queued.saturating_mul(HARD_FACTOR);
    // Closing a user here announces it: go round until no notice is left.
    loop {
        let (notices, fresh) = {
            let mut r = room.borrow_mut();
            r.flush_due = false;
            (std::mem::take(&mut r.notices), std::mem::take(&mut r.fresh))
        };
        if notices.is_empty() {
            return;
        }
        let everyone = concat(notices.iter().map(|(_, line)| line));
        let ids: Vec<User> = room.borrow().names.keys().copied().collect();
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
fn drop_behind(room: &SharedRoom, map: &mut SocketMap, id: User) {
    let Some(name) = room.borrow_mut().names.remove(&id) else {
        return;
    };
    room.borrow_mut().over.remove(&id);
    log::info!("{name}: too far behind, closing");
    if let Err(e) = map.close(id) {
        log::debug!("closing {name}: {e}");
    }
    announce(
        room,
        map,
        id.id(),
        Bytes::from(format!("* {name} left (too far behind)\n")),
    );
}

/// Every [`BEHIND_CHECK`]: closes the users that had more than `max_queued` bytes waiting
/// at this check and at the one before.
fn check_behind(room: &SharedRoom, map: &mut SocketMap) {
    let max = room.borrow().max_queued;
    let ids: Vec<User> = room.borrow().names.keys().copied().collect();
    for id in ids {
        let over = queued(map, id).is_some_and(|q| q > max);
        let was_over = room.borrow().over.contains(&id);
        match (over, was_over) {
            (true, true) => drop_behind(room, map, id),
            (true, false) => {
                room.borrow_mut().over.insert(id);
            }
            (false, _) => {
                room.borrow_mut().over.remove(&id);
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

/// The listening channel's handler: each connection becomes a [`ChatUser`].
#[derive(Debug)]
pub struct ChatServer {
    room: SharedRoom,
    settings: Settings,
}

impl ChatServer {
    /// A server with an empty room.
    pub fn new(settings: Settings) -> ChatServer {
        let room = Room {
            max_queued: settings.max_queued,
            ..Room::default()
        };
        ChatServer {
            room: Rc::new(RefCell::new(room)),
            settings,
        }
    }
}

impl Dispatcher for ChatServer {
    /// The check of the users' queues starts with the server.
    fn handle_added(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let room = self.room.clone();
        ctx.map()
            .schedule(Instant::now() + BEHIND_CHECK, move |map| {
                check_behind(&room, map);
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
        let name = {
            let mut room = self.room.borrow_mut();
            room.next_guest += 1;
            format!("guest{}", room.next_guest)
        };
        let mut chat = AsyncChat::with_terminator(
            ChatUser {
                room: self.room.clone(),
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
    room: SharedRoom,
    name: String,
    max_line: usize,
}

impl ChatUser {
    fn command(&mut self, chat: &mut ChatContext<'_, '_>, line: &str) -> Result<(), ChatError> {
        let (cmd, arg) = match line.split_once(' ') {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        let me = chat.id();
        match cmd {
            "/nick" => {
                if arg.is_empty() || arg.contains(char::is_whitespace) {
                    return chat.push("* error: usage: /nick NAME\n");
                }
                if arg.len() > MAX_NICK {
                    return chat.push("* error: name too long\n");
                }
                if arg == self.name {
                    return chat.push(format!("* you are {arg}\n"));
                }
                if self.room.borrow().taken(arg) {
                    return chat.push("* error: name taken\n");
                }
                let old = std::mem::replace(&mut self.name, arg.to_string());
                if let Some(name) = self.room.borrow_mut().names.get_mut(&me) {
                    name.clone_from(&self.name);
                }
                chat.set_tag(&self.name);
                chat.push(format!("* you are {}\n", self.name))?;
                let note = Bytes::from(format!("* {old} is now {}\n", self.name));
                announce(&self.room, chat.map(), me, note);
                Ok(())
            }
            "/who" => {
                let users = self.room.borrow().users().join(", ");
                chat.push(format!("* users: {users}\n"))
            }
            "/quit" => {
                chat.push("* bye\n")?;
                chat.close_when_done();
                Ok(())
            }
            other => chat.push(format!("* error: unknown command {other}\n")),
        }
    }

    /// Leaves the room once, telling the others.
    fn leave(&mut self, map: &mut SocketMap, me: ChannelId) {
        let removed = self.room.borrow_mut().names.remove(&me);
        if removed.is_some() {
            self.room.borrow_mut().over.remove(&me);
            let note = Bytes::from(format!("* {} left\n", self.name));
            announce(&self.room, map, me, note);
        }
    }
}

impl ChatHandler for ChatUser {
    /// Joins the room as the channel joins the map: the welcome, then the others told.
    fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let me: User = chat.handle::<ChatUser>()?;
        {
            let mut room = self.room.borrow_mut();
            room.names.insert(me, self.name.clone());
            let since = room.notices.len();
            room.fresh.insert(me.id(), since);
        }
        chat.push(format!("* welcome {}\n", self.name))?;
        let note = Bytes::from(format!("* {} joined\n", self.name));
        announce(&self.room, chat.map(), me.id(), note);
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
        broadcast(&self.room, chat.map(), me, &Bytes::from(msg));
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
