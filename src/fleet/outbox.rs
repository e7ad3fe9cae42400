//! [`Outbox`]: the invalidations a replica has yet to publish, in the order the courier tries
//! them.
//!
//! - **What failed waits behind what has not been tried.** In a Redis Cluster an invalidation
//!   can fail for its own master alone (a take-back of a token whose master is down waits for
//!   that master to come back; a "forget everything", for every master), and must not hold up
//!   the others: the courier tries what waits first, then what failed, oldest first.
//! - **"Forget everything" covers the forgets behind it** while it is next and not yet tried (a
//!   forget left or returned then is dropped), but not the sign-outs, which are refusals, not
//!   forgets. Once it failed, it covers nothing more: the forgets left after it go out first.
//! - **Bounded**: past [`OUTBOX_LIMIT`] the forgets collapse into one "forget everything".
//!
//! The order of the rest does not matter: every invalidation only ever takes trust away.

use std::collections::VecDeque;

use super::Invalidation;

/// Invalidations kept while Redis cannot be reached. Past this the forgets collapse into one
/// "forget everything", which covers them; sign-outs are kept, each one.
pub(super) const OUTBOX_LIMIT: usize = 10_000;

/// What waits to be published: see the [module](self).
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// Not tried yet (by the courier; the caller's own attempt may have failed), oldest first.
    waiting: VecDeque<Invalidation>,
    /// Tried by the courier and failed, oldest failure first.
    failed: VecDeque<Invalidation>,
}

impl Outbox {
    /// Leaves `invalidation` to be published; whether the outbox overflowed, collapsing its
    /// forgets into "forget everything".
    pub(super) fn leave(&mut self, invalidation: Invalidation) -> bool {
        let overflowed = self.len() >= OUTBOX_LIMIT && !self.forgets_everything_next();
        if overflowed {
            let sign_out = |waiting: &Invalidation| matches!(waiting, Invalidation::Revoked(..));
            self.waiting.retain(sign_out);
            self.failed.retain(sign_out);
            self.waiting.push_front(Invalidation::All);
        }
        if !self.covers(&invalidation) {
            self.waiting.push_back(invalidation);
        }
        overflowed
    }

    /// The next invalidation for the courier to publish, out of the outbox while it is under
    /// way: an invalidation left meanwhile is kept, even behind a "forget everything" whose
    /// deletes may already have passed its token.
    pub(super) fn take(&mut self) -> Option<Invalidation> {
        self.waiting.pop_front().or_else(|| self.failed.pop_front())
    }

    /// Returns an invalidation the courier could not publish, behind everything not tried yet,
    /// unless a "forget everything" that took over meanwhile covers it.
    pub(super) fn put_back(&mut self, invalidation: Invalidation) {
        if !self.covers(&invalidation) {
            self.failed.push_back(invalidation);
        }
    }

    /// Invalidations waiting, the failed ones included.
    pub(super) fn len(&self) -> usize {
        self.waiting.len() + self.failed.len()
    }

    /// Whether "forget everything" is the next to go, so covers the forgets after it.
    fn forgets_everything_next(&self) -> bool {
        self.waiting.front() == Some(&Invalidation::All)
    }

    /// Whether what goes next already does what `invalidation` would.
    fn covers(&self, invalidation: &Invalidation) -> bool {
        self.forgets_everything_next() && !matches!(invalidation, Invalidation::Revoked(..))
    }

    /// Everything waiting, in the order the courier takes it.
    #[cfg(test)]
    pub(super) fn in_order(&self) -> Vec<Invalidation> {
        self.waiting.iter().chain(&self.failed).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::token::TokenDigest;

    fn forget(token: &str) -> Invalidation {
        Invalidation::Token(TokenDigest::of(token))
    }

    fn sign_out(token: &str) -> Invalidation {
        Invalidation::Revoked(TokenDigest::of(token), Duration::from_secs(1))
    }

    #[test]
    fn what_failed_waits_behind_what_was_not_tried_oldest_failure_first() {
        let mut outbox = Outbox::default();
        for token in ["a", "b", "c"] {
            assert!(!outbox.leave(forget(token)));
        }
        let a = outbox.take().unwrap();
        outbox.put_back(a);
        let b = outbox.take().unwrap();
        outbox.put_back(b);
        outbox.leave(sign_out("d"));
        assert_eq!(
            outbox.in_order(),
            [forget("c"), sign_out("d"), forget("a"), forget("b")]
        );
        assert_eq!(outbox.len(), 4);
        let taken: Vec<_> = std::iter::from_fn(|| outbox.take()).collect();
        assert_eq!(
            taken,
            [forget("c"), sign_out("d"), forget("a"), forget("b")]
        );
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn a_forget_left_while_forgetting_everything_is_under_way_is_kept() {
        let mut outbox = Outbox::default();
        outbox.leave(Invalidation::All);
        outbox.leave(forget("forgotten"));
        assert_eq!(
            outbox.in_order(),
            [Invalidation::All],
            "covered while it waits"
        );

        // The courier publishes "forget everything": its deletes may pass a token whose verdict
        // is shared later, so a forget of that token left now must still go out.
        assert_eq!(outbox.take(), Some(Invalidation::All));
        outbox.leave(forget("forgotten"));
        assert_eq!(outbox.in_order(), [forget("forgotten")]);
    }

    #[test]
    fn what_the_courier_could_not_publish_goes_back_unless_covered() {
        // "Forget everything" failed (a master down), a forget arrived meanwhile: both wait, the
        // forget first, as does one left after the failure: a failed "forget everything" holds
        // up no forget.
        let mut outbox = Outbox::default();
        outbox.leave(Invalidation::All);
        let under_way = outbox.take().unwrap();
        outbox.leave(forget("forgotten"));
        outbox.put_back(under_way);
        outbox.leave(forget("later"));
        assert_eq!(
            outbox.in_order(),
            [forget("forgotten"), forget("later"), Invalidation::All]
        );

        // A forget that failed while an overflow put "forget everything" in front: covered.
        let mut outbox = Outbox::default();
        outbox.leave(forget("forgotten"));
        let under_way = outbox.take().unwrap();
        outbox.leave(Invalidation::All);
        outbox.put_back(under_way);
        assert_eq!(outbox.in_order(), [Invalidation::All]);

        // A sign-out never is.
        let mut outbox = Outbox::default();
        outbox.leave(sign_out("out"));
        let under_way = outbox.take().unwrap();
        outbox.leave(Invalidation::All);
        outbox.put_back(under_way);
        assert_eq!(outbox.in_order(), [Invalidation::All, sign_out("out")]);
    }

    #[test]
    fn an_overflowing_outbox_collapses_into_forgetting_everything() {
        let mut outbox = Outbox::default();
        outbox.leave(sign_out("kept"));
        let failed = outbox.take().unwrap();
        outbox.put_back(failed);
        outbox.leave(forget("failed"));
        let failed = outbox.take().unwrap();
        outbox.put_back(failed);
        for i in 2..OUTBOX_LIMIT {
            assert!(!outbox.leave(forget(&i.to_string())));
        }
        assert_eq!(outbox.len(), OUTBOX_LIMIT);
        assert!(outbox.leave(Invalidation::User("U1".into())));
        assert!(!outbox.leave(forget("later")));
        assert!(!outbox.leave(sign_out("later")));
        assert_eq!(
            outbox.in_order(),
            [Invalidation::All, sign_out("later"), sign_out("kept")],
            "the forgets, failed ones too, covered; the sign-outs kept"
        );
    }
}
