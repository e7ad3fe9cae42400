//! The test kit's fixed tokens (feature `testing`): answered here, never sent to LINE.
//!
//! A fixed token is cached like a verified one, so a request finds it as a hit. Its entry can
//! still go (the cache's capacity, a forget, a clear, a shared cache's first subscription); the
//! token's next request then finds it in this map instead of asking LINE, which may not be
//! reachable from a handler test, or may be the real LINE. A sign-out marks it here, so it is
//! refused from then on without LINE being asked to revoke it either.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::token::CacheKey;
use crate::user::LineUser;

/// The fixed tokens by cache key: a user while trusted, `None` once signed out.
#[derive(Default)]
pub(super) struct FixedTokens(Mutex<HashMap<CacheKey, Option<LineUser>>>);

/// What the map says of a token.
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
        self.lock().insert(key, Some(user));
    }

    /// Marks `key` signed out, if it is a fixed token; says whether it is one.
    pub(super) fn sign_out(&self, key: &CacheKey) -> bool {
        match self.lock().get_mut(key) {
            Some(user) => {
                *user = None;
                true
            }
            None => false,
        }
    }

    /// What the map says of `key`, given to `decide` while the map is held: a sign-out waits
    /// for `decide` to finish, so what `decide` caches cannot outlive a sign-out it raced with.
    pub(super) fn decide<R>(&self, key: &CacheKey, decide: impl FnOnce(Fixed) -> R) -> R {
        let tokens = self.lock();
        let fixed = match tokens.get(key) {
            Some(Some(user)) => Fixed::Trusted(user.clone()),
            Some(None) => Fixed::SignedOut,
            None => Fixed::No,
        };
        decide(fixed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<CacheKey, Option<LineUser>>> {
        // A panic elsewhere while the map was held leaves it whole: each change is one store.
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

    fn said(tokens: &FixedTokens, key: &CacheKey) -> &'static str {
        tokens.decide(key, |fixed| match fixed {
            Fixed::No => "no",
            Fixed::Trusted(_) => "trusted",
            Fixed::SignedOut => "signed out",
        })
    }

    #[test]
    fn a_fixed_token_is_trusted_until_signed_out_and_others_are_not_fixed() {
        let tokens = FixedTokens::default();
        let (fixed, other) = (CacheKey::of(b"fixed"), CacheKey::of(b"other"));
        tokens.trust(fixed, user());

        assert_eq!(said(&tokens, &fixed), "trusted");
        assert_eq!(said(&tokens, &other), "no");
        assert!(!tokens.sign_out(&other), "not a fixed token");
        assert_eq!(said(&tokens, &other), "no");

        assert!(tokens.sign_out(&fixed));
        assert_eq!(said(&tokens, &fixed), "signed out");
        // Trusted again in the map, as `with_fixed_token` says; the layer's record of the
        // sign-out still refuses it (see `Verifier::verify_once`).
        tokens.trust(fixed, user());
        assert_eq!(said(&tokens, &fixed), "trusted");
        assert_eq!(
            tokens.lock().len(),
            1,
            "trusting a key again replaces its entry"
        );
    }
}
