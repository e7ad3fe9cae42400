//! The decision: which channels and scopes a token must have, and that it has not expired. Applied
//! to every verdict, whether LINE just gave it, the cache held it, or another replica shared it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::cache::Grant;
use crate::config::LineAuthConfig;
use crate::line_api::{wire, AccessTokenInfo};
use crate::rejection::{InvalidReason, LineAuthError};

/// A layer's requirements, in the compact form a cache entry's [`Grant`] is checked against.
pub(crate) struct Policy {
    channel_ids: Arc<[Box<str>]>,
    required_scopes: Arc<[Box<str>]>,
    /// One bit per required scope: what a token's [`Grant`] must cover.
    required_mask: u32,
    /// `required_scopes` space-separated, for the `scope` attribute of a 403 challenge.
    required_scope_list: Arc<str>,
}

impl Policy {
    pub(crate) fn new(config: &LineAuthConfig) -> Self {
        Self {
            channel_ids: config.channel_ids.clone(),
            required_scopes: config.required_scopes.clone(),
            required_mask: low_bits(config.required_scopes.len()),
            required_scope_list: config.required_scopes.join(" ").into(),
        }
    }

    /// The configured channel at `index` of a [`Grant`].
    pub(crate) fn channel(&self, index: u16) -> Option<&str> {
        self.channel_ids.get(usize::from(index)).map(|id| &**id)
    }

    /// The one configured channel, if there is exactly one.
    pub(crate) fn only_channel(&self) -> Option<&str> {
        match &*self.channel_ids {
            [only] => Some(only),
            _ => None,
        }
    }

    /// What a token with this channel and these scopes is granted, in this layer's terms.
    pub(crate) fn grant_of(&self, channel_id: &str, has_scope: impl Fn(&str) -> bool) -> Grant {
        let channel = self
            .channel_ids
            .iter()
            .position(|accepted| **accepted == *channel_id)
            .and_then(|index| u16::try_from(index).ok())
            .unwrap_or(u16::MAX);
        let scopes = self
            .required_scopes
            .iter()
            .enumerate()
            .filter(|(_, scope)| has_scope(scope))
            .fold(0, |bits, (i, _)| bits | 1 << i);
        Grant { channel, scopes }
    }

    /// The channel and scope requirements, applied to every verdict, fresh or cached.
    pub(crate) fn check_grant(&self, grant: Grant) -> Result<(), LineAuthError> {
        if usize::from(grant.channel) >= self.channel_ids.len() {
            return Err(LineAuthError::ForeignChannel);
        }
        if grant.scopes & self.required_mask != self.required_mask {
            return Err(LineAuthError::InsufficientScope {
                required: self.required_scope_list.clone(),
            });
        }
        Ok(())
    }

    /// LINE's own checklist on a 200 verify (<https://developers.line.biz/en/docs/line-login/secure-login-process/>):
    /// `client_id` is ours and `expires_in > 0`; then this layer's required scopes.
    pub(crate) fn check_verification(
        &self,
        verification: &AccessTokenInfo,
    ) -> Result<(Grant, Duration), LineAuthError> {
        let grant = self.grant_of(&verification.client_id, |scope| {
            verification.scopes().any(|granted| granted == scope)
        });
        if usize::from(grant.channel) >= self.channel_ids.len() {
            return Err(LineAuthError::ForeignChannel);
        }
        let expires_in = u64::try_from(verification.expires_in)
            .ok()
            .filter(|&secs| secs > 0)
            .ok_or(LineAuthError::InvalidToken(InvalidReason::Expired))?;
        self.check_grant(grant)?;
        // The user is named by the profile call (`profile`) or userinfo (`openid`), whatever
        // the required scopes: a token with neither names no one, and is refused here rather
        // than on LINE's word.
        if !verification
            .scopes()
            .any(|scope| scope == "profile" || scope == "openid")
        {
            return Err(LineAuthError::InsufficientScope {
                required: "openid".into(),
            });
        }
        Ok((grant, wire::lifetime(Duration::from_secs(expires_in))))
    }
}

/// How long until `time` (at most [`wire::lifetime`]'s bound); an expired token if it has passed.
pub(crate) fn time_left(time: SystemTime) -> Result<Duration, LineAuthError> {
    time.duration_since(SystemTime::now())
        .ok()
        .filter(|left| !left.is_zero())
        .map(wire::lifetime)
        .ok_or(LineAuthError::InvalidToken(InvalidReason::Expired))
}

/// A mask of the lowest `n` bits (`n` ≤ 32, checked at configuration).
fn low_bits(n: usize) -> u32 {
    match n {
        0 => 0,
        n => u32::MAX >> (32 - n.min(32)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(scopes: &[&str]) -> Policy {
        let config = LineAuthConfig::builder()
            .channel_ids(["111", "222"])
            .required_scopes(scopes.iter().copied())
            .build()
            .unwrap();
        Policy::new(&config)
    }

    fn verification(client_id: &str, scope: &str, expires_in: i64) -> AccessTokenInfo {
        AccessTokenInfo {
            scope: Some(scope.into()),
            client_id: client_id.into(),
            expires_in,
        }
    }

    #[test]
    fn low_bits_covers_zero_to_thirty_two() {
        assert_eq!(low_bits(0), 0);
        assert_eq!(low_bits(1), 1);
        assert_eq!(low_bits(3), 0b111);
        assert_eq!(low_bits(31), u32::MAX >> 1);
        assert_eq!(low_bits(32), u32::MAX);
    }

    #[test]
    fn grant_passes_only_with_a_configured_channel_and_every_required_scope() {
        let policy = policy(&["profile", "openid"]);
        let both = |scope: &str| scope == "profile" || scope == "openid";
        assert_eq!(
            policy.grant_of("222", both),
            Grant {
                channel: 1,
                scopes: 0b11
            }
        );
        assert!(policy.check_grant(policy.grant_of("222", both)).is_ok());
        assert!(matches!(
            policy.check_grant(policy.grant_of("333", both)),
            Err(LineAuthError::ForeignChannel)
        ));
        assert!(matches!(
            policy.check_grant(policy.grant_of("111", |scope| scope == "profile")),
            Err(LineAuthError::InsufficientScope { required }) if &*required == "profile openid"
        ));
        assert!(matches!(
            policy.check_grant(policy.grant_of("111", |scope| scope == "openid")),
            Err(LineAuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn no_required_scope_means_any_grant_of_a_configured_channel_passes() {
        let policy = policy(&[]);
        assert!(policy
            .check_grant(policy.grant_of("111", |_| false))
            .is_ok());
    }

    #[test]
    fn channels_are_found_by_index_and_the_only_one_is_known() {
        let policy = policy(&[]);
        assert_eq!(policy.channel(1), Some("222"));
        assert_eq!(policy.channel(2), None);
        assert_eq!(policy.only_channel(), None);
        let single = Policy::new(&LineAuthConfig::builder().channel_id("7").build().unwrap());
        assert_eq!(single.only_channel(), Some("7"));
    }

    #[test]
    fn a_verification_passes_lines_checklist_then_the_scopes() {
        let policy = policy(&["profile"]);
        let (grant, expires_in) = policy
            .check_verification(&verification("222", "profile openid", 60))
            .unwrap();
        assert_eq!(grant.channel, 1);
        assert_eq!(expires_in, Duration::from_secs(60));
        assert!(matches!(
            policy.check_verification(&verification("333", "profile", 60)),
            Err(LineAuthError::ForeignChannel)
        ));
        for expires_in in [0, -1] {
            assert!(matches!(
                policy.check_verification(&verification("111", "profile", expires_in)),
                Err(LineAuthError::InvalidToken(InvalidReason::Expired))
            ));
        }
        assert!(matches!(
            policy.check_verification(&verification("111", "openid", 60)),
            Err(LineAuthError::InsufficientScope { .. })
        ));
    }

    #[test]
    fn time_left_refuses_a_time_that_has_passed() {
        let later = SystemTime::now() + Duration::from_secs(60);
        assert!(time_left(later).unwrap() > Duration::from_secs(58));
        assert!(matches!(
            time_left(SystemTime::now() - Duration::from_secs(1)),
            Err(LineAuthError::InvalidToken(InvalidReason::Expired))
        ));
    }

    /// What LINE gives as a token's life is added to the clock: a life longer than any token's is
    /// read as a century, which every clock can take.
    #[test]
    fn a_life_past_any_clock_is_read_as_a_century() {
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let far = wire::unix_time(u64::MAX);
        assert_eq!(time_left(far).unwrap(), century);
        let policy = policy(&[]);
        let (_, life) = policy
            .check_verification(&verification("111", "profile", i64::MAX))
            .unwrap();
        assert_eq!(life, century);
        let (_, life) = policy
            .check_verification(&verification("111", "profile", 60))
            .unwrap();
        assert_eq!(life, Duration::from_secs(60), "a real one is left as it is");
    }
}
