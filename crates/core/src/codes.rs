//! Participant codes that are unique across the study, made on tablets with no signal.
//!
//! A code is its group's prefix letter and a number, at least two digits: `C07`. Two tablets
//! that each counted from `C01` would both give out `C01`, so the numbers come from the
//! server instead: it hands each device blocks of numbers per prefix
//! (`POST /api/codes/reserve`, see [`crate::sync::api::ReserveRequest`]), never the same
//! number twice. The device keeps what it has not given out yet in its [`CodePool`], sealed
//! on the device, and each sync tops the pool up to [`POOL_TARGET`] unused numbers per group
//! ([`crate::sync::Syncer::run_with_codes`]).
//!
//! A new participant takes the lowest unused number of their group ([`CodePool::new_code`]).
//! When there is none (offline since the pool ran out, never synced, not enrolled) they get a
//! **provisional label**, [`provisional_label`]: `C-new-3`. Their records stay on the tablet
//! ([`crate::sync::HoldReason::ProvisionalCode`]) until a sync reserves a number; the engine
//! then writes the participant's next revision with the final code and sends everything
//! under it. A provisional label never leaves the device in the clear.
//!
//! Why `C-new-3`: it cannot be mistaken for a code (a code is a capital letter and digits
//! only, so [`parse_code`] refuses it, and so does the server), it says in plain words that
//! the code is not the real one yet, the group letter is still first (the fieldworker sees
//! whose group it is, lists sort it with the group), and it has no characters that are
//! special in searches or patterns (`?`, `*`, `#`). The number counts per tablet and is
//! never reused on that tablet, so "C-new-3" is one person for as long as it is shown.
//!
//! Codes given out before the server reserved them (older versions counted on the tablet)
//! stay as they are: they are final codes. The server starts its numbers above every code it
//! has seen with that prefix.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::protocol::parse_code;
use crate::store::StoreError;
use crate::sync::api::{CodeBlock, ReserveWant};

/// How many unused numbers per group a device keeps after each sync: enough for a few
/// days of visits offline (a family is one carer and their children), few enough that the
/// gaps left by a lost or retired tablet stay small.
pub const POOL_TARGET: u32 = 5;

/// The most numbers the server reserves for one prefix in one request (a larger `want` is
/// cut to this).
pub const MAX_BLOCK: u32 = 20;

/// The most reserved numbers one device may hold unused for one prefix (reserved to it, not
/// yet seen in a participant record it pushed). A device that lost its pool, or asks in a
/// loop, cannot burn more than this.
pub const MAX_OUTSTANDING: u32 = 50;

/// The key of the sealed code pool among the device's values (the app keeps it with
/// `save_device_value`).
pub const CODE_POOL_KEY: &str = "code_pool";

/// The code for number `number` of `prefix`: `C07`, `C100`.
pub fn format_code(prefix: char, number: u32) -> String {
    format!("{prefix}{number:02}")
}

/// The provisional label of a participant created without a reserved code: `C-new-3`.
pub fn provisional_label(prefix: char, number: u32) -> String {
    format!("{prefix}-new-{number}")
}

/// Splits a provisional label such as `C-new-3` into `('C', 3)`; `None` for anything else.
pub fn parse_provisional(label: &str) -> Option<(char, u32)> {
    let mut chars = label.chars();
    let prefix = chars.next().filter(char::is_ascii_uppercase)?;
    let digits = chars.as_str().strip_prefix("-new-")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, digits.parse().ok()?))
}

/// Whether `code` is a provisional label (not yet confirmed by the server).
pub fn is_provisional(code: &str) -> bool {
    parse_provisional(code).is_some()
}

/// The group letter of a code or a provisional label.
pub fn code_prefix(code: &str) -> Option<char> {
    parse_code(code)
        .or_else(|| parse_provisional(code))
        .map(|(prefix, _)| prefix)
}

/// How many participants on the device have a provisional label, per prefix.
pub fn provisional_counts<'a>(codes: impl IntoIterator<Item = &'a str>) -> BTreeMap<char, u32> {
    let mut counts = BTreeMap::new();
    for (prefix, _) in codes.into_iter().filter_map(parse_provisional) {
        *counts.entry(prefix).or_insert(0) += 1;
    }
    counts
}

/// The numbers a device holds for one prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct PrefixPool {
    /// Reserved for this device and not given out yet.
    #[serde(default)]
    free: BTreeSet<u32>,
    /// The id of the last block received: the next request asks for blocks after it, so a
    /// block whose answer was lost comes again.
    #[serde(default)]
    cursor: i64,
    /// The last provisional number given out on this device.
    #[serde(default)]
    provisional: u32,
}

/// The participant codes a device holds: per prefix, the numbers the server reserved for it
/// and not given out yet, and the counter of provisional labels. Pure data; the app keeps it
/// sealed under [`CODE_POOL_KEY`], and every change goes through a [`CodeKeeper`] so a code
/// is marked given before any record uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodePool {
    #[serde(default)]
    prefixes: BTreeMap<char, PrefixPool>,
}

impl CodePool {
    /// Unused reserved codes of `prefix`, leaving out any in `used` (codes already on the
    /// device: a second line of defence, the pool should not hold them).
    pub fn unused(&self, prefix: char, used: &HashSet<String>) -> usize {
        self.prefixes.get(&prefix).map_or(0, |pool| {
            pool.free
                .iter()
                .filter(|&&n| !used.contains(&format_code(prefix, n)))
                .count()
        })
    }

    /// What to ask the server for: for each of `prefixes` (the current protocol's groups)
    /// and each prefix in `waiting` (participants with provisional labels, by prefix), the
    /// numbers missing to hold `target` unused after confirming those waiting. Prefixes that
    /// are not a capital letter are skipped; each `want` is at most [`MAX_BLOCK`].
    pub fn wants(
        &self,
        prefixes: &[char],
        target: u32,
        waiting: &BTreeMap<char, u32>,
        used: &HashSet<String>,
    ) -> Vec<ReserveWant> {
        let all: BTreeSet<char> = prefixes
            .iter()
            .copied()
            .chain(waiting.keys().copied())
            .filter(char::is_ascii_uppercase)
            .collect();
        all.into_iter()
            .filter_map(|prefix| {
                let need =
                    u64::from(target) + u64::from(waiting.get(&prefix).copied().unwrap_or(0));
                let have = self.unused(prefix, used) as u64;
                let missing = need.saturating_sub(have);
                (missing > 0).then(|| ReserveWant {
                    prefix: prefix.to_string(),
                    want: u32::try_from(missing).unwrap_or(u32::MAX).min(MAX_BLOCK),
                    after: self.prefixes.get(&prefix).map_or(0, |pool| pool.cursor),
                })
            })
            .collect()
    }

    /// Adds the server's blocks. A block already received (its id at or below the prefix's
    /// cursor) adds nothing, so an answer received twice is harmless. Returns how many
    /// numbers were added.
    pub fn add_blocks(&mut self, blocks: &[CodeBlock]) -> usize {
        let mut added = 0;
        for block in blocks {
            let mut chars = block.prefix.chars();
            let (Some(prefix), None) = (chars.next(), chars.next()) else {
                continue;
            };
            if !prefix.is_ascii_uppercase() || block.first == 0 {
                continue;
            }
            let pool = self.prefixes.entry(prefix).or_default();
            if block.id <= pool.cursor {
                continue;
            }
            pool.cursor = block.id;
            // A block is at most MAX_BLOCK numbers; never trust a larger one whole.
            let count = block.count.min(MAX_OUTSTANDING);
            for number in (0..count).filter_map(|i| block.first.checked_add(i)) {
                if pool.free.insert(number) {
                    added += 1;
                }
            }
        }
        added
    }

    /// Gives out the lowest unused reserved code of `prefix`, removing it from the pool;
    /// numbers whose code is in `used` are dropped on the way. `None` when there is none.
    pub fn take(&mut self, prefix: char, used: &HashSet<String>) -> Option<String> {
        let pool = self.prefixes.get_mut(&prefix)?;
        while let Some(number) = pool.free.pop_first() {
            let code = format_code(prefix, number);
            if !used.contains(&code) {
                return Some(code);
            }
        }
        None
    }

    /// A new provisional label of `prefix`, one past the last given on this device (and
    /// past any in `used`, should the pool have been lost), so a label is never reused.
    pub fn provisional(&mut self, prefix: char, used: &HashSet<String>) -> String {
        let highest_used = used
            .iter()
            .filter_map(|code| parse_provisional(code))
            .filter(|&(p, _)| p == prefix)
            .map(|(_, n)| n)
            .max()
            .unwrap_or(0);
        let pool = self.prefixes.entry(prefix).or_default();
        pool.provisional = pool.provisional.max(highest_used).saturating_add(1);
        provisional_label(prefix, pool.provisional)
    }

    /// The code of a new participant of `prefix`: the next reserved code, or a provisional
    /// label when the pool has none. `used`: every code and label on the device, purged
    /// participants' included.
    pub fn new_code(&mut self, prefix: char, used: &HashSet<String>) -> String {
        self.take(prefix, used)
            .unwrap_or_else(|| self.provisional(prefix, used))
    }
}

/// Keeps a device's [`CodePool`] durably. The sync engine and the app change the pool only
/// through [`CodeKeeper::update`], one change at a time, so a code given out is marked in
/// the kept pool before any record uses it (a crash after that burns a number, never gives
/// one twice).
///
/// Like [`crate::RecordStore`], the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait CodeKeeper {
    /// Reads the kept pool (empty if none), applies `change`, keeps the result, and returns
    /// what `change` returned; no other change runs in between.
    ///
    /// # Errors
    /// The storage failed; the pool is as before.
    async fn update<R>(&self, change: impl FnOnce(&mut CodePool) -> R) -> Result<R, StoreError>;
}

/// A [`CodeKeeper`] in memory, for tests and tools.
#[derive(Debug, Default)]
pub struct MemoryCodeKeeper {
    pool: RefCell<CodePool>,
}

impl MemoryCodeKeeper {
    /// A keeper holding `pool`.
    pub fn new(pool: CodePool) -> Self {
        Self {
            pool: RefCell::new(pool),
        }
    }

    /// A copy of the kept pool.
    pub fn pool(&self) -> CodePool {
        self.pool.borrow().clone()
    }
}

impl CodeKeeper for MemoryCodeKeeper {
    async fn update<R>(&self, change: impl FnOnce(&mut CodePool) -> R) -> Result<R, StoreError> {
        let mut pool = self.pool.borrow().clone();
        let result = change(&mut pool);
        *self.pool.borrow_mut() = pool;
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(id: i64, prefix: &str, first: u32, count: u32) -> CodeBlock {
        CodeBlock {
            id,
            prefix: prefix.into(),
            first,
            count,
        }
    }

    fn used(codes: &[&str]) -> HashSet<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn codes_and_provisional_labels_are_told_apart() {
        assert_eq!(format_code('C', 7), "C07");
        assert_eq!(format_code('K', 100), "K100");
        assert_eq!(provisional_label('C', 3), "C-new-3");
        assert_eq!(parse_provisional("C-new-3"), Some(('C', 3)));
        assert_eq!(parse_provisional("K-new-12"), Some(('K', 12)));
        for not in [
            "C07", "C-new-", "c-new-1", "C-new-1a", "CC-new-1", "C-NEW-1", "",
        ] {
            assert_eq!(parse_provisional(not), None, "{not:?}");
        }
        // A provisional label is never a code, so nothing takes it for a final one.
        assert_eq!(parse_code("C-new-3"), None);
        assert!(is_provisional("M-new-1"));
        assert!(!is_provisional("M01"));
        assert_eq!(code_prefix("C07"), Some('C'));
        assert_eq!(code_prefix("K-new-2"), Some('K'));
        assert_eq!(code_prefix("carer"), None);
        assert_eq!(
            provisional_counts(["C-new-1", "C01", "C-new-4", "K-new-1"]),
            BTreeMap::from([('C', 2), ('K', 1)])
        );
    }

    #[test]
    fn an_empty_pool_gives_provisional_labels_that_count_up_and_are_never_reused() {
        let mut pool = CodePool::default();
        assert_eq!(pool.new_code('C', &used(&[])), "C-new-1");
        assert_eq!(pool.new_code('C', &used(&["C-new-1"])), "C-new-2");
        assert_eq!(
            pool.new_code('K', &used(&["C-new-1", "C-new-2"])),
            "K-new-1"
        );
        // C-new-2 was confirmed (it is gone from the device): 3 comes next, not 2 again.
        assert_eq!(pool.new_code('C', &used(&["C-new-1", "C07"])), "C-new-3");
        // A pool that was lost still counts past the labels on the device.
        let mut lost = CodePool::default();
        assert_eq!(
            lost.new_code('C', &used(&["C-new-5", "C-new-2"])),
            "C-new-6"
        );
    }

    #[test]
    fn reserved_codes_are_given_lowest_first_and_once() {
        let mut pool = CodePool::default();
        assert_eq!(pool.add_blocks(&[block(4, "C", 11, 3)]), 3);
        assert_eq!(pool.unused('C', &used(&[])), 3);
        assert_eq!(pool.new_code('C', &used(&[])), "C11");
        assert_eq!(pool.new_code('C', &used(&["C11"])), "C12");
        assert_eq!(pool.unused('C', &used(&[])), 1);
        // A code already on the device (a crash between taking and keeping) is skipped.
        assert_eq!(pool.new_code('C', &used(&["C11", "C12", "C13"])), "C-new-1");
        assert_eq!(pool.unused('C', &used(&[])), 0);
        // No reserved code of another group is ever used.
        assert_eq!(pool.take('K', &used(&[])), None);
    }

    #[test]
    fn a_block_received_twice_is_added_once() {
        let mut pool = CodePool::default();
        let blocks = [block(1, "C", 1, 5), block(2, "K", 1, 5)];
        assert_eq!(pool.add_blocks(&blocks), 10);
        assert_eq!(pool.take('C', &used(&[])).as_deref(), Some("C01"));
        // The same answer again (a retry after a lost answer, read twice): nothing comes
        // back, and C01 is not given a second time.
        assert_eq!(pool.add_blocks(&blocks), 0);
        assert_eq!(pool.unused('C', &used(&[])), 4);
        assert_eq!(pool.take('C', &used(&[])).as_deref(), Some("C02"));
        // Bad blocks are ignored.
        let bad = [
            block(9, "CC", 1, 5),
            block(9, "c", 1, 5),
            block(9, "", 1, 5),
            block(9, "P", 0, 5),
        ];
        assert_eq!(pool.add_blocks(&bad), 0);
        // A block larger than any the server gives is not taken whole.
        assert_eq!(pool.add_blocks(&[block(10, "M", 1, u32::MAX)]), 50);
        assert_eq!(
            pool.add_blocks(&[block(11, "M", u32::MAX - 1, 5)]),
            2,
            "no overflow"
        );
    }

    #[test]
    fn wants_top_each_group_up_to_the_target_after_confirming_those_waiting() {
        let mut pool = CodePool::default();
        let none = BTreeMap::new();
        let wants = pool.wants(&['P', 'M', 'C', 'K'], POOL_TARGET, &none, &used(&[]));
        let asked: Vec<(&str, u32, i64)> = wants
            .iter()
            .map(|w| (w.prefix.as_str(), w.want, w.after))
            .collect();
        assert_eq!(asked, [("C", 5, 0), ("K", 5, 0), ("M", 5, 0), ("P", 5, 0)]);

        pool.add_blocks(&[block(7, "C", 1, 5), block(8, "K", 1, 3)]);
        pool.take('C', &used(&[]));
        // Two carers wait with provisional labels: C needs 5 + 2 - 4 = 3 more.
        let waiting = BTreeMap::from([('C', 2)]);
        let wants = pool.wants(&['C', 'K'], POOL_TARGET, &waiting, &used(&[]));
        let asked: Vec<(&str, u32, i64)> = wants
            .iter()
            .map(|w| (w.prefix.as_str(), w.want, w.after))
            .collect();
        assert_eq!(asked, [("C", 3, 7), ("K", 2, 8)]);

        // A group no longer in the protocol is still asked for while someone waits in it;
        // a want is never over the cap; nothing is asked for a full pool.
        let waiting = BTreeMap::from([('Z', 100)]);
        let wants = pool.wants(&[], POOL_TARGET, &waiting, &used(&[]));
        assert_eq!(wants.len(), 1);
        assert_eq!((wants[0].prefix.as_str(), wants[0].want), ("Z", MAX_BLOCK));
        pool.add_blocks(&[block(9, "K", 20, 5)]);
        assert!(
            pool.wants(&['K'], POOL_TARGET, &none, &used(&[]))
                .is_empty()
        );
        assert!(
            pool.wants(&['k', '1'], POOL_TARGET, &none, &used(&[]))
                .is_empty()
        );
    }

    #[test]
    fn the_pool_survives_being_kept_as_json() {
        let mut pool = CodePool::default();
        pool.add_blocks(&[block(3, "C", 4, 2)]);
        pool.provisional('K', &used(&[]));
        let json = serde_json::to_string(&pool).unwrap();
        let back: CodePool = serde_json::from_str(&json).unwrap();
        assert_eq!(back, pool);
        assert_eq!(
            serde_json::from_str::<CodePool>("{}").unwrap(),
            CodePool::default()
        );
    }

    #[test]
    fn the_memory_keeper_keeps_each_change() {
        let keeper = MemoryCodeKeeper::default();
        let code = futures_executor::block_on(keeper.update(|pool| {
            pool.add_blocks(&[block(1, "C", 1, 2)]);
            pool.take('C', &HashSet::new())
        }))
        .unwrap();
        assert_eq!(code.as_deref(), Some("C01"));
        assert_eq!(keeper.pool().unused('C', &HashSet::new()), 1);
    }
}
