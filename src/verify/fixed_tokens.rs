//! The test kit's fixed tokens (feature `testing`): answered here, never sent to LINE.
//!
//! A fixed token is cached like a verified one, so a request finds it as a hit. Its entry can
//! still go (the cache's capacity, a forget, a clear, a shared cache's first subscription); the
//! token's next request then finds it in this list instead of asking LINE, which may not be
//! reachable from a handler test, or may be the real LINE. A sign-out marks it here, so it is
//! refused from then on without LINE being asked to revoke it either.

use std::sync::Mutex;

use crate::token::CacheKey;
use crate::user::LineUser;

/// The fixed tokens by cache key: a user while trusted, `None` once signed out.
#[derive(Default)]
pub(super) struct FixedTokens(Mutex<Vec<(CacheKey, Option<LineUser>)>>);

/// What the list says of a token.
pub(super) enum Fixed {
    /// Not a fixed token: LINE decides.
    No,
    /// Trusted as this user.
    Trusted(LineUser),
    /// Signed out.
    SignedOut,
}

impl FixedTokens {
    /// Trusts `key` as `user`, replacing what it said of that key before.
    pub(super) fn trust(&self, key: CacheKey, user: LineUser) {
        let mut tokens = self.lock();
        match tokens.iter_mut().find(|(fixed, _)| *fixed == key) {
            Some((_, held)) => *held = Some(user),
            None => tokens.push((key, Some(user))),
        }
    }

    /// Marks `key` signed out, if it is a fixed token; says whether it is one.
    pub(super) fn sign_out(&self, key: &CacheKey) -> bool {
        let mut tokens = self.lock();
        match tokens.iter_mut().find(|(fixed, _)| fixed == key) {
            Some((_, user)) => {
                *user = None;
                true
            }
            None => false,
        }
    }

    pub(super) fn get(&self, key: &CacheKey) -> Fixed {
        match self.lock().iter().find(|(fixed, _)| fixed == key) {
            Some((_, Some(user))) => Fixed::Trusted(user.clone()),
            Some((_, None)) => Fixed::SignedOut,
            None => Fixed::No,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(CacheKey, Option<LineUser>)>> {
        // A panic elsewhere while the list was held leaves it whole: each change is one store.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn user() -> LineUser {
        LineUser::builder("U0123456789abcdef0123456789abcdef", "1234567890")
            .expires_at(SystemTime::now())
            .build()
    }

    #[test]
    fn a_fixed_token_is_trusted_until_signed_out_and_others_are_not_fixed() {
        let tokens = FixedTokens::default();
        let (fixed, other) = (CacheKey::of(b"fixed"), CacheKey::of(b"other"));
        tokens.trust(fixed, user());

        assert!(matches!(tokens.get(&fixed), Fixed::Trusted(_)));
        assert!(matches!(tokens.get(&other), Fixed::No));
        assert!(!tokens.sign_out(&other), "not a fixed token");
        assert!(matches!(tokens.get(&other), Fixed::No));

        assert!(tokens.sign_out(&fixed));
        assert!(matches!(tokens.get(&fixed), Fixed::SignedOut));
        tokens.trust(fixed, user());
        assert!(matches!(tokens.get(&fixed), Fixed::Trusted(_)));
        assert_eq!(
            tokens.lock().len(),
            1,
            "trusting a key again replaces its place"
        );
    }
}
