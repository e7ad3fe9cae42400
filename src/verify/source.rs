//! Where a fresh verdict comes from: LINE's access-token check (verify, then profile), or the
//! local check of an ID token. Both end in a [`Verified`] token held to the layer's [`Policy`].

use std::time::{Duration, SystemTime};

use crate::cache::Grant;
use crate::client::LineClient;
use crate::clock::{self, Instant};
use crate::id_token::IdTokenVerifier;
use crate::rejection::{LineAuthError, UpstreamError};
use crate::token::AccessToken;
use crate::user::LineUser;

use super::flight::Permits;
use super::policy::{time_left, Policy};

/// A verified token, with its deadlines.
pub(crate) struct Verified {
    pub(crate) user: LineUser,
    pub(crate) grant: Grant,
    /// When the verdict was reached (for LINE's answers: when the verify call was made).
    pub(crate) verified_at: Instant,
    /// When the token itself expires.
    pub(crate) token_expires: Instant,
    /// When the verdict must be asked for again, at the latest (further capped by the max TTL).
    pub(crate) fresh_until: Instant,
}

/// The time a verification has to reach LINE's verdict.
pub(crate) struct Budget {
    /// When the answer is due.
    pub(crate) deadline: Instant,
    /// The least time left for LINE, once a turn comes, that gives it a fair try: running out of
    /// time with less is this layer's doing, not LINE's.
    pub(crate) fair_try: Duration,
}

impl Budget {
    /// A fair try at LINE: half an attempt, and no more than a quarter of the whole budget.
    pub(crate) fn fair_try(attempt_timeout: Duration, upstream_timeout: Duration) -> Duration {
        (attempt_timeout / 2).min(upstream_timeout / 4)
    }
}

/// Asks LINE about an access token: verify, check, then fetch the profile (or, for a token
/// without `profile`, the userinfo) (<https://developers.line.biz/en/docs/line-login/secure-login-process/>), all before
/// the budget's deadline, after waiting for a turn among the verifications asking LINE at once.
///
/// Waiting too long for a turn is [`UpstreamError::Busy`], not a failure of LINE's, and so is
/// running out of time after a wait for a turn that left LINE less than a fair try; a
/// verification nobody waits for any more when its turn comes ends there
/// ([`UpstreamError::Abandoned`]) without calling LINE.
pub(crate) async fn ask_line(
    client: &LineClient,
    policy: &Policy,
    permits: &Permits,
    token: &AccessToken,
    known: bool,
    budget: Budget,
    still_wanted: impl Fn() -> bool,
) -> Result<Verified, LineAuthError> {
    let Budget { deadline, fair_try } = budget;
    let fair_before_the_wait = deadline.saturating_duration_since(clock::now()) >= fair_try;
    let _permit = tokio::time::timeout_at(deadline.into(), permits.acquire(known))
        .await
        .map_err(|_| LineAuthError::Unavailable(UpstreamError::Busy))?
        .map_err(|_| LineAuthError::Unavailable(UpstreamError::Abandoned))?;
    if !still_wanted() {
        return Err(LineAuthError::Unavailable(UpstreamError::Abandoned));
    }
    // LINE is held to the time it was given: left with less than a fair try by the wait for a
    // turn, a verification that then runs out of time ran out in this layer's queue, and
    // stale-if-error must not stand in for it. (Time the fleet took before is not the queue's.)
    let short_changed =
        fair_before_the_wait && deadline.saturating_duration_since(clock::now()) < fair_try;
    let exchange = async {
        // `expires_in` counts from the verify call, so the expiry is taken from its start.
        let verified_at = clock::now();
        let verified_at_wall = SystemTime::now();
        let verification = client.verify(token, deadline).await?;
        let (grant, expires_in) = policy.check_verification(&verification)?;
        let expires_at = verified_at_wall + expires_in;
        // `/v2/profile` needs `profile`; a token without it (a LINE MINI App's, whose user
        // consented to `openid` alone) names its user through OpenID Connect's userinfo.
        let user = if verification.scopes().any(|scope| scope == "profile") {
            tracing::Span::current().record("user_endpoint", "profile");
            let profile = client.profile(token, deadline).await?;
            LineUser::new(profile, &verification, expires_at)
        } else {
            tracing::Span::current().record("user_endpoint", "userinfo");
            let userinfo = client.userinfo(token, deadline).await?;
            LineUser::from_userinfo(userinfo, &verification, expires_at)
        };
        Ok::<_, LineAuthError>(Verified {
            user,
            grant,
            verified_at,
            token_expires: verified_at + expires_in,
            fresh_until: verified_at + expires_in,
        })
    };
    let verified = match tokio::time::timeout_at(deadline.into(), exchange).await {
        Ok(verified) => verified,
        Err(_) => Err(LineAuthError::Unavailable(UpstreamError::Timeout)),
    };
    match verified {
        Err(LineAuthError::Unavailable(UpstreamError::Timeout)) if short_changed => {
            Err(LineAuthError::Unavailable(UpstreamError::Busy))
        }
        verified => verified,
    }
}

/// Checks an ID token locally (its signature, issuer, audience and times), then the policy.
pub(crate) async fn check_id_token(
    id_tokens: &IdTokenVerifier,
    policy: &Policy,
    token: &AccessToken,
) -> Result<Verified, LineAuthError> {
    let verified_at = clock::now();
    let user = id_tokens.verify(token.expose(), None).await?.user;
    let grant = policy.grant_of(user.channel_id(), |scope| user.has_scope(scope));
    policy.check_grant(grant)?;
    let token_expires = verified_at + time_left(user.expires_at())?;
    Ok(Verified {
        user,
        grant,
        verified_at,
        token_expires,
        fresh_until: token_expires,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use super::*;
    use crate::config::LineAuthConfig;

    /// A budget short of a fair try before any wait for a turn (the fleet took the time) is not
    /// the queue's doing: running out of time is LINE's timeout, for which stale-if-error may
    /// stand in, not `Busy`.
    #[tokio::test]
    async fn time_short_before_the_wait_for_a_turn_is_not_the_queues() {
        // A LINE that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let config = LineAuthConfig::builder()
            .channel_id("1")
            .api_base(base)
            .build()
            .unwrap();
        let budget = Budget {
            deadline: clock::now() + StdDuration::from_millis(100),
            fair_try: StdDuration::from_millis(500),
        };
        let verdict = ask_line(
            &LineClient::new(&config),
            &Policy::new(&config),
            &Permits::new(1),
            &AccessToken::new("t"),
            true,
            budget,
            || true,
        )
        .await;
        assert!(
            matches!(
                verdict,
                Err(LineAuthError::Unavailable(UpstreamError::Timeout))
            ),
            "{:?}",
            verdict.err()
        );
    }

    #[test]
    fn a_fair_try_is_half_an_attempt_at_most_a_quarter_of_the_budget() {
        let secs = Duration::from_secs;
        assert_eq!(
            Budget::fair_try(secs(1), secs(3)),
            Duration::from_millis(500)
        );
        assert_eq!(
            Budget::fair_try(secs(3), secs(3)),
            Duration::from_millis(750)
        );
        assert_eq!(Budget::fair_try(secs(2), secs(8)), secs(1));
    }
}
