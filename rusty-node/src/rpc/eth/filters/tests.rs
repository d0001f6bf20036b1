use std::collections::HashMap;

use super::*;

/// A block tree in memory: the active chain, and blocks off it.
#[derive(Default)]
struct Tree {
    active: Vec<Hash256>,
    parents: HashMap<Hash256, Hash256>,
    roots: HashMap<Hash256, Hash256>,
}

fn block(branch: u8, height: u64) -> Hash256 {
    let mut h = [branch; 32];
    h[..8].copy_from_slice(&height.to_le_bytes());
    Hash256(h)
}

impl Tree {
    /// A chain of `n + 1` blocks (heights 0..=n) on branch 0, whose state
    /// root changes at the heights in `changes`.
    fn chain(n: u64, changes: &[u64]) -> Tree {
        let mut t = Tree::default();
        let mut root = Hash256::ZERO;
        for h in 0..=n {
            if changes.contains(&h) {
                root = block(0xee, h);
            }
            t.add(block(0, h), h, root);
            t.active.push(block(0, h));
        }
        t
    }

    fn add(&mut self, hash: Hash256, height: u64, root: Hash256) {
        if let Some(parent) = height.checked_sub(1) {
            let parent = self
                .active
                .get(parent as usize)
                .copied()
                .unwrap_or(block(0, parent));
            self.parents.insert(hash, parent);
        }
        self.roots.insert(hash, root);
    }

    /// Replaces the active chain above `fork` with `len` blocks of `branch`.
    fn reorg(&mut self, fork: u64, branch: u8, len: u64) {
        self.active.truncate(fork as usize + 1);
        for h in fork + 1..=fork + len {
            let hash = block(branch, h);
            self.parents.insert(hash, self.active[h as usize - 1]);
            self.roots.insert(hash, hash);
            self.active.push(hash);
        }
    }
}

impl BlockTree for Tree {
    fn tip_height(&self) -> u64 {
        self.active.len() as u64 - 1
    }

    fn active_at(&self, height: u64) -> Option<Hash256> {
        self.active.get(height as usize).copied()
    }

    fn in_active_chain(&self, hash: &Hash256) -> bool {
        self.active.contains(hash)
    }

    fn parent_of(&self, hash: &Hash256) -> Option<Hash256> {
        self.parents.get(hash).copied()
    }

    fn state_root_of(&self, hash: &Hash256) -> Option<Hash256> {
        self.roots.get(hash).copied()
    }
}

#[test]
fn a_walk_reports_the_blocks_after_its_cursor() {
    let tree = Tree::chain(10, &[]);
    let w = walk(&tree, (7, block(0, 7)), 100);
    assert!(w.removed.is_empty());
    assert_eq!(
        w.added,
        (8..=10).map(|h| (h, block(0, h))).collect::<Vec<_>>()
    );
    assert_eq!(w.next, (10, block(0, 10)));
    // Nothing new: the cursor stays.
    let again = walk(&tree, w.next, 100);
    assert!(again.added.is_empty() && again.removed.is_empty());
    assert_eq!(again.next, (10, block(0, 10)));
}

#[test]
fn a_walk_is_bounded_and_goes_on_from_where_it_stopped() {
    let tree = Tree::chain(10, &[]);
    let first = walk(&tree, (0, block(0, 0)), 4);
    assert_eq!(first.added.len(), 4);
    assert_eq!(first.next, (4, block(0, 4)));
    let second = walk(&tree, first.next, 100);
    assert_eq!(second.added.first(), Some(&(5, block(0, 5))));
    assert_eq!(second.next, (10, block(0, 10)));
}

#[test]
fn after_a_reorg_a_walk_reports_the_blocks_that_left_then_the_new_ones() {
    let mut tree = Tree::chain(10, &[]);
    // The filter saw up to 9; 9 and 10 leave, a branch of three joins.
    tree.reorg(8, 1, 3);
    let w = walk(&tree, (9, block(0, 9)), 100);
    assert_eq!(w.removed, vec![(9, block(0, 9))]);
    assert_eq!(
        w.added,
        (9..=11).map(|h| (h, block(1, h))).collect::<Vec<_>>()
    );
    assert_eq!(w.next, (11, block(1, 11)));
}

#[test]
fn a_walk_from_a_lost_or_too_distant_cursor_starts_again_at_the_tip() {
    let mut tree = Tree::chain(10, &[]);
    let unknown = walk(&tree, (5, block(9, 5)), 100);
    assert_eq!(
        unknown,
        Walk {
            next: (10, block(0, 10)),
            ..Walk::default()
        }
    );
    tree.reorg(2, 1, 9);
    let far = walk(&tree, (10, block(0, 10)), 3);
    assert!(far.removed.is_empty() && far.added.is_empty());
    assert_eq!(far.next, (11, block(1, 11)));
}

#[test]
fn log_blocks_skips_blocks_that_left_the_state_alone() {
    let tree = Tree::chain(20_000, &[0, 3, 7, 19_999]);
    let found = log_blocks(&tree, 0, 20_000, 10).expect("four blocks");
    let heights: Vec<u64> = found.iter().map(|(h, _)| *h).collect();
    assert_eq!(heights, vec![0, 3, 7, 19_999]);
    // From the middle: the block before `from` is what it is compared with.
    let tail = log_blocks(&tree, 4, 20_000, 10).expect("two blocks");
    assert_eq!(
        tail.iter().map(|(h, _)| *h).collect::<Vec<_>>(),
        vec![7, 19_999]
    );
    let at = log_blocks(&tree, 3, 3, 10).expect("one block");
    assert_eq!(at, vec![(3, block(0, 3))]);
    // A range past the tip stops at it.
    assert_eq!(log_blocks(&tree, 20_000, 30_000, 10), Ok(Vec::new()));
}

#[test]
fn log_blocks_refuses_more_than_its_bound_of_blocks_with_changes() {
    let changes: Vec<u64> = (0..50).map(|h| h * 2).collect();
    let tree = Tree::chain(100, &changes);
    assert_eq!(log_blocks(&tree, 0, 100, 49), Err(49));
    assert_eq!(log_blocks(&tree, 0, 100, 50).map(|b| b.len()), Ok(50));
}

#[test]
fn ids_round_trip_and_junk_is_not_found() {
    let id = 0x0abc_u128 << 100;
    assert_eq!(parse_id(&format_id(id)).expect("parses"), id);
    for junk in ["", "0x", "abc", "0xzz", &format!("0x{}", "f".repeat(33))] {
        let e = parse_id(junk).expect_err("junk");
        assert_eq!(e.message(), "filter not found", "{junk:?}");
    }
}

#[test]
fn polls_move_the_cursor_once_and_never_twice_at_once() {
    let filters = Arc::new(EthFilters::default());
    let t0 = Instant::now();
    let id = filters
        .install(FilterKind::Blocks, Cursor::Block(1, block(0, 1)), t0)
        .expect("installed");
    let (_, cursor, poll) = filters.begin_poll(id, t0).expect("known").expect("free");
    assert_eq!(cursor, Cursor::Block(1, block(0, 1)));
    // A second poll while the first runs reports nothing new.
    assert!(filters.begin_poll(id, t0).expect("known").is_none());
    poll.done(Cursor::Block(5, block(0, 5)));
    let (_, cursor, poll) = filters.begin_poll(id, t0).expect("known").expect("free");
    assert_eq!(cursor, Cursor::Block(5, block(0, 5)));
    // A poll that fails (dropped without `done`) leaves the cursor.
    drop(poll);
    let (_, cursor, _poll) = filters.begin_poll(id, t0).expect("known").expect("free");
    assert_eq!(cursor, Cursor::Block(5, block(0, 5)));
}

#[test]
fn filters_expire_unless_polled_and_uninstall_once() {
    let filters = Arc::new(EthFilters::default());
    let t0 = Instant::now();
    let kept = filters
        .install(FilterKind::PendingTransactions, Cursor::Arrival(0), t0)
        .expect("installed");
    let idle = filters
        .install(FilterKind::Blocks, Cursor::Block(0, block(0, 0)), t0)
        .expect("installed");
    let later = t0 + FILTER_TIMEOUT - Duration::from_secs(1);
    drop(filters.begin_poll(kept, later).expect("known"));
    let expired = t0 + FILTER_TIMEOUT + Duration::from_secs(1);
    assert!(filters
        .begin_poll(kept, expired)
        .expect("polled since")
        .is_some());
    let e = filters.kind(idle, expired).expect_err("expired");
    assert_eq!(e.message(), "filter not found");
    assert_eq!(filters.len(), 1);
    assert!(filters.uninstall(kept));
    assert!(!filters.uninstall(kept));
    assert!(filters.kind(kept, expired).is_err());
}

#[test]
fn the_table_is_bounded_and_a_full_one_drops_the_least_recently_used() {
    let filters = EthFilters::default();
    let t0 = Instant::now();
    let first = filters
        .install(FilterKind::Blocks, Cursor::Arrival(0), t0)
        .expect("room");
    let second = filters
        .install(FilterKind::Blocks, Cursor::Arrival(0), t0)
        .expect("room");
    for _ in 2..MAX_FILTERS {
        filters
            .install(
                FilterKind::Blocks,
                Cursor::Arrival(0),
                t0 + Duration::from_secs(1),
            )
            .expect("room");
    }
    // The first is used again: the second is now the least recently used.
    let t1 = t0 + Duration::from_secs(2);
    filters.kind(first, t1).expect("installed");
    let newest = filters
        .install(FilterKind::Blocks, Cursor::Arrival(0), t1)
        .expect("room made");
    assert_eq!(filters.len(), MAX_FILTERS);
    assert!(
        filters.kind(second, t1).is_err(),
        "the least recently used went"
    );
    assert!(filters.kind(first, t1).is_ok() && filters.kind(newest, t1).is_ok());
    // Idle ones go once they expire.
    filters
        .install(FilterKind::Blocks, Cursor::Arrival(0), t1 + FILTER_TIMEOUT)
        .expect("expired ones dropped");
    assert_eq!(filters.len(), 1);
}
