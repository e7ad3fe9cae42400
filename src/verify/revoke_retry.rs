//! A logout's revoke at LINE, and its retries in the background when LINE failed it.
//!
//! The caller of a logout cannot retry it: from the logout on, the layer refuses the token, so a
//! second `POST /api/logout` with it never reaches the handler. Yet until LINE revokes the token
//! it stays live there (up to 30 days) for anything else that holds it. So the layer retries a
//! revoke LINE failed (a 5xx, a 429, no answer: [`worth_retrying`]):
//!
//! - after waits doubling from a second to five minutes, each jittered by a quarter either way so
//!   that revokes failed together do not return together, and never shorter than LINE's
//!   `Retry-After`;
//! - for at most an hour after the logout, and no longer than the token is refused here;
//! - for at most [`MAX_WAITING`] tokens at once per layer; past them a failed revoke is not
//!   retried, and the logout says so. Each waiting revoke holds its token in memory, as the
//!   revoke itself did, and only what a revoke needs: the layer's caches go when the layer does.
//!
//! A refusal (`invalid_client`, a 404) ends the retries: waiting would not change LINE's answer.
//! Retries live in the Tokio runtime: one shut down drops those still waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::client::LineClient;
use crate::clock::{self, Instant};
use crate::config::Secret;
use crate::rejection::{LineAuthError, UpstreamError};
use crate::token::AccessToken;

/// At most this many revokes wait for a retry per layer.
pub(super) const MAX_WAITING: usize = 1_000;

/// How long after a logout its revoke is retried, at most.
const WINDOW: Duration = Duration::from_secs(60 * 60);

const FIRST_WAIT: Duration = Duration::from_secs(1);

const LONGEST_WAIT: Duration = Duration::from_secs(5 * 60);

/// One token's revoke at LINE, with what it takes and nothing of the layer's.
pub(super) struct Revoke {
    pub(super) token: AccessToken,
    /// The token's channel where known here; otherwise LINE's verify answer names it.
    pub(super) channel_id: Option<String>,
    pub(super) client: LineClient,
    pub(super) secret: Option<Secret>,
    /// How long one revoke (with its transport retries) may take.
    pub(super) timeout: Duration,
}

impl Revoke {
    /// `POST /oauth2/v2.1/revoke` (<https://developers.line.biz/en/reference/line-login/#revoke-access-token>),
    /// after `GET /oauth2/v2.1/verify` for the channel where it is not known; a token LINE
    /// already refuses needs no revoking.
    pub(super) async fn once(&self) -> Result<(), LineAuthError> {
        let deadline = clock::now() + self.timeout;
        let channel_id = match &self.channel_id {
            Some(channel_id) => channel_id.clone(),
            None => match self.client.verify(&self.token, deadline).await {
                Ok(verification) => verification.client_id,
                Err(LineAuthError::InvalidToken(_)) => return Ok(()),
                Err(error) => return Err(error),
            },
        };
        let secret = self.secret.as_ref().map(Secret::expose);
        self.client
            .revoke(&self.token, &channel_id, secret, deadline)
            .await
    }
}

/// Whether a revoke that failed for `cause` may succeed later: LINE failed it, rather than
/// refusing it (`RevokeRefused`) or answering what waiting would not change (a 404).
pub(super) fn worth_retrying(cause: &UpstreamError) -> bool {
    !matches!(cause, UpstreamError::RevokeRefused { .. }) && super::line_failed(cause)
}

/// The revokes waiting for a retry, counted against [`MAX_WAITING`].
#[derive(Default)]
pub(super) struct RevokeRetries {
    waiting: Arc<AtomicUsize>,
}

impl RevokeRetries {
    /// Retries `revoke`, which failed at `failed_at` with LINE asking for `asked`, in a task of
    /// its own for at most `lasting`; `false` when it cannot be (no place, no runtime).
    pub(super) fn retry(
        &self,
        revoke: Revoke,
        asked: Option<Duration>,
        failed_at: Instant,
        lasting: Duration,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        let Some(place) = self.take_place() else {
            return false;
        };
        let mut schedule = Schedule::new(failed_at, lasting);
        let retries = async move {
            let _place = place;
            let mut asked = asked;
            while let Some(wait) = schedule.wait(asked, clock::now()) {
                tokio::time::sleep(wait).await;
                match revoke.once().await {
                    Ok(()) => {
                        tracing::info!("revoked the signed-out token at LINE on a retry");
                        return;
                    }
                    Err(LineAuthError::Unavailable(cause)) if worth_retrying(&cause) => {
                        asked = cause.line_asked_to_wait();
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = %error,
                            "LINE refused the revoke on a retry; the token stays refused here"
                        );
                        return;
                    }
                }
            }
            tracing::warn!("gave up revoking the signed-out token at LINE; it stays refused here");
        };
        runtime.spawn(retries.instrument(tracing::Span::current()));
        true
    }

    /// A place for one more revoke, if one is free.
    fn take_place(&self) -> Option<Place> {
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |waiting| {
                (waiting < MAX_WAITING).then_some(waiting + 1)
            })
            .ok()
            .map(|_| Place(Arc::clone(&self.waiting)))
    }
}

/// One revoke's place among those waiting; given back when dropped, however its task ends.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The waits before each retry: doubling from [`FIRST_WAIT`] to [`LONGEST_WAIT`], jittered, at
/// least LINE's, and each ending before the retries' deadline.
struct Schedule {
    next: Duration,
    /// The end of [`WINDOW`], or of the token's refusal if sooner.
    deadline: Instant,
}

impl Schedule {
    fn new(failed_at: Instant, lasting: Duration) -> Self {
        Self {
            next: FIRST_WAIT,
            deadline: failed_at + WINDOW.min(lasting),
        }
    }

    /// The wait before the next retry, at `now`, at least `asked` (LINE's `Retry-After`); `None`
    /// once a retry after it would pass the deadline.
    fn wait(&mut self, asked: Option<Duration>, now: Instant) -> Option<Duration> {
        let wait = jittered(self.next).max(asked.unwrap_or_default());
        self.next = (self.next * 2).min(LONGEST_WAIT);
        (now.checked_add(wait)? <= self.deadline).then_some(wait)
    }
}

/// `wait` give or take a quarter, drawn uniformly.
fn jittered(wait: Duration) -> Duration {
    wait.mul_f64(0.75 + crate::line_api::random_fraction() / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

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

    /// The waits of a schedule started at `t0`, each taken at once (no time spent retrying).
    fn waits(lasting: Duration, asked: Option<Duration>) -> Vec<Duration> {
        let t0 = clock::now();
        let mut schedule = Schedule::new(t0, lasting);
        let mut now = t0;
        std::iter::from_fn(|| {
            let wait = schedule.wait(asked, now)?;
            now += wait;
            Some(wait)
        })
        .collect()
    }

    #[test]
    fn waits_double_to_five_minutes_a_quarter_either_way() {
        let first = waits(Duration::MAX, None);
        let steps = [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300];
        for (wait, step) in first.iter().zip(steps) {
            let step = step * SECOND;
            assert!(
                *wait >= step.mul_f64(0.75) && *wait <= step.mul_f64(1.25),
                "{wait:?} for {step:?}"
            );
        }
        assert!(first.len() > steps.len());
        assert_ne!(first[..4], waits(Duration::MAX, None)[..4], "jittered");
    }

    #[test]
    fn a_wait_is_never_shorter_than_lines() {
        assert!(waits(Duration::MAX, Some(30 * SECOND))
            .iter()
            .all(|wait| *wait >= 30 * SECOND));
    }

    #[test]
    fn retries_end_within_the_hour_and_the_tokens_refusal() {
        let total = |lasting| waits(lasting, None).into_iter().sum::<Duration>();
        assert!(total(Duration::MAX) <= WINDOW);
        assert!(total(Duration::MAX) > WINDOW - LONGEST_WAIT.mul_f64(1.25));
        assert!(total(10 * SECOND) <= 10 * SECOND && total(10 * SECOND) >= 4 * SECOND);
        assert_eq!(total(Duration::ZERO), Duration::ZERO);
        assert!(
            waits(Duration::MAX, Some(2 * WINDOW)).is_empty(),
            "LINE asks past the hour"
        );
    }

    /// The deadline counts from the failure, the time spent retrying included.
    #[test]
    fn time_spent_retrying_counts_against_the_deadline() {
        let t0 = clock::now();
        let mut schedule = Schedule::new(t0, Duration::MAX);
        assert!(schedule.wait(None, t0 + WINDOW - SECOND / 2).is_none());
    }
}
