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
//! - **Bounded.** Each shard holds at most its share of the bound (the shares add up to it
//!   exactly). Its slots start small (a generous bound costs nothing until used) and double as
//!   entries arrive, to at most a third more than the share plus one, so every probe ends at an
//!   empty slot.
//! - **Eviction: CLOCK** (second chance), an approximation of least-recently-used. A hit marks
//!   its slot; when a full shard takes a new key, the hand clears marks until it meets an
//!   unmarked entry, and evicts that one: an entry not read since the hand last passed it. A
//!   token read at least once per turn of its shard's hand stays, however many new ones arrive.
//!   An entry goes in unmarked, so a token not read again since it was verified is among the
//!   first to go: marked on the way in, a flood of one-off tokens would have the hand clear a
//!   whole turn of marks at once, the tokens in use included (tried: they were evicted). Bound
//!   and hand are per shard, so eviction can begin a little below the bound while the shards fill
//!   unevenly.
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
        let (_, shard_word) = key.halves();
        // The mask keeps the index below the shard count, a power of two: never out of bounds.
        &self.shards[(shard_word & self.shard_mask) as usize]
    }

    fn read(&self, key: &CacheKey) -> ShardedLockReadGuard<'_, Shard<V>> {
        // Every update leaves a shard consistent at each step (a panic in `retain`'s predicate
        // loses no more than entries), so a poisoned lock's shard is whole: carry on rather than
        // fail every later request.
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
        let slot = shard.slot(key)?;
        // Written only when unset, so a hot entry's line is not written on every hit.
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        Some(slot.value.clone())
    }

    /// The value under `key`, leaving eviction's view of it as it was.
    pub(crate) fn peek(&self, key: &CacheKey) -> Option<V> {
        let shard = self.read(key);
        Some(shard.slot(key)?.value.clone())
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

    /// Removes `key`'s entry; whether there was one.
    pub(crate) fn remove(&self, key: &CacheKey) -> bool {
        let mut shard = self.write(key);
        let found = shard.find(key);
        if let Some(i) = found {
            shard.remove_at(i);
        }
        found.is_some()
    }

    /// Keeps only the entries `keep` approves of (which may be asked more than once of one).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&CacheKey, &V) -> bool) {
        self.write_each(|shard| shard.retain(&mut keep));
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
    let (home_word, _) = key.halves();
    ((u128::from(home_word) * slots as u128) >> 64) as usize
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
        let initial = slots_for(preallocated).clamp(2, slots_for(capacity));
        Self {
            slots: empty_slots(initial),
            len: 0,
            capacity,
            hand: 0,
        }
    }

    /// Slots at full size: more than `capacity`, so a probe always meets an empty slot.
    fn full_slots(&self) -> usize {
        slots_for(self.capacity)
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

    #[inline]
    fn slot(&self, key: &CacheKey) -> Option<&Slot<V>> {
        self.slots[self.find(key)?].as_ref()
    }

    /// Whether one more entry would fill the slots past 3/4. Never at full size below the
    /// share: [`full_slots`](Self::full_slots) is more than 4/3 of it, so growth stops there by
    /// itself.
    fn needs_room(&self) -> bool {
        (self.len + 1) * 4 > self.slots.len() * 3
    }

    /// Moves every entry into slots twice as many, or [`full_slots`](Self::full_slots).
    fn grow(&mut self) {
        let slots = (self.slots.len() * 2).min(self.full_slots());
        let old = mem::replace(&mut self.slots, empty_slots(slots));
        self.len = 0;
        self.hand = 0;
        for slot in old.into_vec().into_iter().flatten() {
            self.place(slot);
        }
    }

    /// Removes, in place, each entry `keep` refuses. A removal shifts later entries back, into
    /// slots not yet looked at or into the current one, which is looked at again; an entry from
    /// the start of the slots may shift across the end and be asked about twice.
    fn retain(&mut self, mut keep: impl FnMut(&CacheKey, &V) -> bool) {
        let mut i = 0;
        while i < self.slots.len() {
            match &self.slots[i] {
                Some(slot) if !keep(&slot.key, &slot.value) => self.remove_at(i),
                _ => i += 1,
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

    /// CLOCK: clears marks from the hand on, and evicts the first unmarked entry. Called on a
    /// full shard, so with at least one entry; ends within two turns of the hand, since the
    /// first clears every mark and no hit can set one while the write lock is held.
    fn evict_one(&mut self) {
        debug_assert!(self.len > 0, "eviction from an empty shard would never end");
        let slots = self.slots.len();
        loop {
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
            let its_home = home(&slot.key, slots);
            // The entry may fill the hole unless its home lies after the hole, up to `i`.
            let stays = if hole <= i {
                hole < its_home && its_home <= i
            } else {
                hole < its_home || its_home <= i
            };
            if !stays {
                self.slots[hole] = self.slots[i].take();
                hole = i;
            }
            i = next(i, slots);
        }
    }
}

/// Slots for `entries` at most 3/4 full: a third more, plus one, so a slot stays empty even with
/// all `entries` in.
fn slots_for(entries: usize) -> usize {
    entries + entries.div_ceil(3) + 1
}

fn empty_slots<V>(slots: usize) -> Box<[Option<Slot<V>>]> {
    std::iter::repeat_with(|| None).take(slots).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// SplitMix64's finalizer: keys as uniform as `CacheKey::of`'s, but the same in every run,
    /// so a failing case replays with the same layout.
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn key(i: u64) -> CacheKey {
        CacheKey::from_halves(mix(i), mix(!i))
    }

    /// A key whose home is slot `home` of a shard of `slots` slots (the shard word is
    /// irrelevant with one shard).
    fn key_at(home: u64, slots: u64, tag: u64) -> CacheKey {
        let first = ((u128::from(home) << 64).div_ceil(u128::from(slots))) as u64;
        CacheKey::from_halves(first, tag)
    }

    /// Every entry is reachable from its home without crossing an empty slot, the count is
    /// right, and no shard holds more than its share.
    fn assert_sound<V>(table: &Table<V>) {
        for shard in &*table.shards {
            let shard = shard.read().unwrap();
            let slots = shard.slots.len();
            assert!(slots <= shard.full_slots(), "grown past the full size");
            let mut count = 0;
            for (i, slot) in shard.slots.iter().enumerate() {
                let Some(slot) = slot else { continue };
                count += 1;
                assert_eq!(
                    shard.find(&slot.key),
                    Some(i),
                    "a key found elsewhere, or twice"
                );
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

    /// Clears every mark, as a turn of the hand would.
    fn unmark_all<V>(table: &Table<V>) {
        for shard in &*table.shards {
            let mut shard = shard.write().unwrap();
            for slot in shard.slots.iter_mut().flatten() {
                *slot.referenced.get_mut() = false;
            }
        }
    }

    /// Runs `ops` over keys `0..keys` on a table and on a map. `exact`: the table never evicts,
    /// so it must equal the map; otherwise every entry it holds must be the map's.
    fn run(capacity: usize, keys: u64, ops: &[Op], exact: bool) {
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

        /// With room for every key (one shard of 63: below two shards' minimum), the table
        /// behaves exactly as a map through inserts, replacements, removals (and their
        /// back-shifts), retains, clears and growth.
        #[test]
        fn with_room_for_every_key_the_table_is_a_map(
            ops in proptest::collection::vec(op(48), 1..400)
        ) {
            run(63, 48, &ops, true);
        }

        /// Past its bound the table evicts, but never returns a value other than the latest,
        /// never a removed key, and never holds more than its bound.
        #[test]
        fn past_its_bound_the_table_only_forgets(
            ops in proptest::collection::vec(op(64), 1..400)
        ) {
            run(7, 64, &ops, false);
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

    /// One shard (a small bound): its slots double when one more entry would pass 3/4 of them,
    /// stop at `full_slots`, and are never reallocated once there, however many keys follow.
    #[test]
    fn slots_double_past_three_quarters_up_to_the_full_size_only() {
        let table = Table::new(30, 2);
        assert_eq!(table.shards.len(), 1);
        let shard_slots = || {
            let shard = table.shards[0].read().unwrap();
            (shard.slots.len(), shard.slots.as_ptr() as usize)
        };
        assert_eq!(shard_slots().0, 4, "room for 2 preallocated entries at 3/4");
        let mut sizes = Vec::new();
        for i in 0..30 {
            table.insert(key(i), i);
            sizes.push(shard_slots().0);
        }
        let expected: Vec<usize> = [(3, 4), (3, 8), (6, 16), (12, 32), (6, 41)]
            .iter()
            .flat_map(|&(entries, slots)| std::iter::repeat_n(slots, entries))
            .collect();
        assert_eq!(sizes, expected, "slots after each of 30 insertions");
        let full = shard_slots();
        for i in 30..300 {
            table.insert(key(i), i);
            assert_eq!(shard_slots(), full, "full size: evictions, never a rebuild");
            // And below the share at full size: a removal, then an insertion with room.
            table.remove(&key(i));
            assert_eq!(shard_slots(), full);
            table.insert(key(i), i);
            assert_eq!(shard_slots(), full);
        }
        assert_eq!(table.len(), 30);
    }

    #[test]
    fn slots_start_small_and_grow_with_the_entries() {
        // Ten times the room: no share is reached, and the slots follow the entries, not the
        // bound.
        let table = Table::new(1_000_000, 0);
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

    /// The promise of `cache_max_entries`' docs: tokens not read recently go first. Tokens read
    /// between insertions outlive a flood of ten times the bound in tokens seen once.
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

    /// Bound 2 grows to its full 4 slots at the second entry, and the growth puts the hand at
    /// slot 0: the entry read (home 0) is passed first, then the one only peeked at (home 1).
    #[test]
    fn a_read_spares_an_entry_from_eviction_and_a_peek_does_not() {
        let table = Table::new(2, 0);
        let (read, peeked, new) = (key_at(0, 4, 1), key_at(1, 4, 2), key_at(2, 4, 3));
        table.insert(read, 1);
        table.insert(peeked, 2);
        assert_eq!(table.shards[0].read().unwrap().slots.len(), 4);
        unmark_all(&table);
        assert_eq!(table.get(&read), Some(1));
        assert_eq!(table.peek(&peeked), Some(2));
        table.insert(new, 3);
        assert_eq!(table.peek(&read), Some(1), "read: spared");
        assert_eq!(table.peek(&peeked), None, "peeked, not read: evicted");
        assert_eq!(table.peek(&new), Some(3));
        assert_sound(&table);
    }

    /// After an eviction the hand stays at the freed slot, where the run shifted back: the entry
    /// shifted into it is the next looked at, not skipped for a whole turn.
    #[test]
    fn the_hand_looks_next_at_the_entry_shifted_into_the_evicted_slot() {
        // Bound 3 preallocated: one shard of 5 slots from the start, the hand at slot 0.
        let table = Table::new(3, 3);
        assert_eq!(table.shards[0].read().unwrap().slots.len(), 5);
        let (first, shifted, third) = (key_at(0, 5, 1), key_at(0, 5, 2), key_at(2, 5, 3));
        table.insert(first, 1);
        table.insert(shifted, 2);
        table.insert(third, 3);
        // Evicts `first` (slot 0); `shifted` (home 0, in slot 1) moves back into slot 0.
        table.insert(key_at(3, 5, 4), 4);
        assert_eq!(table.peek(&first), None);
        let position = table.shards[0].read().unwrap().find(&shifted);
        assert_eq!(position, Some(0));
        table.insert(key_at(4, 5, 5), 5);
        assert_eq!(
            table.peek(&shifted),
            None,
            "the next in the hand's order: evicted"
        );
        assert_eq!(
            table.peek(&third),
            Some(3),
            "the next entry on: kept this time"
        );
        assert_sound(&table);
    }

    /// Every entry read since the hand last passed: the first turn clears every mark, the second
    /// evicts. The bound holds.
    #[test]
    fn a_full_shard_of_entries_all_read_still_evicts_one() {
        for capacity in [1, 2, 30] {
            let table = Table::new(capacity, capacity);
            for i in 0..capacity as u64 {
                table.insert(key(i), i);
            }
            for i in 0..capacity as u64 {
                assert_eq!(table.get(&key(i)), Some(i));
            }
            table.insert(key(1_000), 1_000);
            assert_eq!(table.len(), capacity);
            assert_eq!(table.peek(&key(1_000)), Some(1_000));
            assert_sound(&table);
        }
    }

    /// A run that crosses the end of the slots: removing its head shifts every entry back, across
    /// the end and out of it, as far as each one's home allows.
    #[test]
    fn removal_shifts_a_run_back_across_the_end_of_the_slots() {
        // Preallocated to the bound: 41 slots from the start, no growth to move anything.
        let table = Table::new(30, 30);
        assert_eq!(table.shards[0].read().unwrap().slots.len(), 41);
        let at_end: Vec<CacheKey> = (0..3).map(|tag| key_at(40, 41, tag)).collect();
        let (at_0, at_1, at_4) = (key_at(0, 41, 10), key_at(1, 41, 11), key_at(4, 41, 12));
        // Slots 40, 0, 1 for the three homed at 40; then 2, 3 and 4 for those homed at 0, 1, 4.
        for (i, key) in at_end.iter().chain([&at_0, &at_1, &at_4]).enumerate() {
            table.insert(*key, i as u64);
        }
        let position = |key: &CacheKey| table.shards[0].read().unwrap().find(key);
        assert_eq!(position(&at_1), Some(3));
        assert_eq!(position(&at_4), Some(4));
        table.remove(&at_end[0]);
        assert_sound(&table);
        assert_eq!(position(&at_end[1]), Some(40), "back across the end");
        assert_eq!(position(&at_end[2]), Some(0));
        assert_eq!(position(&at_0), Some(1), "back by one, as the hole moved");
        assert_eq!(position(&at_1), Some(2));
        assert_eq!(
            position(&at_4),
            Some(4),
            "at its home: stays, the slot before it free"
        );
        table.remove(&at_0);
        assert_sound(&table);
        assert_eq!(position(&at_1), Some(1), "home");
        for (i, key) in at_end.iter().enumerate().skip(1) {
            assert_eq!(table.get(key), Some(i as u64));
        }
        assert_eq!(table.get(&at_1), Some(4));
        assert_eq!(table.get(&at_4), Some(5));

        // Across the end the other way: an entry at its home just past the end stays there.
        let table = Table::new(30, 30);
        let (last, first) = (key_at(40, 41, 20), key_at(0, 41, 21));
        table.insert(last, 1);
        table.insert(first, 2);
        table.remove(&last);
        let position = table.shards[0].read().unwrap().find(&first);
        assert_eq!(position, Some(0), "home: stays");
        assert_sound(&table);
    }

    /// Threads inserting, reading and removing at once: the table stays sound, a key whose
    /// insertion has returned is read back, and a key whose removal has returned is never read
    /// again.
    #[test]
    fn concurrent_use_keeps_the_table_sound_and_removals_final() {
        let table = Table::new(256, 0);
        std::thread::scope(|scope| {
            for thread in 0..4_u64 {
                let table = &table;
                scope.spawn(move || {
                    for round in 0..2_000_u64 {
                        // Keys of its own, so this thread's removal is the last word on them.
                        let own = key((thread << 32) | (round % 97));
                        table.insert(own, round);
                        // At most five keys live at once, far below any share: nothing evicted.
                        assert_eq!(table.get(&own), Some(round), "read after its insertion");
                        table.remove(&own);
                        assert_eq!(table.get(&own), None, "read after its removal");
                        // And a shared key everyone writes and reads.
                        table.insert(key(u64::MAX), thread);
                        assert!(table.get(&key(u64::MAX)).is_none_or(|value| value < 4));
                    }
                });
            }
        });
        assert_sound(&table);
    }
}
