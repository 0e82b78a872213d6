//! The map's data slots: the program's shared state, one value per type, reachable from
//! every callback through the map (calloop's `EventLoop<Data>` in spirit), so that
//! handlers need no `Rc<RefCell<..>>` to share it.

use crate::socket_map::SocketMap;
use std::any::{Any, TypeId};
use std::fmt;

/// One value per type. A handful of types at most, so a vector searched in order.
#[derive(Default)]
pub(crate) struct DataSlots {
    slots: Vec<(TypeId, Box<dyn Any>)>,
}

impl fmt::Debug for DataSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataSlots({} values)", self.slots.len())
    }
}

impl DataSlots {
    fn position<T: 'static>(&self) -> Option<usize> {
        let ty = TypeId::of::<T>();
        self.slots.iter().position(|(t, _)| *t == ty)
    }
}

/// The program's data in the map.
///
/// A map holds at most one value of each type: the program's shared state (a chat room's
/// members, a key-value store), put in before the loop runs or by a handler, and reached
/// from any callback through the map (`ctx.map()`, `chat.map()`, a timer's or a job's
/// `&mut SocketMap`), mutably, without `Rc<RefCell<..>>`. [`with_data`](Self::with_data)
/// lends the value and the map together, for code that walks the state while it reaches
/// channels.
///
/// ```
/// use asyncore_core::SocketMap;
///
/// #[derive(Default)]
/// struct Room {
///     members: Vec<String>,
/// }
///
/// let mut map = SocketMap::new();
/// map.insert_data(Room::default());
/// // In a callback: `ctx.map().data_mut::<Room>()`.
/// map.data_mut::<Room>().unwrap().members.push("guest1".into());
/// let count = map.with_data(|room: &mut Room, map| {
///     // The room and the map at once: push to each member through `map` here.
///     let _ = map.len();
///     room.members.len()
/// });
/// assert_eq!(count, Some(1));
/// assert_eq!(map.data::<Room>().unwrap().members, ["guest1"]);
/// ```
impl SocketMap {
    /// Puts `value` in the map, in the slot of its type; returns the value the slot held.
    pub fn insert_data<T: 'static>(&mut self, value: T) -> Option<T> {
        let old = self.remove_data::<T>();
        self.data.slots.push((TypeId::of::<T>(), Box::new(value)));
        old
    }

    /// The map's value of type `T`, if it holds one.
    pub fn data<T: 'static>(&self) -> Option<&T> {
        let i = self.data.position::<T>()?;
        self.data.slots[i].1.downcast_ref()
    }

    /// The map's value of type `T`, mutably, if it holds one.
    pub fn data_mut<T: 'static>(&mut self) -> Option<&mut T> {
        let i = self.data.position::<T>()?;
        self.data.slots[i].1.downcast_mut()
    }

    /// The map's value of type `T`, mutably, put in as `T::default()` first if the map
    /// holds none: for state that any of several handlers may be the first to need.
    pub fn data_or_default<T: Default + 'static>(&mut self) -> &mut T {
        let i = match self.data.position::<T>() {
            Some(i) => i,
            None => {
                self.data
                    .slots
                    .push((TypeId::of::<T>(), Box::new(T::default())));
                self.data.slots.len() - 1
            }
        };
        // The slot holds a `T`: `position` matched its type, or it was just pushed.
        self.data.slots[i]
            .1
            .downcast_mut()
            .expect("the slot of T's type holds a T")
    }

    /// Takes the map's value of type `T` out of it.
    pub fn remove_data<T: 'static>(&mut self) -> Option<T> {
        let i = self.data.position::<T>()?;
        let (_, value) = self.data.slots.swap_remove(i);
        value.downcast().ok().map(|b| *b)
    }

    /// Runs `f` with the map's value of type `T` and the map together (to walk a room's
    /// members while pushing to them, say); `None`, without running `f`, when the map holds
    /// no `T`. Meanwhile the value is out of the map: inside `f`, `data::<T>()` is `None`.
    /// It goes back when `f` returns or panics (unless `f` put another `T` in the map).
    pub fn with_data<T: 'static, R>(
        &mut self,
        f: impl FnOnce(&mut T, &mut SocketMap) -> R,
    ) -> Option<R> {
        let value = self.remove_data::<T>()?;
        // Put back even if `f` panics (a handler's panic is contained, and the program's
        // state must survive it), unless `f` put a new `T` in the map.
        struct Lent<'m, T: 'static> {
            map: &'m mut SocketMap,
            value: Option<T>,
        }
        impl<T: 'static> Drop for Lent<'_, T> {
            fn drop(&mut self) {
                if let Some(value) = self.value.take() {
                    if self.map.data.position::<T>().is_none() {
                        self.map.insert_data(value);
                    }
                }
            }
        }
        let mut lent = Lent {
            map: self,
            value: Some(value),
        };
        let Lent { map, value } = &mut lent;
        // `value` was just set: it is `Some` until `lent` drops.
        let value = value.as_mut()?;
        Some(f(value, map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Count(u32);

    #[test]
    fn one_value_per_type() {
        let mut map = SocketMap::new();
        assert_eq!(map.insert_data(Count(1)), None);
        map.insert_data("a name");
        assert_eq!(
            map.insert_data(Count(2)),
            Some(Count(1)),
            "replaced, returned"
        );
        assert_eq!(map.data::<Count>(), Some(&Count(2)));
        assert_eq!(map.data::<&str>(), Some(&"a name"));
        map.data_mut::<Count>().unwrap().0 += 1;
        assert_eq!(map.remove_data::<Count>(), Some(Count(3)));
        assert_eq!(map.data::<Count>(), None);
        assert_eq!(map.data::<u64>(), None);
        assert_eq!(map.data_or_default::<u64>(), &mut 0, "made when missing");
        *map.data_or_default::<u64>() += 2;
        assert_eq!(map.data::<u64>(), Some(&2), "kept when there");
    }

    #[test]
    fn with_data_lends_the_value_and_the_map_and_puts_it_back() {
        let mut map = SocketMap::new();
        assert_eq!(
            map.with_data(|_: &mut Count, _| ()),
            None,
            "no value: f not run"
        );
        map.insert_data(Count(0));
        let inside = map.with_data(|count: &mut Count, map| {
            count.0 += 1;
            map.data::<Count>().is_none()
        });
        assert_eq!(inside, Some(true), "out of the map while lent");
        assert_eq!(map.data::<Count>(), Some(&Count(1)), "back after");
    }

    #[test]
    fn a_panic_while_lent_loses_nothing() {
        let mut map = SocketMap::new();
        map.insert_data(Count(5));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            map.with_data(|count: &mut Count, _| {
                count.0 += 1;
                panic!("broke while lent");
            })
        }));
        assert!(result.is_err());
        assert_eq!(map.data::<Count>(), Some(&Count(6)));
    }

    #[test]
    fn a_value_put_in_while_lent_wins() {
        let mut map = SocketMap::new();
        map.insert_data(Count(1));
        map.with_data(|_: &mut Count, map| map.insert_data(Count(9)));
        assert_eq!(map.data::<Count>(), Some(&Count(9)));
    }
}
