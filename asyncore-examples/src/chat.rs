//! The chat server's protocol: a multi-user line chat on `async_chat`.
//!
//! ```text
//! on connect        -> "* welcome guestN\n" to the newcomer, "* guestN joined\n" to the others
//! TEXT              -> "NAME: TEXT\n" to every other user (a '\r' before '\n' is dropped)
//! /nick NEW         -> "* you are NEW\n", others "* OLD is now NEW\n"
//!                      ("* error: name taken\n" when another user has it)
//! /who              -> "* users: A, B, C\n" (sorted)
//! /quit             -> "* bye\n", then close; others "* NAME left\n" (also on disconnect)
//! a line over the cap -> "* error: line too long\n", then close
//! a user too far behind -> closed; others "* NAME left (too far behind)\n"
//! ```
//! Empty lines are ignored; an unknown `/command` gets `* error: unknown command /X\n`.
//!
//! A user that does not read what the others say is "too far behind" once more than
//! [`Settings::max_queued`] bytes wait for it: the line that takes it past that closes it,
//! so that one stalled reader cannot grow the server's memory without bound (IRC's
//! "SendQ exceeded").

use asyncore_chat::{push_to, AsyncChat, ChatContext, ChatError, ChatHandler, Terminator};
use asyncore_core::{
    BoxError, Channel, ChannelId, Context, Dispatcher, HandlerResult, SockAddr, Socket,
};
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

/// The longest line by default, in bytes (without its `\n`).
pub const DEFAULT_MAX_LINE: usize = 4096;

/// The most output that may wait for one user by default: 1 MiB.
pub const DEFAULT_MAX_QUEUED: usize = 1024 * 1024;

/// Who is in the room, shared by every user's handler on the loop's thread.
#[derive(Debug, Default)]
pub struct Room {
    names: BTreeMap<ChannelId, String>,
    next_guest: u64,
    max_queued: usize,
}

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

    /// Sends `line` to every user but `except`, and returns those it leaves too far
    /// behind (more than `max_queued` bytes waiting). Users that are closing are skipped.
    fn broadcast(
        &self,
        map: &mut asyncore_core::SocketMap,
        except: ChannelId,
        line: &Bytes,
    ) -> Vec<ChannelId> {
        let mut behind = Vec::new();
        for &id in self.names.keys().filter(|&&id| id != except) {
            match push_to::<ChatUser>(map, id, line.clone()) {
                Ok(queued) if queued > self.max_queued => behind.push(id),
                // NotFound: the running user (the caller pushes to it).
                Ok(_) | Err(ChatError::Closing | ChatError::NotFound(_)) => {}
                Err(e) => log::debug!("broadcast to {id} failed: {e}"),
            }
        }
        behind
    }
}

/// Sends `line` to every user of `room` but `except`, and closes the users it leaves too
/// far behind (telling the others, which may leave more behind: each is closed once).
/// Returns those notices: the map cannot reach a user whose handler is running (the
/// sender, when it is a user), so the caller pushes them to it.
fn tell_others(
    room: &RefCell<Room>,
    map: &mut asyncore_core::SocketMap,
    except: ChannelId,
    line: Bytes,
) -> Vec<Bytes> {
    let mut notices = Vec::new();
    let mut lines = vec![(except, line)];
    while let Some((except, line)) = lines.pop() {
        let behind = room.borrow().broadcast(map, except, &line);
        for id in behind {
            let Some(name) = room.borrow_mut().names.remove(&id) else {
                continue;
            };
            log::info!("{name}: too far behind, closing");
            if let Err(e) = map.close(id) {
                log::debug!("closing {name}: {e}");
            }
            let notice = Bytes::from(format!("* {name} left (too far behind)\n"));
            notices.push(notice.clone());
            lines.push((id, notice));
        }
    }
    notices
}

/// The settings every connection shares.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The longest line accepted, without its `\n` (and `\r`).
    pub max_line: usize,
    /// Close a user after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// Close a user once more than this many bytes wait for it (it does not read).
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
    room: Rc<RefCell<Room>>,
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
        let room = self.room.clone();
        room.borrow_mut().names.insert(id, name.clone());
        push_to::<ChatUser>(ctx.map(), id, format!("* welcome {name}\n"))?;
        tell_others(
            &room,
            ctx.map(),
            id,
            Bytes::from(format!("* {name} joined\n")),
        );
        Ok(())
    }
}

/// One connected user.
#[derive(Debug)]
pub struct ChatUser {
    room: Rc<RefCell<Room>>,
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
                if arg == self.name {
                    return chat.push(format!("* you are {arg}\n"));
                }
                if self.room.borrow().taken(arg) {
                    return chat.push("* error: name taken\n");
                }
                let old = std::mem::replace(&mut self.name, arg.to_string());
                self.room.borrow_mut().names.insert(me, self.name.clone());
                chat.channel_mut().set_tag(&self.name);
                chat.push(format!("* you are {}\n", self.name))?;
                let note = Bytes::from(format!("* {old} is now {}\n", self.name));
                for notice in tell_others(&self.room, chat.map(), me, note) {
                    chat.push(notice)?;
                }
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
    fn leave(&mut self, map: &mut asyncore_core::SocketMap, me: ChannelId) {
        let removed = self.room.borrow_mut().names.remove(&me);
        if removed.is_some() {
            let note = Bytes::from(format!("* {} left\n", self.name));
            tell_others(&self.room, map, me, note);
        }
    }
}

impl ChatHandler for ChatUser {
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
        for notice in tell_others(&self.room, chat.map(), me, Bytes::from(msg)) {
            chat.push(notice)?;
        }
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
