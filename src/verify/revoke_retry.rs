//! Retrying a logout's revoke that LINE failed, or that did not reach it, in the background.
//!
//! The caller of a logout cannot retry it: from the logout on, the layer refuses the token, so a
//! second `POST /api/logout` with it never reaches the handler. Yet until LINE revokes the token
//! it stays live there (up to 30 days) for anything else that holds it. So the layer retries:
//!
//! - with waits doubling from a second to five minutes, never shorter than LINE's `Retry-After`;
//! - for at most an hour after the logout, and never past the token's expiry;
//! - for at most [`MAX_WAITING`] tokens at once per layer; beyond them a failed revoke is only
//!   logged. Each waiting revoke holds its token in memory, as the revoke itself did.
//!
//! A refusal (`invalid_client`, a token LINE no longer knows) ends the retries: waiting would not
//! change LINE's answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// At most this many revokes wait for a retry per layer.
pub(super) const MAX_WAITING: usize = 1_000;

/// How long after a logout its revoke is retried, at most.
const WINDOW: Duration = Duration::from_secs(60 * 60);

const FIRST_WAIT: Duration = Duration::from_secs(1);

const LONGEST_WAIT: Duration = Duration::from_secs(5 * 60);

/// The revokes waiting for a retry, counted against [`MAX_WAITING`].
#[derive(Default)]
pub(super) struct RevokeRetries {
    waiting: Arc<AtomicUsize>,
}

impl RevokeRetries {
    /// A place for one more revoke, if one is free.
    pub(super) fn take_place(&self) -> Option<Place> {
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |waiting| {
                (waiting < MAX_WAITING).then_some(waiting + 1)
            })
            .ok()
            .map(|_| Place(Arc::clone(&self.waiting)))
    }
}

/// One revoke's place among those waiting; given back when dropped, however its task ends.
pub(super) struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The waits before each retry of a revoke whose token is refused here for `lasting`: doubling
/// from [`FIRST_WAIT`] to [`LONGEST_WAIT`], ending before [`WINDOW`] or `lasting` is spent.
pub(super) struct Schedule {
    next: Duration,
    left: Duration,
}

impl Schedule {
    pub(super) fn new(lasting: Duration) -> Self {
        Self {
            next: FIRST_WAIT,
            left: WINDOW.min(lasting),
        }
    }

    /// The wait before the next retry, at least `asked` (LINE's `Retry-After`); `None` once the
    /// retries are over.
    pub(super) fn wait(&mut self, asked: Option<Duration>) -> Option<Duration> {
        let wait = self.next.max(asked.unwrap_or_default());
        self.left = self.left.checked_sub(wait)?;
        self.next = (self.next * 2).min(LONGEST_WAIT);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_waiting_places_and_a_dropped_one_is_free_again() {
        let retries = RevokeRetries::default();
        let mut places: Vec<Place> = (0..MAX_WAITING)
            .map(|_| retries.take_place().expect("a free place"))
            .collect();
        assert!(retries.take_place().is_none(), "one past the bound");
        places.pop();
        assert!(retries.take_place().is_some(), "a place given back is free");
    }

    #[test]
    fn waits_double_to_five_minutes_and_honour_lines_wait() {
        let mut schedule = Schedule::new(Duration::MAX);
        let waits: Vec<u64> = std::iter::from_fn(|| schedule.wait(None))
            .map(|wait| wait.as_secs())
            .take(11)
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);

        let mut schedule = Schedule::new(Duration::MAX);
        assert_eq!(
            schedule.wait(Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(schedule.wait(None), Some(Duration::from_secs(2)));
    }

    #[test]
    fn retries_end_within_the_hour_or_the_tokens_life() {
        let total = |lasting| {
            let mut schedule = Schedule::new(lasting);
            std::iter::from_fn(|| schedule.wait(None)).sum::<Duration>()
        };
        assert!(total(Duration::MAX) <= WINDOW);
        assert!(total(Duration::MAX) > WINDOW - LONGEST_WAIT);
        assert_eq!(total(Duration::from_secs(10)), Duration::from_secs(7));
        assert_eq!(total(Duration::ZERO), Duration::ZERO);

        let mut schedule = Schedule::new(Duration::MAX);
        assert_eq!(
            schedule.wait(Some(2 * WINDOW)),
            None,
            "LINE asks past the hour"
        );
    }
}
