//! Sign-in use cases: a challenge for a principal (nothing stored: the
//! nonce carries it under the node's MAC), and a session for the signed
//! challenge (single use, audited).

use medanchor_contracts::principal::Principal;
use rand::RngCore;

use crate::auth::{verify_signature, Claims};
use crate::error::{Error, Result};
use crate::state::{now_ms, Caller, Service};

/// A challenge to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Its nonce (send it back with the signature).
    pub nonce: String,
    /// The message the wallet signs.
    pub message: String,
    /// Unix seconds after which it is refused.
    pub expires_at: u64,
}

/// A session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The bearer token.
    pub token: String,
    /// Who it is.
    pub principal: String,
    /// Unix seconds at which it expires.
    pub expires_at: u64,
}

impl Service {
    /// A sign-in challenge for `principal` (a standard principal: contracts
    /// cannot sign).
    pub fn challenge(&self, principal: &Principal) -> Result<Challenge> {
        if matches!(principal, Principal::Contract(..)) {
            return Err(Error::bad("invalid-principal", "contracts cannot sign in"));
        }
        let mut id = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut id);
        // Nothing is stored: the nonce carries the challenge under the
        // node's MAC (anonymous callers cannot grow the database).
        let c = self.challenges.issue(
            &self.config.domain,
            principal,
            id,
            now_ms() / 1000,
            self.config.challenge_ttl.as_secs(),
        );
        Ok(Challenge { message: c.message(), nonce: c.nonce, expires_at: c.expires_at })
    }

    /// A session for the challenge `nonce` signed by its principal
    /// (`signature`: a Stacks message signature). Every attempt on a real
    /// challenge is audited; only a valid signature uses the challenge up,
    /// so a stranger's bad guesses neither store anything nor burn it.
    pub async fn sign_in(&self, caller: &Caller, nonce: &str, signature: &str) -> Result<Session> {
        let (id, c) = self
            .challenges
            .open(&self.config.domain, nonce)
            .map_err(|_| Error::Unauthorized("unknown or already used challenge".into()))?;
        let now = now_ms() / 1000;
        let principal: Principal = c.principal.parse().map_err(Error::internal)?;
        let mut entry = caller.entry("anonymous", "auth.sign-in");
        entry.actor = c.principal.clone();
        let verdict = if now >= c.expires_at {
            Err(Error::Unauthorized("the challenge expired; request a new one".into()))
        } else {
            verify_signature(c.message().as_bytes(), signature, &principal)
                .map_err(|e| Error::Unauthorized(e.to_string()))
        };
        let verdict = match verdict {
            Ok(()) => match self.db.use_challenge(&id, c.expires_at)? {
                true => Ok(()),
                false => Err(Error::Unauthorized("unknown or already used challenge".into())),
            },
            Err(e) => Err(e),
        };
        self.audited(entry, verdict).await?;
        let mut jti = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub: c.principal.clone(),
            iat: now,
            exp: now + self.config.session_ttl.as_secs(),
            jti: hex::encode(jti),
        };
        Ok(Session { token: self.session.issue(&claims), principal: c.principal, expires_at: claims.exp })
    }
}

impl Service {
    /// The anti-forgery token of a browser session: a MAC of the session
    /// token under a key derived from the session key, so it needs no
    /// storage and dies with the session. A browser front end puts it in
    /// every form and state-changing request; a cross-site page can make
    /// the browser send the cookie but cannot read this.
    pub fn csrf_token(&self, session_token: &str) -> String {
        use hmac::Mac;
        let key = crate::auth::derive_key(&self.session.signing_key().to_bytes(), b"medanchor browser csrf v1");
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        mac.update(session_token.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `presented` is the anti-forgery token of `session_token`
    /// (compared in constant time).
    pub fn csrf_matches(&self, session_token: &str, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        let expected = self.csrf_token(session_token);
        expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}
