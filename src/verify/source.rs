//! Where a fresh verdict comes from: LINE's access-token check (verify, then profile), or the
//! local check of an ID token. Both end in a [`Verified`] token held to the layer's [`Policy`].

use std::time::SystemTime;

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

/// Asks LINE about an access token: verify, check, then fetch the profile (or, for a token
/// without `profile`, the userinfo) (<https://developers.line.biz/en/docs/line-login/secure-login-process/>), all before
/// `deadline`, after waiting for a turn among the verifications asking LINE at once.
///
/// Waiting too long for a turn is [`UpstreamError::Busy`], not a failure of LINE's; a
/// verification nobody waits for any more when its turn comes ends there
/// ([`UpstreamError::Abandoned`]) without calling LINE.
pub(crate) async fn ask_line(
    client: &LineClient,
    policy: &Policy,
    permits: &Permits,
    token: &AccessToken,
    known: bool,
    deadline: Instant,
    still_wanted: impl Fn() -> bool,
) -> Result<Verified, LineAuthError> {
    let _permit = tokio::time::timeout_at(deadline.into(), permits.acquire(known))
        .await
        .map_err(|_| LineAuthError::Unavailable(UpstreamError::Busy))?
        .map_err(|_| LineAuthError::Unavailable(UpstreamError::Abandoned))?;
    if !still_wanted() {
        return Err(LineAuthError::Unavailable(UpstreamError::Abandoned));
    }
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
    tokio::time::timeout_at(deadline.into(), exchange)
        .await
        .map_err(|_| LineAuthError::Unavailable(UpstreamError::Timeout))?
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
