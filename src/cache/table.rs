//! [`Table`]: the verified-token store's table, laid out for the hit over many tokens.
//!
//! With a million cached tokens a hit is memory latency: each line it reads is likely a miss,
//! with a TLB miss on top. `quick_cache`, which the refused-token store keeps, finds an entry
//! through its index's control bytes, then an index slot, then a slab entry: three dependent
//! lines before the user's reference count is even reached. Here an entry lives in its index
//! slot (open addressing with linear probing, key and value side by side), so a hit reads one
//! slot, or a run of neighbouring ones, and then the user's count.
//!
//! - **Where a key goes.** A [`CacheKey`] is keyed-PRF output, uniform and not aimable without
//!   the process's key: one of its words picks the shard, the other the home slot, with no
//!   further hashing.
//! - **Bounded.** Each shard holds at most its share of the bound. Its slots start small (a
//!   generous bound costs nothing until used) and double as entries arrive, to at most
//!   4/3 of the share, so every probe ends at an empty slot.
//! - **Eviction: CLOCK** (second chance). A hit marks its slot; when a full shard takes a new
//!   key, the hand clears marks until it meets an unmarked entry, and evicts that one. Tokens in
//!   use stay; tokens seen once go first, as with `quick_cache`'s S3-FIFO.
//! - **Removal** shifts the run after the freed slot back (no tombstones), so a removed key is
//!   gone at once and lookups never walk over dead slots.
//! - **Locking** as `quick_cache` with its `sharded-lock` feature: a
//!   [`ShardedLock`] per shard, whose readers on different threads touch different lock words.
//!   A hit takes the read lock; its mark is an atomic, written only when not yet set.

use std::mem;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::PoisonError;

use crossbeam_utils::sync::{ShardedLock, ShardedLockReadGuard, ShardedLockWriteGuard};

use crate::token::CacheKey;

/// Shards per available core, as `quick_cache` sizes them, so writers rarely meet.
const SHARDS_PER_CORE: usize = 4;

/// The fewest entries a shard is given while there is more than one: a tiny bound is kept in
/// few shards rather than spread one entry apiece.
const MIN_SHARD_ENTRIES: usize = 32;

pub(crate) struct Table<V> {
    shards: Box<[ShardedLock<Shard<V>>]>,
    shard_mask: u64,
}

struct Shard<V> {
    slots: Box<[Option<Slot<V>>]>,
    len: usize,
    /// The most entries this shard holds: its share of the table's bound.
    capacity: usize,
    /// Slots at full size: more than `capacity`, so a probe always meets an empty slot.
    full_slots: usize,
    /// The CLOCK hand: the slot eviction looks at next.
    hand: usize,
}

struct Slot<V> {
    key: CacheKey,
    value: V,
    /// Read since the hand last passed: spared once by eviction.
    referenced: AtomicBool,
}

impl<V: Clone> Table<V> {
    /// A table of at most `capacity` entries, with room for about `preallocated` reserved now.
    pub(crate) fn new(capacity: usize, preallocated: usize) -> Self {
        let capacity = capacity.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut shards = (cores * SHARDS_PER_CORE).next_power_of_two();
        while shards > 1 && capacity / shards < MIN_SHARD_ENTRIES {
            shards /= 2;
        }
        let shards_built = (0..shards)
            .map(|i| {
                // The bound split exactly: the first `capacity % shards` shards take one more.
                let share = capacity / shards + usize::from(i < capacity % shards);
                ShardedLock::new(Shard::new(share, preallocated.min(capacity) / shards))
            })
            .collect();
        Self {
            shards: shards_built,
            shard_mask: shards as u64 - 1,
        }
    }

    fn shard(&self, key: &CacheKey) -> &ShardedLock<Shard<V>> {
        // The mask keeps the index below the shard count, a power of two: never out of bounds.
        &self.shards[(key.halves().1 & self.shard_mask) as usize]
    }

    fn read(&self, key: &CacheKey) -> ShardedLockReadGuard<'_, Shard<V>> {
        // No operation panics midway through a shard's update, so a poisoned lock's shard is
        // whole: carry on rather than fail every later request.
        self.shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, key: &CacheKey) -> ShardedLockWriteGuard<'_, Shard<V>> {
        self.shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write_each(&self, mut each: impl FnMut(&mut Shard<V>)) {
        for shard in &*self.shards {
            each(&mut shard.write().unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// The value under `key`, marked as in use (the hit path).
    #[inline]
    pub(crate) fn get(&self, key: &CacheKey) -> Option<V> {
        let shard = self.read(key);
        let slot = shard.find(key).and_then(|i| shard.slots[i].as_ref())?;
        // Written only when unset, so a hot entry's line is not written on every hit.
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        Some(slot.value.clone())
    }

    /// The value under `key`, leaving eviction's view of it as it was.
    pub(crate) fn peek(&self, key: &CacheKey) -> Option<V> {
        let shard = self.read(key);
        let slot = shard.find(key).and_then(|i| shard.slots[i].as_ref())?;
        Some(slot.value.clone())
    }

    /// Puts `value` under `key`, replacing what was there; a full shard evicts an entry first.
    pub(crate) fn insert(&self, key: CacheKey, value: V) {
        let mut shard = self.write(&key);
        if let Some(slot) = shard.find(&key).and_then(|i| shard.slots[i].as_mut()) {
            slot.value = value;
            return;
        }
        if shard.len >= shard.capacity {
            shard.evict_one();
        } else if shard.needs_room() {
            shard.grow();
        }
        shard.place(Slot {
            key,
            value,
            referenced: AtomicBool::new(false),
        });
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        let mut shard = self.write(key);
        if let Some(i) = shard.find(key) {
            shard.remove_at(i);
        }
    }

    /// Keeps only the entries `keep` approves of.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&CacheKey, &V) -> bool) {
        self.write_each(|shard| shard.rebuild(shard.slots.len(), &mut keep));
    }

    /// Drops every entry; the slots stay allocated, as they would fill again.
    pub(crate) fn clear(&self) {
        self.write_each(|shard| {
            shard.slots.iter_mut().for_each(|slot| *slot = None);
            shard.len = 0;
        });
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len)
            .sum()
    }
}

/// Where `key`'s probe starts among `slots`: its first word scaled to the table (a multiply,
/// not a modulo, so any table size works).
#[inline]
fn home(key: &CacheKey, slots: usize) -> usize {
    ((u128::from(key.halves().0) * slots as u128) >> 64) as usize
}

#[inline]
fn next(i: usize, slots: usize) -> usize {
    if i + 1 == slots {
        0
    } else {
        i + 1
    }
}

impl<V> Shard<V> {
    fn new(capacity: usize, preallocated: usize) -> Self {
        let full_slots = capacity + capacity.div_ceil(3) + 1;
        let initial = (preallocated + preallocated.div_ceil(3) + 1).clamp(2, full_slots);
        Self {
            slots: empty_slots(initial),
            len: 0,
            capacity,
            full_slots,
            hand: 0,
        }
    }

    /// The slot holding `key`: the probe runs from its home to the first empty slot, which
    /// always exists (`len < slots.len()`).
    #[inline]
    fn find(&self, key: &CacheKey) -> Option<usize> {
        let slots = self.slots.len();
        let mut i = home(key, slots);
        loop {
            match &self.slots[i] {
                None => return None,
                Some(slot) if slot.key == *key => return Some(i),
                Some(_) => i = next(i, slots),
            }
        }
    }

    /// Whether one more entry would fill the slots past 3/4, with room left to grow.
    fn needs_room(&self) -> bool {
        self.slots.len() < self.full_slots && (self.len + 1) * 4 > self.slots.len() * 3
    }

    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).min(self.full_slots);
        self.rebuild(slots, |_, _| true);
    }

    /// Moves every entry `keep` approves of into `slots` fresh slots.
    fn rebuild(&mut self, slots: usize, mut keep: impl FnMut(&CacheKey, &V) -> bool) {
        let old = mem::replace(&mut self.slots, empty_slots(slots));
        self.len = 0;
        self.hand = 0;
        for slot in old.into_vec().into_iter().flatten() {
            if keep(&slot.key, &slot.value) {
                self.place(slot);
            }
        }
    }

    /// Puts a key not in the shard into the first empty slot from its home. The caller has made
    /// room: after this, an empty slot remains.
    fn place(&mut self, slot: Slot<V>) {
        let slots = self.slots.len();
        let mut i = home(&slot.key, slots);
        while self.slots[i].is_some() {
            i = next(i, slots);
        }
        self.slots[i] = Some(slot);
        self.len += 1;
    }

    /// CLOCK: clears marks from the hand on, and evicts the first unmarked entry. Ends within
    /// two turns of the hand, since the first clears every mark.
    fn evict_one(&mut self) {
        let slots = self.slots.len();
        for _ in 0..2 * slots {
            let i = self.hand;
            self.hand = next(i, slots);
            if let Some(slot) = &mut self.slots[i] {
                if !mem::take(slot.referenced.get_mut()) {
                    self.remove_at(i);
                    // The run shifted back into `i`: its next entry is the hand's next.
                    self.hand = i;
                    return;
                }
            }
        }
    }

    /// Empties slot `i` and shifts the run after it back, each entry as far as its home allows,
    /// so every entry stays reachable from its home without crossing an empty slot.
    fn remove_at(&mut self, mut hole: usize) {
        if self.slots[hole].take().is_none() {
            return;
        }
        self.len -= 1;
        let slots = self.slots.len();
        let mut i = next(hole, slots);
        while let Some(slot) = &self.slots[i] {
            let home = home(&slot.key, slots);
            // The entry may fill the hole unless its home lies after the hole, up to `i`.
            let stays = if hole <= i {
                hole < home && home <= i
            } else {
                hole < home || home <= i
            };
            if !stays {
                self.slots[hole] = self.slots[i].take();
                hole = i;
            }
            i = next(i, slots);
        }
    }
}

fn empty_slots<V>(slots: usize) -> Box<[Option<Slot<V>>]> {
    std::iter::repeat_with(|| None).take(slots).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn key(i: u64) -> CacheKey {
        CacheKey::of(&i.to_le_bytes())
    }

    /// Every entry is reachable from its home without crossing an empty slot, the count is
    /// right, and no shard holds more than its share.
    fn assert_sound<V>(table: &Table<V>) {
        for shard in &*table.shards {
            let shard = shard.read().unwrap();
            let slots = shard.slots.len();
            let mut count = 0;
            for (i, slot) in shard.slots.iter().enumerate() {
                let Some(slot) = slot else { continue };
                count += 1;
                let mut j = home(&slot.key, slots);
                while j != i {
                    assert!(shard.slots[j].is_some(), "an empty slot cuts off an entry");
                    j = next(j, slots);
                }
            }
            assert_eq!(count, shard.len);
            assert!(shard.len <= shard.capacity);
            assert!(shard.len < slots, "a probe must always end");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u32),
        Get(u64),
        Remove(u64),
        RetainEven,
        Clear,
    }

    fn op(keys: u64) -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            4 => (0..keys).prop_map(Op::Get),
            4 => (0..keys).prop_map(Op::Remove),
            1 => Just(Op::RetainEven),
            1 => Just(Op::Clear),
        ]
    }

    /// Runs `ops` on a table and on a map, and returns both. `exact`: the table never evicts,
    /// so it must equal the map; otherwise every entry it holds must be the map's.
    fn run(capacity: usize, ops: &[Op], exact: bool) {
        let table = Table::new(capacity, 0);
        let mut model = HashMap::new();
        for op in ops {
            match *op {
                Op::Insert(k, v) => {
                    table.insert(key(k), v);
                    model.insert(k, v);
                }
                Op::Get(k) => {
                    let got = table.get(&key(k));
                    if exact {
                        assert_eq!(got, model.get(&k).copied());
                    } else if let Some(v) = got {
                        assert_eq!(Some(&v), model.get(&k), "a stale or foreign value");
                    }
                }
                Op::Remove(k) => {
                    table.remove(&key(k));
                    model.remove(&k);
                    assert_eq!(table.get(&key(k)), None, "removed means gone");
                }
                Op::RetainEven => {
                    table.retain(|_, v| v % 2 == 0);
                    model.retain(|_, v| *v % 2 == 0);
                }
                Op::Clear => {
                    table.clear();
                    model.clear();
                    assert_eq!(table.len(), 0);
                }
            }
            assert_sound(&table);
        }
        let keys: u64 = 64;
        for k in 0..keys {
            match (table.peek(&key(k)), model.get(&k)) {
                (Some(v), expected) => assert_eq!(Some(&v), expected),
                (None, Some(_)) => assert!(!exact, "key {k} lost without eviction"),
                (None, None) => {}
            }
        }
        if exact {
            assert_eq!(table.len(), model.len());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// With room for every key, the table behaves exactly as a map through inserts,
        /// replacements, removals (and their back-shifts), retains, clears and growth.
        #[test]
        fn with_room_for_every_key_the_table_is_a_map(
            ops in proptest::collection::vec(op(64), 1..400)
        ) {
            run(64, &ops, true);
        }

        /// Past its bound the table evicts, but never returns a value other than the latest,
        /// never a removed key, and never holds more than its bound.
        #[test]
        fn past_its_bound_the_table_only_forgets(
            ops in proptest::collection::vec(op(64), 1..400)
        ) {
            run(7, &ops, false);
        }
    }

    #[test]
    fn the_bound_is_split_exactly_and_holds_under_any_load() {
        for capacity in [1, 2, 31, 32, 100, 1_000, 4_097] {
            let table = Table::new(capacity, 16);
            let shares: usize = table
                .shards
                .iter()
                .map(|shard| shard.read().unwrap().capacity)
                .sum();
            assert_eq!(shares, capacity);
            for i in 0..4 * capacity as u64 {
                table.insert(key(i), i);
            }
            assert_sound(&table);
            assert_eq!(table.len(), capacity, "every share filled");
        }
    }

    #[test]
    fn slots_start_small_and_grow_with_the_entries() {
        // Twice the room: a shard's share is not reached before the others'.
        let table = Table::new(200_000, 0);
        let slots = |table: &Table<u64>| -> usize {
            table
                .shards
                .iter()
                .map(|shard| shard.read().unwrap().slots.len())
                .sum()
        };
        assert!(slots(&table) <= 2 * table.shards.len());
        for i in 0..100_000 {
            table.insert(key(i), i);
        }
        assert_eq!(table.len(), 100_000, "nothing evicted below the bound");
        // At most 3/4 full just before growing, twice that after.
        assert!(slots(&table) <= 100_000 * 8 / 3 + 2 * table.shards.len());
        assert_sound(&table);
    }

    /// The promise of `cache_max_entries`' docs: the coldest go first. Tokens read between
    /// insertions outlive a flood of ten times the bound in tokens seen once.
    #[test]
    fn entries_in_use_outlive_a_flood_of_one_off_keys() {
        const CAPACITY: usize = 1_000;
        let table = Table::new(CAPACITY, 0);
        let hot: Vec<u64> = (0..100).collect();
        for &k in &hot {
            table.insert(key(k), k);
        }
        for i in 0..10 * CAPACITY as u64 {
            table.insert(key(1_000_000 + i), i);
            if i % 100 == 0 {
                for &k in &hot {
                    assert_eq!(table.get(&key(k)), Some(k), "hot key {k} evicted at {i}");
                }
            }
        }
        assert_eq!(table.len(), CAPACITY);
    }

    #[test]
    fn peek_does_not_spare_an_entry_from_eviction() {
        let table = Table::new(2, 0);
        table.insert(key(1), 1);
        table.insert(key(2), 2);
        assert_eq!(table.peek(&key(1)), Some(1));
        assert_eq!(table.get(&key(2)), Some(2));
        table.insert(key(3), 3);
        assert_eq!(table.peek(&key(1)), None, "peeked, not read: evicted");
        assert_eq!(table.peek(&key(2)), Some(2), "read: spared");
        assert_eq!(table.peek(&key(3)), Some(3));
    }
}
