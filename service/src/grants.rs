//! Share grants as a source of access: what a grant token allows, always
//! within the chain's own rules ([`crate::authz::authorize_grant`]).
//!
//! A grant widens access beyond on-chain consent only within the chain's
//! rules, checked at every read: the reader must be a registered, active
//! provider; the patient must be registered, alive and the contracts
//! running; and an explicit on-chain revocation of this provider's consent
//! for the data type wins over a code — a code lets a patient share with a
//! provider they never consented to on-chain, never override a "no" they
//! recorded there.

use medanchor_contracts::principal::Principal;
use medanchor_contracts::types::DataType;

use crate::error::{Error, Result};
use crate::share::ShareError;
use crate::state::Service;

impl From<ShareError> for Error {
    fn from(e: ShareError) -> Self {
        match e {
            ShareError::Invalid(m) => Error::bad("invalid-share", m),
            ShareError::NotFound(what) => Error::NotFound(what),
            e @ ShareError::TooManyActive(_) => Error::State { code: "too-many-active-codes", detail: e.to_string() },
            e @ ShareError::WrongCode { remaining } => {
                Error::Attempt { code: "access-code-invalid", detail: e.to_string(), remaining }
            }
            e @ ShareError::PasscodeRequired { remaining } => {
                Error::Attempt { code: "passcode-required", detail: e.to_string(), remaining }
            }
            e @ ShareError::Locked(_) => {
                Error::Attempt { code: "access-codes-locked", detail: e.to_string(), remaining: 0 }
            }
            e @ ShareError::Inactive(_) => Error::Gone { code: "share-inactive", detail: e.to_string() },
            e @ ShareError::GrantRefused(_) => {
                Error::Forbidden { code: "grant-refused", detail: e.to_string(), reason: None }
            }
            ShareError::Db(e) => Error::internal(e),
        }
    }
}

/// The chain's refusal of `provider` reading `patient`'s `data_type`
/// through a grant, if the chain's rules refuse it: the one rule for grant
/// reads, [`crate::authz::authorize_grant`].
pub fn grant_refusal(
    s: &Service,
    patient: &Principal,
    provider: &Principal,
    data_type: DataType,
) -> Result<Option<medanchor_contracts::ContractError>> {
    let facts = s.chain.access_facts(patient, provider, data_type).map_err(Error::internal)?;
    Ok(crate::authz::authorize_grant(&facts).err())
}

/// A read's access decision: `Ok((method, share id))`, or the refusal with
/// the share id when known.
pub type Access = Result<(String, Option<String>), (Error, Option<String>)>;

/// Access to `patient`'s `data_type` for `who` through the grant `token`:
/// `Ok((method, share id))`, or the refusal with the share id when known.
pub fn through_grant(
    s: &Service,
    token: &str,
    who: &Principal,
    patient: &Principal,
    data_type: DataType,
) -> Result<Access> {
    let grant = match s.shares.check_grant(token, &who.to_string(), s.now_ms()) {
        Ok(g) => g,
        Err(ShareError::Db(e)) => return Err(Error::internal(e)),
        Err(e) => return Ok(Err((e.into(), None))),
    };
    let share = Some(grant.share_id.clone());
    let forbidden = |code, detail: String, reason| Error::Forbidden { code, detail, reason };
    if grant.patient != patient.to_string() {
        return Ok(Err((forbidden("grant-other-patient", "the grant is for another patient".into(), None), share)));
    }
    if !grant.covers(data_type) {
        let detail = format!(
            "the share covers {} but not {data_type}",
            grant.data_types.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
        );
        return Ok(Err((forbidden("outside-share-scope", detail, None), share)));
    }
    if let Some(e) = grant_refusal(s, patient, who, data_type)? {
        return Ok(Err((Error::denied(e), share)));
    }
    Ok(Ok((grant.method, Some(grant.share_id))))
}
