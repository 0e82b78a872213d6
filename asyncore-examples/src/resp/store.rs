//! The key space: string values with optional expiry times.
//!
//! Expired keys are removed by [`Store::expire_due`], which the command layer calls before
//! every command with the command's time; so no command ever sees an expired key, and
//! `DBSIZE` counts live keys only. Deadlines are kept in an ordered set beside the map, so
//! removing the due keys costs in proportion to them, not to the whole key space.

use bytes::Bytes;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// What a write does to the key's expiry time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No expiry time (a plain `SET`, `MSET`).
    Clear,
    /// Keep the key's expiry time, if it has one (`INCR`, `SET ... KEEPTTL`).
    Keep,
    /// Expire at this instant.
    At(Instant),
}

#[derive(Debug)]
struct Entry {
    value: Bytes,
    expires: Option<Instant>,
}

/// A key space of string values, one per server (shared by its connections).
///
/// ```
/// use asyncore_examples::resp::{Expiry, Store};
/// use bytes::Bytes;
/// use std::time::{Duration, Instant};
///
/// let mut store = Store::new();
/// let now = Instant::now();
/// store.set(b"k", Bytes::from("v"), Expiry::At(now + Duration::from_secs(1)));
/// assert_eq!(store.get(b"k").map(|v| &v[..]), Some(&b"v"[..]));
/// store.expire_due(now + Duration::from_secs(1));
/// assert!(store.get(b"k").is_none());
/// assert_eq!(store.len(), 0);
/// ```
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Bytes, Entry>,
    deadlines: BTreeSet<(Instant, Bytes)>,
}

impl Store {
    /// An empty key space.
    pub fn new() -> Store {
        Store::default()
    }

    /// Removes every key whose expiry time is `now` or earlier.
    pub fn expire_due(&mut self, now: Instant) {
        while let Some((when, _)) = self.deadlines.first() {
            if *when > now {
                break;
            }
            if let Some((_, key)) = self.deadlines.pop_first() {
                self.map.remove(&key);
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.map.get(key).map(|e| &e.value)
    }

    /// Whether `key` exists.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// Sets `key` to `value`, with `expiry` deciding its expiry time. Returns the old value.
    ///
    /// The value is kept as given: a small slice of a large buffer keeps all of that
    /// buffer alive (make values with [`Exec::value`](super::Exec::value), which copies
    /// them out unless they are most of their buffer).
    pub fn set(&mut self, key: &[u8], value: Bytes, expiry: Expiry) -> Option<Bytes> {
        let new_deadline = |old: Option<Instant>| match expiry {
            Expiry::Clear => None,
            Expiry::Keep => old,
            Expiry::At(when) => Some(when),
        };
        // The common case, an existing key whose deadline does not change: one lookup.
        if let Some(entry) = self.map.get_mut(key) {
            let old_deadline = entry.expires;
            let expires = new_deadline(old_deadline);
            entry.expires = expires;
            let previous = std::mem::replace(&mut entry.value, value);
            if old_deadline != expires {
                // The key as stored, for the deadline index.
                if let Some((stored, _)) = self.map.get_key_value(key) {
                    let stored = stored.clone();
                    if let Some(when) = old_deadline {
                        self.deadlines.remove(&(when, stored.clone()));
                    }
                    if let Some(when) = expires {
                        self.deadlines.insert((when, stored));
                    }
                }
            }
            return Some(previous);
        }
        // A new key: its own small buffer, never a slice of a request.
        let stored = Bytes::copy_from_slice(key);
        let expires = new_deadline(None);
        if let Some(when) = expires {
            self.deadlines.insert((when, stored.clone()));
        }
        self.map.insert(stored, Entry { value, expires });
        None
    }

    /// Removes `key`; returns whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove_entry(key) {
            Some((key, entry)) => {
                if let Some(when) = entry.expires {
                    self.deadlines.remove(&(when, key));
                }
                true
            }
            None => false,
        }
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.map = HashMap::new();
        self.deadlines = BTreeSet::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn set_get_remove_len() {
        let mut s = Store::new();
        assert!(s.is_empty());
        assert_eq!(s.set(b"a", b("1"), Expiry::Clear), None);
        assert_eq!(s.set(b"a", b("2"), Expiry::Clear), Some(b("1")));
        assert_eq!(s.get(b"a"), Some(&b("2")));
        assert!(s.contains(b"a"));
        assert_eq!(s.len(), 1);
        assert!(s.remove(b"a"));
        assert!(!s.remove(b"a"));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn keys_expire_at_their_deadline_and_not_before() {
        let mut s = Store::new();
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(100);
        s.set(b"k", b("v"), Expiry::At(later));
        s.set(b"forever", b("v"), Expiry::Clear);
        s.expire_due(later - Duration::from_millis(1));
        assert!(s.contains(b"k"));
        s.expire_due(later);
        assert!(!s.contains(b"k"));
        assert!(s.contains(b"forever"));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn plain_set_clears_expiry_and_keep_keeps_it() {
        let mut s = Store::new();
        let t0 = Instant::now();
        let at = t0 + Duration::from_secs(1);
        s.set(b"k", b("v"), Expiry::At(at));
        s.set(b"k", b("w"), Expiry::Keep);
        s.expire_due(at);
        assert!(!s.contains(b"k"), "Keep kept the deadline");

        s.set(b"k", b("v"), Expiry::At(at));
        s.set(b"k", b("w"), Expiry::Clear);
        s.expire_due(at + Duration::from_secs(1));
        assert_eq!(s.get(b"k"), Some(&b("w")), "Clear removed the deadline");
        assert!(s.deadlines.is_empty());
    }

    #[test]
    fn resetting_a_deadline_leaves_one_entry() {
        let mut s = Store::new();
        let t0 = Instant::now();
        for i in 1..100u64 {
            s.set(b"k", b("v"), Expiry::At(t0 + Duration::from_secs(i)));
        }
        assert_eq!(s.deadlines.len(), 1);
        s.remove(b"k");
        assert!(s.deadlines.is_empty());
    }

    #[test]
    fn clear_empties_everything() {
        let mut s = Store::new();
        s.set(b"a", b("1"), Expiry::At(Instant::now()));
        s.set(b"b", b("1"), Expiry::Clear);
        s.clear();
        assert_eq!(s.len(), 0);
        assert!(s.deadlines.is_empty());
    }
}
