//! A generational slab: the storage of the socket map's channels and of the timer queue.
//!
//! A [`Key`] names a slot and the generation of the value in it. Removing a value bumps
//! the slot's generation, so a key kept after its value went never reaches the value that
//! later reuses the slot (calloop's `list.rs` does the same for its sources). A slot whose
//! generation reaches `u32::MAX` is retired instead of wrapping around: an old key can
//! never match again, at the cost of one slot per four billion reuses.
//!
//! A value can be taken out while its slot stays reserved ([`Slab::take`]), and put back
//! under the same key ([`Slab::restore`]): a timer that fires and asks to fire again keeps
//! its id.

use std::fmt;

/// The name of a value in a [`Slab`]: its slot and the slot's generation when it was put.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.index, self.generation)
    }
}

enum State<T> {
    /// On the free list (or retired).
    Vacant,
    /// Holds a value.
    Occupied(T),
    /// Its value was taken out with `take` and may come back with `restore`.
    Reserved,
}

struct Slot<T> {
    generation: u32,
    state: State<T>,
}

/// Values under generation-checked keys; see the module docs.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Occupied slots (reserved ones do not count).
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// How many values the slab holds.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key the next [`insert`](Self::insert) will use, so that a value can carry its
    /// own key. `None` when the slab is full (`u32::MAX` slots).
    pub(crate) fn next_key(&self) -> Option<Key> {
        match self.free.last() {
            Some(&index) => Some(Key {
                index,
                generation: self.slots[index as usize].generation,
            }),
            None => Some(Key {
                index: u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i < u32::MAX)?,
                generation: 1,
            }),
        }
    }

    /// Puts `value` in a free slot and returns its key; `None` (and `value` back) when the
    /// slab is full.
    pub(crate) fn insert(&mut self, value: T) -> Result<Key, T> {
        let Some(key) = self.next_key() else {
            return Err(value);
        };
        if self.free.last() == Some(&key.index) {
            self.free.pop();
        } else {
            self.slots.push(Slot {
                generation: key.generation,
                state: State::Vacant,
            });
        }
        self.slots[key.index as usize].state = State::Occupied(value);
        self.len += 1;
        Ok(key)
    }

    fn slot(&self, key: Key) -> Option<&Slot<T>> {
        self.slots
            .get(key.index as usize)
            .filter(|s| s.generation == key.generation)
    }

    fn slot_mut(&mut self, key: Key) -> Option<&mut Slot<T>> {
        self.slots
            .get_mut(key.index as usize)
            .filter(|s| s.generation == key.generation)
    }

    /// The value under `key`, unless it was removed or taken.
    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match &self.slot(key)?.state {
            State::Occupied(v) => Some(v),
            _ => None,
        }
    }

    /// The value under `key`, mutably.
    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match &mut self.slot_mut(key)?.state {
            State::Occupied(v) => Some(v),
            _ => None,
        }
    }

    /// The value in slot `index` and its key, whatever its generation (for a token that
    /// carries the index only).
    pub(crate) fn get_at_mut(&mut self, index: u32) -> Option<(Key, &mut T)> {
        let slot = self.slots.get_mut(index as usize)?;
        let key = Key {
            index,
            generation: slot.generation,
        };
        match &mut slot.state {
            State::Occupied(v) => Some((key, v)),
            _ => None,
        }
    }

    /// Removes the value under `key` and frees its slot for a later generation.
    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slot_mut(key)?;
        let State::Occupied(value) = std::mem::replace(&mut slot.state, State::Vacant) else {
            // Not occupied: leave a reserved slot reserved, a vacant one vacant.
            return None;
        };
        self.len -= 1;
        self.free_slot(key);
        Some(value)
    }

    /// Takes the value under `key` out, keeping its slot reserved for
    /// [`restore`](Self::restore) or [`release`](Self::release).
    pub(crate) fn take(&mut self, key: Key) -> Option<T> {
        let slot = self.slot_mut(key)?;
        let State::Occupied(value) = std::mem::replace(&mut slot.state, State::Reserved) else {
            return None;
        };
        self.len -= 1;
        Some(value)
    }

    /// Puts a taken value back under its key. `false` (and nothing changes) when the slot
    /// is not reserved under that key.
    pub(crate) fn restore(&mut self, key: Key, value: T) -> bool {
        let Some(slot) = self.slot_mut(key) else {
            return false;
        };
        if !matches!(slot.state, State::Reserved) {
            return false;
        }
        slot.state = State::Occupied(value);
        self.len += 1;
        true
    }

    /// Frees a reserved slot whose value is not coming back.
    pub(crate) fn release(&mut self, key: Key) {
        if let Some(slot) = self.slot_mut(key) {
            if matches!(slot.state, State::Reserved) {
                slot.state = State::Vacant;
                self.free_slot(key);
            }
        }
    }

    fn free_slot(&mut self, key: Key) {
        let slot = &mut self.slots[key.index as usize];
        if slot.generation == u32::MAX {
            return; // Retired: a wrapped generation could match an old key.
        }
        slot.generation += 1;
        self.free.push(key.index);
    }

    /// Every value with its key, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Key, &T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.state {
                State::Occupied(v) => Some((
                    Key {
                        index: i as u32,
                        generation: s.generation,
                    },
                    v,
                )),
                _ => None,
            })
    }

    #[cfg(test)]
    fn set_generation(&mut self, index: u32, generation: u32) {
        self.slots[index as usize].generation = generation;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_removed_key_never_reaches_the_value_that_reuses_its_slot() {
        let mut slab = Slab::default();
        let a = slab.insert("a").unwrap();
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b").unwrap();
        assert_eq!(b.index, a.index, "the slot is reused");
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn a_generation_never_wraps_around_to_match_an_old_key() {
        let mut slab = Slab::default();
        let first = slab.insert(0).unwrap();
        slab.remove(first);
        slab.set_generation(first.index, u32::MAX);
        let last = slab.insert(1).unwrap();
        assert_eq!(last.generation, u32::MAX);
        slab.remove(last);
        // The slot is retired: the next value gets a new slot, and no key of generation 1
        // (or any other) in the old slot matches anything again.
        let next = slab.insert(2).unwrap();
        assert_ne!(next.index, first.index);
        assert_eq!(slab.get(first), None);
        assert_eq!(slab.get(last), None);
        assert_eq!(
            slab.get(Key {
                index: first.index,
                generation: 0
            }),
            None
        );
    }

    #[test]
    fn a_taken_value_comes_back_under_its_key_or_frees_its_slot() {
        let mut slab = Slab::default();
        let k = slab.insert("t").unwrap();
        assert_eq!(slab.take(k), Some("t"));
        assert_eq!((slab.get(k), slab.len()), (None, 0));
        let other = slab.insert("o").unwrap();
        assert_ne!(other.index, k.index, "a reserved slot is not reused");
        assert!(slab.restore(k, "t2"));
        assert_eq!(slab.get(k), Some(&"t2"));
        assert!(
            !slab.restore(k, "again"),
            "only a reserved slot takes a value back"
        );
        slab.take(k);
        slab.release(k);
        assert!(!slab.restore(k, "late"));
        assert_eq!(slab.next_key().map(|n| n.index), Some(k.index));
    }
}
