//! Work shared by threads that each take the next unclaimed item, with
//! every item's result kept in its own slot, so whoever reads them reads
//! them in order. Used where a helper thread may start late (a block's
//! transaction checks) or a reader consumes while helpers work ahead (a
//! block's decoding): no thread waits for a share fixed up front.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    OnceLock,
};

/// `items` and, once claimed and done, each one's result.
#[derive(Debug)]
pub(crate) struct Claims<'a, T, R> {
    items: &'a [T],
    slots: Vec<OnceLock<R>>,
    next: AtomicUsize,
}

impl<'a, T, R> Claims<'a, T, R> {
    pub(crate) fn new(items: &'a [T]) -> Self {
        Claims {
            items,
            slots: items.iter().map(|_| OnceLock::new()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Claims the next item and keeps `work`'s result for it; false when
    /// none is left.
    pub(crate) fn claim(&self, work: impl FnOnce(&T) -> R) -> bool {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        match (self.items.get(i), self.slots.get(i)) {
            (Some(item), Some(slot)) => {
                let _ = slot.set(work(item));
                true
            }
            _ => false,
        }
    }

    /// Item `i`'s result, once done.
    pub(crate) fn get(&self, i: usize) -> Option<&R> {
        self.slots.get(i).and_then(OnceLock::get)
    }

    /// Each item, in order, with its result (`None` for one never done).
    pub(crate) fn into_results(self) -> impl Iterator<Item = (&'a T, Option<R>)> {
        self.items
            .iter()
            .zip(self.slots.into_iter().map(OnceLock::into_inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_done_once_and_read_in_order() {
        let items: Vec<u32> = (0..100).collect();
        let claims = Claims::new(&items);
        std::thread::scope(|scope| {
            let helper = scope.spawn(|| while claims.claim(|n| n * 2) {});
            while claims.claim(|n| n * 2) {}
            helper.join().expect("the helper panicked");
        });
        assert_eq!(claims.get(7), Some(&14));
        assert!(!claims.claim(|n| n * 2), "nothing left to claim");
        let results: Vec<(u32, Option<u32>)> =
            claims.into_results().map(|(n, r)| (*n, r)).collect();
        assert_eq!(
            results,
            (0..100).map(|n| (n, Some(n * 2))).collect::<Vec<_>>()
        );
        let unclaimed = Claims::<u32, u32>::new(&items[..2]);
        assert_eq!(unclaimed.get(0), None);
        assert!(unclaimed.into_results().all(|(_, r)| r.is_none()));
    }
}
