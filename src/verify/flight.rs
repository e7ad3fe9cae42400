//! Single flight: one verification per token however many requests wait for it, bounded in
//! number, and aware of callers who left.
//!
//! A flight remembers whether its token (or its user, or everything) was forgotten while it was
//! in the air; its verdict is then handed to its waiters but not kept. The verdict is kept under
//! the same lock that a forget takes, so there is no window between the check and the insert.
//! A request that arrives after such a forget does not join the flight: it starts one of its own,
//! so a forgotten token is verified with LINE again at its next request, as a cached one is. The
//! older flight is set aside, lands for the waiters it has, and keeps nothing: the newer one
//! fills the caches. So a token has one flight that requests join, and after a forget, older ones
//! besides until they land (one per forget followed by a request, all within the bound).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use tokio::sync::{oneshot, AcquireError, Semaphore, SemaphorePermit};

use crate::clock::Instant;
use crate::rejection::{LineAuthError, UpstreamError};
use crate::token::{DigestHashBuilder, TokenDigest};
use crate::user::LineUser;

/// A verification's outcome, shared by every request that waited on it.
pub(crate) type Verdict = Result<LineUser, LineAuthError>;

pub(crate) type Waiters = Vec<oneshot::Sender<Verdict>>;

/// The verifications under way, by token.
pub(crate) struct Flights {
    state: Mutex<State>,
    max_pending: usize,
}

#[derive(Default)]
struct State {
    /// The flights new requests join, one per token.
    flights: HashMap<TokenDigest, Flight, DigestHashBuilder>,
    /// Flights forgotten (or perhaps forgotten: a first-time token's user is known only when it
    /// lands) while in the air, then replaced by a newer flight of the same token. Each still
    /// lands for the waiters it has, and keeps nothing; none joins it. Few, and short-lived: a
    /// forget while a verification of the same token is waiting for LINE, then another request
    /// for that token. They count towards the bound.
    superseded: Vec<Flight>,
    /// Users forgotten since the oldest flight started, and when.
    forgotten_users: Vec<(Box<str>, Instant)>,
    /// The serial number the next flight gets.
    next_serial: u64,
}

struct Flight {
    serial: u64,
    waiters: Waiters,
    started: Instant,
    /// The user of a token verified here before (its re-check), known before LINE answers.
    user: Option<LineUser>,
    /// The token was forgotten (or everything was) after the flight started.
    forgotten: bool,
}

/// Names one flight: its token, and which of the token's flights (a forget can leave a newer one
/// beside it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FlightId {
    digest: TokenDigest,
    serial: u64,
}

impl FlightId {
    pub(crate) fn digest(&self) -> TokenDigest {
        self.digest
    }
}

impl State {
    /// Whether `user` (any user, when it is not known) was forgotten since `started`.
    fn user_forgotten_since(&self, user: Option<&str>, started: Instant) -> bool {
        self.forgotten_users
            .iter()
            .any(|(forgotten, at)| *at >= started && user.is_none_or(|user| **forgotten == *user))
    }

    /// Whether requests arriving now may wait on `flight`: not if it was forgotten since it began.
    fn joinable(&self, flight: &Flight) -> bool {
        let user = flight.user.as_ref().map(LineUser::user_id);
        !flight.forgotten && !self.user_forgotten_since(user, flight.started)
    }

    fn flight_mut(&mut self, id: FlightId) -> Option<&mut Flight> {
        match self.flights.get_mut(&id.digest) {
            Some(flight) if flight.serial == id.serial => Some(flight),
            _ => self
                .superseded
                .iter_mut()
                .find(|flight| flight.serial == id.serial),
        }
    }

    /// Takes `id` out, and says whether it had been set aside for a newer flight.
    fn remove(&mut self, id: FlightId) -> Option<(Flight, bool)> {
        if self
            .flights
            .get(&id.digest)
            .is_some_and(|flight| flight.serial == id.serial)
        {
            return self
                .flights
                .remove(&id.digest)
                .map(|flight| (flight, false));
        }
        let at = self
            .superseded
            .iter()
            .position(|flight| flight.serial == id.serial)?;
        Some((self.superseded.swap_remove(at), true))
    }

    /// Ends `id` with no verdict to keep, as [`remove`](Self::remove), then lets go of the
    /// forgotten users no flight needs any more.
    fn end(&mut self, id: FlightId) -> Option<(Flight, bool)> {
        let ended = self.remove(id);
        self.prune_forgotten_users();
        ended
    }

    /// Once a flight ends: only the flights requests join need the forgotten users (one set
    /// aside keeps nothing), and only those forgotten since the oldest of them began.
    fn prune_forgotten_users(&mut self) {
        match self.flights.values().map(|flight| flight.started).min() {
            None => self.forgotten_users.clear(),
            Some(oldest) => self.forgotten_users.retain(|(_, at)| *at >= oldest),
        }
    }

    fn in_the_air(&self) -> usize {
        self.flights.len() + self.superseded.len()
    }
}

/// How a request joined the verification of its token.
pub(crate) enum Joined {
    /// It waits on a flight already under way.
    Waiting(PendingVerdict),
    /// The verdict was settled without a flight (a flight landed meanwhile, or a sign-out).
    Settled(PendingVerdict),
    /// It started the flight: the caller runs the verification and lands it.
    Started(PendingVerdict, FlightId),
    /// Too many verifications are pending: refuse fast.
    Full,
}

impl Flights {
    pub(crate) fn new(max_pending: usize) -> Self {
        Self {
            state: Mutex::default(),
            max_pending,
        }
    }

    /// Joins the flight of `digest`, or starts one unless `settled` (looked at under the lock,
    /// since a flight fills the caches before it leaves) already has the verdict. A `known`
    /// token (a re-check, with the user it was verified as) may start one past the bound, up to
    /// twice it: junk cannot lock it out. A flight forgotten since it started (its token,
    /// everything, or its user; any user, for a first-time token whose user is not known yet) is
    /// not joined: its answer predates the forget.
    pub(crate) fn join(
        &self,
        digest: TokenDigest,
        now: Instant,
        known: Option<LineUser>,
        settled: impl FnOnce() -> Option<Verdict>,
    ) -> Joined {
        let (sender, receiver) = oneshot::channel();
        let pending = PendingVerdict { receiver };
        let mut state = self.lock();
        let joinable = state
            .flights
            .get(&digest)
            .map(|flight| state.joinable(flight));
        if joinable == Some(true) {
            if let Some(flight) = state.flights.get_mut(&digest) {
                // Callers who hung up are let go before the list would grow: a flight holds a few
                // times the most callers that waited on it at once, not every one that came and
                // left. Where most still wait, the list doubles, so each sweep is paid for by as
                // many joins as it read (O(1) a join, amortised).
                if flight.waiters.len() == flight.waiters.capacity() {
                    flight.waiters.retain(|waiter| !waiter.is_closed());
                    if flight.waiters.len() > flight.waiters.capacity() / 2 {
                        flight.waiters.reserve(flight.waiters.capacity());
                    }
                }
                flight.waiters.push(sender);
            }
            return Joined::Waiting(pending);
        }
        // The start is read under the lock, so it orders with every forget of a user.
        let now = now.max(crate::clock::now());
        if let Some(verdict) = settled() {
            let _ = sender.send(verdict);
            return Joined::Settled(pending);
        }
        // First-time tokens up to the bound; re-checks as many again, so junk cannot lock them
        // out and they cannot grow without one either.
        let bound = match known {
            None => self.max_pending,
            Some(_) => self.max_pending.saturating_mul(2),
        };
        if state.in_the_air() >= bound {
            return Joined::Full;
        }
        // Only now, with a newer flight sure to start, is the older one set aside: a request
        // settled or refused leaves it to keep its verdict, as it would have.
        if let Some(older) = state.flights.remove(&digest) {
            state.superseded.push(older);
        }
        let serial = state.next_serial;
        state.next_serial += 1;
        state.flights.insert(
            digest,
            Flight {
                serial,
                waiters: vec![sender],
                started: now,
                user: known,
                forgotten: false,
            },
        );
        Joined::Started(pending, FlightId { digest, serial })
    }

    /// Whether anyone still waits for the verdict of `flight`: a flight whose callers all hung
    /// up is not worth a call to LINE, and ends here, under the same lock, so that a request
    /// arriving after starts a flight of its own rather than join one that will not ask LINE.
    pub(crate) fn wanted_or_end(&self, flight: FlightId) -> bool {
        let mut state = self.lock();
        let wanted = state
            .flight_mut(flight)
            .is_some_and(|flight| flight.waiters.iter().any(|waiter| !waiter.is_closed()));
        if !wanted {
            let ended = state.end(flight);
            drop(state);
            drop(ended);
        }
        wanted
    }

    /// The flight of `digest`, if any, will not keep its verdict.
    pub(crate) fn forget(&self, digest: &TokenDigest) {
        // A flight set aside keeps nothing already.
        if let Some(flight) = self.lock().flights.get_mut(digest) {
            flight.forgotten = true;
        }
    }

    /// Flights under way now will not keep a verdict for `user_id`.
    pub(crate) fn forget_user(&self, user_id: &str) {
        let mut state = self.lock();
        if !state.flights.is_empty() {
            // Read under the lock, so it orders with every flight's start.
            let now = crate::clock::now();
            state.forgotten_users.push((user_id.into(), now));
        }
    }

    /// Flights under way now will not keep their verdicts.
    pub(crate) fn forget_all(&self) {
        for flight in self.lock().flights.values_mut() {
            flight.forgotten = true;
        }
    }

    /// Ends `flight`. `keep` runs under the lock, unless the token, its user (`user`, when the
    /// verdict names one) or everything was forgotten since the flight started, or the flight was
    /// set aside for a newer one (which keeps its own verdict). Returns the waiters and whether
    /// `keep` ran.
    pub(crate) fn land(
        &self,
        flight: FlightId,
        user: Option<&str>,
        keep: impl FnOnce(),
    ) -> (Waiters, bool) {
        let mut state = self.lock();
        let Some((flight, superseded)) = state.remove(flight) else {
            return (Waiters::new(), false);
        };
        let user_forgotten =
            user.is_some_and(|user| state.user_forgotten_since(Some(user), flight.started));
        let kept = !flight.forgotten && !user_forgotten && !superseded;
        if kept {
            keep();
        }
        state.prune_forgotten_users();
        (flight.waiters, kept)
    }

    /// Ends `flight` with no verdict; dropping the waiters wakes them with
    /// [`UpstreamError::Abandoned`].
    pub(crate) fn abandon(&self, flight: FlightId) {
        let ended = self.lock().end(flight);
        drop(ended);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().in_the_air()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Turns at asking LINE. A quarter (none below four turns) is kept for tokens verified before
/// (re-checks once their verdict is stale), so a burst of first-time junk cannot queue them out.
pub(crate) struct Permits {
    all: Semaphore,
    first_time: Semaphore,
}

impl Permits {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            all: Semaphore::new(limit),
            first_time: Semaphore::new((limit - limit / 4).max(1)),
        }
    }

    /// Waits for a turn; `known`: the token was verified here before.
    pub(crate) async fn acquire(&self, known: bool) -> Result<Permit<'_>, AcquireError> {
        let first_time = match known {
            true => None,
            false => Some(self.first_time.acquire().await?),
        };
        Ok(Permit {
            _first_time: first_time,
            _any: self.all.acquire().await?,
        })
    }
}

/// A turn at asking LINE, given back when dropped.
pub(crate) struct Permit<'a> {
    _first_time: Option<SemaphorePermit<'a>>,
    _any: SemaphorePermit<'a>,
}

/// Resolves to the verdict of a verification under way.
pub(crate) struct PendingVerdict {
    receiver: oneshot::Receiver<Verdict>,
}

impl Future for PendingVerdict {
    type Output = Verdict;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Verdict> {
        let received = ready!(Pin::new(&mut self.receiver).poll(cx));
        Poll::Ready(received.unwrap_or(Err(LineAuthError::Unavailable(UpstreamError::Abandoned))))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock;

    fn user(user_id: &str) -> LineUser {
        LineUser::for_tests(user_id)
    }

    fn started(flights: &Flights, digest: TokenDigest, now: Instant) -> (PendingVerdict, FlightId) {
        match flights.join(digest, now, None, || None) {
            Joined::Started(pending, flight) => (pending, flight),
            _ => panic!("expected to start a flight"),
        }
    }

    #[test]
    fn a_second_request_joins_the_flight_and_a_settled_verdict_starts_none() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (_leader, flight) = started(&flights, digest, t0);
        assert!(matches!(
            flights.join(digest, t0, None, || panic!(
                "not looked at while a flight is under way"
            )),
            Joined::Waiting(_)
        ));
        let (waiters, kept) = flights.land(flight, None, || {});
        assert_eq!((waiters.len(), kept), (2, true));
        assert!(matches!(
            flights.join(digest, t0, None, || Some(Ok(user("U1")))),
            Joined::Settled(_)
        ));
        assert_eq!(flights.len(), 0);
    }

    #[test]
    fn past_the_bound_a_new_flight_is_refused() {
        let flights = Flights::new(1);
        let t0 = clock::now();
        let _first = started(&flights, TokenDigest::of("a"), t0);
        assert!(matches!(
            flights.join(TokenDigest::of("b"), t0, None, || None),
            Joined::Full
        ));
        assert!(
            matches!(
                flights.join(TokenDigest::of("c"), t0, Some(user("U3")), || None),
                Joined::Started(..)
            ),
            "a re-check of a known token is not locked out"
        );
    }

    /// Re-checks are bounded too: as many again as first-time tokens, so that junk cannot lock
    /// them out and a LINE outage with every user returning cannot grow them without bound.
    #[test]
    fn re_checks_of_known_tokens_have_a_bound_of_their_own() {
        let flights = Flights::new(2);
        let t0 = clock::now();
        let _junk = [
            started(&flights, TokenDigest::of("a"), t0),
            started(&flights, TokenDigest::of("b"), t0),
        ];
        for known in ["c", "d"] {
            assert!(matches!(
                flights.join(TokenDigest::of(known), t0, Some(user("U3")), || None),
                Joined::Started(..)
            ));
        }
        assert!(matches!(
            flights.join(TokenDigest::of("e"), t0, Some(user("U3")), || None),
            Joined::Full
        ));
    }

    #[test]
    fn a_forgotten_token_user_or_everything_keeps_no_verdict() {
        let flights = Flights::new(10);
        let t0 = clock::now();
        let later = t0 + Duration::from_millis(1);
        let (a, b, c, d) = (
            TokenDigest::of("a"),
            TokenDigest::of("b"),
            TokenDigest::of("c"),
            TokenDigest::of("d"),
        );
        let (_a, a) = started(&flights, a, t0);
        let (_b, b) = started(&flights, b, t0);
        let (_c, c) = started(&flights, c, t0);

        flights.forget(&a.digest());
        flights.forget_user("U2");
        assert!(!flights.land(a, Some("U1"), || panic!("forgotten")).1);
        assert!(!flights.land(b, Some("U2"), || panic!("user forgotten")).1);
        let mut kept = false;
        assert!(flights.land(c, Some("U3"), || kept = true).1);
        assert!(kept, "another user's verdict is kept");

        let (_d, d) = started(&flights, d, later + Duration::from_millis(1));
        flights.forget_all();
        assert!(!flights.land(d, None, || panic!("everything forgotten")).1);
    }

    #[test]
    fn a_user_forgotten_before_the_flight_started_does_not_count() {
        let flights = Flights::new(10);
        let t0 = clock::now();
        let (a, b) = (TokenDigest::of("a"), TokenDigest::of("b"));
        let _first = started(&flights, a, t0);
        flights.forget_user("U1");
        let (_second, b) = started(&flights, b, clock::now() + Duration::from_secs(1));
        assert!(flights.land(b, Some("U1"), || {}).1);
    }

    #[test]
    fn a_flight_whose_callers_all_left_is_not_wanted() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (leader, flight) = started(&flights, digest, t0);
        assert!(flights.wanted_or_end(flight));
        drop(leader);
        assert!(!flights.wanted_or_end(flight));
        flights.abandon(flight);
        assert!(!flights.wanted_or_end(flight), "nor one that has ended");
    }

    /// Found unwanted, a flight ends then and there: a request arriving after starts a flight
    /// of its own and is answered, rather than joining one that will not ask LINE.
    #[test]
    fn a_request_after_a_flight_was_found_unwanted_starts_its_own() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (leader, flight) = started(&flights, digest, t0);
        drop(leader);
        assert!(!flights.wanted_or_end(flight));

        let (_late, _its_own) = started(&flights, digest, clock::now());
        assert_eq!(flights.len(), 1, "the unwanted flight ended");
    }

    /// A flight found unwanted, or abandoned, ends as one that lands does: the users forgotten
    /// while it was under way are no longer kept for it.
    #[test]
    fn every_way_a_flight_ends_lets_the_forgotten_users_go() {
        for end in ["unwanted", "abandoned", "landed"] {
            let flights = Flights::new(10);
            let (t0, digest) = (clock::now(), TokenDigest::of("t"));
            let (leader, flight) = started(&flights, digest, t0);
            flights.forget_user("U1");
            assert_eq!(flights.lock().forgotten_users.len(), 1);
            match end {
                "unwanted" => {
                    drop(leader);
                    assert!(!flights.wanted_or_end(flight));
                }
                "abandoned" => flights.abandon(flight),
                _ => drop(flights.land(flight, None, || {})),
            }
            assert!(flights.lock().forgotten_users.is_empty(), "{end}");
        }
    }

    /// Callers who hang up while a flight is under way do not pile up in it: a flight holds a
    /// few times as many waiters as wait at once, however many came and left.
    #[test]
    fn waiters_who_left_do_not_pile_up_in_a_flight() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (_leader, _flight) = started(&flights, digest, t0);
        let mut staying = Vec::new();
        for request in 0..10_000 {
            match flights.join(digest, t0, None, || None) {
                Joined::Waiting(pending) if request % 1_000 == 0 => staying.push(pending),
                Joined::Waiting(left) => drop(left),
                _ => panic!("expected to join the flight"),
            }
        }
        let held = flights.lock().flights[&digest].waiters.len();
        assert!(
            held <= 64,
            "{held} waiters held for {} waiting",
            staying.len() + 1
        );
    }

    #[tokio::test]
    async fn an_abandoned_flight_wakes_its_waiters_with_unavailable() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (pending, flight) = started(&flights, digest, t0);
        flights.abandon(flight);
        assert!(matches!(
            pending.await,
            Err(LineAuthError::Unavailable(UpstreamError::Abandoned))
        ));
    }

    /// After a forget, its token's next request starts a flight of its own: the flight in the air
    /// began before the forget. The older one lands for its own waiter and keeps nothing; the
    /// newer one keeps its verdict. Each is wanted and lands on its own.
    #[test]
    fn a_request_after_a_forget_starts_a_flight_of_its_own() {
        type Forget = fn(&Flights, &TokenDigest);
        let forgets: [(&str, Forget); 3] = [
            ("the token", |flights, digest| flights.forget(digest)),
            ("a user", |flights, _| flights.forget_user("U9")),
            ("everything", |flights, _| flights.forget_all()),
        ];
        for (what, forget) in forgets {
            let flights = Flights::new(10);
            let digest = TokenDigest::of("t");
            let (_before, old) = started(&flights, digest, clock::now());
            forget(&flights, &digest);
            let later = clock::now() + Duration::from_millis(1);
            let (_after, new) = match flights.join(digest, later, None, || None) {
                Joined::Started(pending, flight) => (pending, flight),
                _ => panic!("after forgetting {what}, a request joined the older flight"),
            };
            assert_ne!(old, new);
            let Joined::Waiting(_next) = flights.join(digest, later, None, || None) else {
                panic!("the newer flight is joined ({what})");
            };
            assert_eq!(flights.len(), 2);

            assert!(
                flights.wanted_or_end(old) && flights.wanted_or_end(new),
                "{what}"
            );
            let (waiters, kept) = flights.land(new, Some("U1"), || {});
            assert_eq!((waiters.len(), kept), (2, true), "{what}");
            // Landing after the newer one, the older one must not overwrite its verdict.
            let (waiters, kept) = flights.land(old, Some("U1"), || panic!("set aside ({what})"));
            assert_eq!((waiters.len(), kept), (1, false), "{what}");
            assert_eq!(flights.len(), 0);
        }
    }

    /// A re-check's user is known before LINE answers: forgetting another user leaves its flight
    /// joinable (no second call to LINE), forgetting its own does not.
    #[test]
    fn a_re_check_is_set_aside_only_when_its_own_user_is_forgotten() {
        let flights = Flights::new(10);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (_first, old) = match flights.join(digest, t0, Some(user("U1")), || None) {
            Joined::Started(pending, flight) => (pending, flight),
            _ => panic!("expected to start a flight"),
        };
        flights.forget_user("U2");
        let later = clock::now() + Duration::from_millis(1);
        assert!(matches!(
            flights.join(digest, later, Some(user("U1")), || None),
            Joined::Waiting(_)
        ));
        flights.forget_user("U1");
        let Joined::Started(_third, new) = flights.join(digest, later, Some(user("U1")), || None)
        else {
            panic!("a request after its user was forgotten joined the older flight");
        };
        assert_ne!(old, new);
    }

    /// A request refused for the bound starts nothing, so it sets nothing aside: the flight in
    /// the air, whose user was not the one forgotten, still keeps its verdict.
    #[test]
    fn a_request_refused_for_the_bound_sets_no_flight_aside() {
        let flights = Flights::new(1);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (_first, flight) = started(&flights, digest, t0);
        flights.forget_user("U9");
        let later = clock::now() + Duration::from_millis(1);
        assert!(matches!(
            flights.join(digest, later, None, || None),
            Joined::Full
        ));
        let mut kept = false;
        assert!(flights.land(flight, Some("U1"), || kept = true).1 && kept);
    }

    #[test]
    fn flights_set_aside_count_towards_the_bound() {
        let flights = Flights::new(2);
        let (t0, digest) = (clock::now(), TokenDigest::of("t"));
        let (_old, _) = started(&flights, digest, t0);
        flights.forget(&digest);
        let (_new, _) = started(&flights, digest, clock::now() + Duration::from_millis(1));
        assert!(matches!(
            flights.join(TokenDigest::of("u"), t0, None, || None),
            Joined::Full
        ));
    }

    #[test]
    fn abandoning_a_flight_set_aside_ends_no_other() {
        let flights = Flights::new(10);
        let digest = TokenDigest::of("t");
        let (_before, old) = started(&flights, digest, clock::now());
        flights.forget_all();
        let (_after, new) = started(&flights, digest, clock::now() + Duration::from_millis(1));
        flights.abandon(old);
        assert!(!flights.wanted_or_end(old));
        assert!(flights.wanted_or_end(new));
        assert_eq!(flights.len(), 1);
        flights.abandon(new);
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn a_quarter_of_the_permits_waits_for_known_tokens() {
        let permits = Permits::new(4);
        let first = permits.acquire(false).await.unwrap();
        let second = permits.acquire(false).await.unwrap();
        let third = permits.acquire(false).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), permits.acquire(false))
                .await
                .is_err(),
            "first-time tokens use three of four"
        );
        let known = permits.acquire(true).await.unwrap();
        drop((first, second, third, known));
    }
}
