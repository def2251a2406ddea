//! The one authorization rule. Every path that releases or changes
//! patient data — reads, lists, version histories, writes, lifecycle
//! transitions, reads through a share grant — decides here, from the
//! [`AccessFacts`] the indexer reads in one snapshot at the tip.
//!
//! [`authorize`] is record-management's private `authorize`, line by line;
//! [`authorize_record`] adds what `authorize-record` and each record
//! function assert about the record itself. They return the contract's own
//! error, so a refusal here is the refusal the chain would give (the
//! differential test in `tests/e2e/authz.rs` compares both on random chain
//! states). [`authorize_grant`] is the only widening: a patient's share
//! stands in for consent and access level, and nothing else.

use medanchor_contracts::types::{AccessLevel, AccessMethod, RecordStatus};
use medanchor_contracts::ContractError;
use medanchor_indexer::{AccessFacts, RecordState};

/// What the caller wants to do, as the contract function that does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// `get-record`: read a record, list it, read its versions.
    Read,
    /// `create-record`.
    Create,
    /// `update-record` (and `rollback-record`).
    Update,
    /// `finalize-record`.
    Finalize,
    /// `unlock-record`.
    Unlock,
    /// `archive-record`.
    Archive,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 6] = [
        Operation::Read,
        Operation::Create,
        Operation::Update,
        Operation::Finalize,
        Operation::Unlock,
        Operation::Archive,
    ];

    /// The `min-level` the contract function passes to `authorize`.
    pub fn min_level(self) -> AccessLevel {
        match self {
            Operation::Read => AccessLevel::Read,
            Operation::Create | Operation::Update | Operation::Finalize => AccessLevel::Write,
            Operation::Unlock | Operation::Archive => AccessLevel::Admin,
        }
    }

    /// The `emergency-ok` the contract function passes: an override allows
    /// reading and creating only.
    pub fn emergency_ok(self) -> bool {
        matches!(self, Operation::Read | Operation::Create)
    }

    /// The contract function.
    pub fn function(self) -> &'static str {
        match self {
            Operation::Read => "get-record",
            Operation::Create => "create-record",
            Operation::Update => "update-record",
            Operation::Finalize => "finalize-record",
            Operation::Unlock => "unlock-record",
            Operation::Archive => "archive-record",
        }
    }
}

/// record-management's `authorize`: consent first (`check-consent`), then
/// the actor's standing as a provider and the access level the patient
/// gave it. A patient may read their own records but never write them; an
/// emergency override allows only what [`Operation::emergency_ok`] says.
pub fn authorize(op: Operation, facts: &AccessFacts) -> Result<AccessMethod, ContractError> {
    let method = facts.consent?;
    if method == AccessMethod::SelfAccess {
        return if op.min_level() == AccessLevel::Read { Ok(method) } else { Err(ContractError::RecordUnauthorized) };
    }
    match facts.provider_active {
        None => return Err(ContractError::ProviderNotFound),
        Some(false) => return Err(ContractError::ProviderInactive),
        Some(true) => {}
    }
    if method == AccessMethod::Emergency {
        return if op.emergency_ok() { Ok(method) } else { Err(ContractError::EmergencyViolation) };
    }
    let access = facts.access.ok_or(ContractError::NoProviderAccess)?;
    if access.expired {
        return Err(ContractError::ProviderAccessExpired);
    }
    // The contract compares the stored uint with `min-level`.
    if access.level < op.min_level().code() {
        return Err(ContractError::InsufficientAccess);
    }
    Ok(method)
}

/// [`authorize`] on an existing record, then the record function's own
/// asserts on its status (in the contract's order). `Read` asserts
/// nothing: `get-record` serves archived and purged records to whoever
/// may read them. The version check of an update is the caller's
/// (`If-Match`), after this.
pub fn authorize_record(
    op: Operation,
    record: &RecordState,
    facts: &AccessFacts,
) -> Result<AccessMethod, ContractError> {
    let method = authorize(op, facts)?;
    if matches!(op, Operation::Read | Operation::Create) {
        return Ok(method);
    }
    if record.status != RecordStatus::Active {
        return Err(ContractError::RecordNotActive);
    }
    match op {
        Operation::Update | Operation::Finalize if record.finalized => Err(ContractError::RecordFinalized),
        Operation::Unlock if !record.finalized => Err(ContractError::RecordNotFinalized),
        _ => Ok(method),
    }
}

/// A read through a patient's share grant (the grant itself — its
/// provider, patient, scope and expiry — is checked by the share store
/// first). The share stands in for the patient's on-chain consent and
/// access level; every other rule of the chain still holds, each checked
/// on its own so that none hides another:
/// - `check-consent`'s preconditions: a registered, living patient, a
///   concrete data type, contracts not paused;
/// - no explicit on-chain revocation of this provider's direct consent for
///   the type (`consent-status`, which `check-consent` would report as an
///   expired override or enhanced protection instead);
/// - the reader is a registered, active provider.
pub fn authorize_grant(facts: &AccessFacts) -> Result<(), ContractError> {
    if let Err(
        e @ (ContractError::PatientNotFound
        | ContractError::InvalidDataType
        | ContractError::Paused
        | ContractError::PatientDeceased),
    ) = facts.consent
    {
        return Err(e);
    }
    if facts.direct == Some(Err(ContractError::ConsentRevoked)) {
        return Err(ContractError::ConsentRevoked);
    }
    match facts.provider_active {
        None => Err(ContractError::ProviderNotFound),
        Some(false) => Err(ContractError::ProviderInactive),
        Some(true) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medanchor_indexer::ProviderAccess;

    use ContractError as E;

    fn facts(
        consent: Result<AccessMethod, ContractError>,
        provider_active: Option<bool>,
        access: Option<(AccessLevel, bool)>,
    ) -> AccessFacts {
        AccessFacts {
            burn_block_height: 10,
            consent,
            direct: Some(consent.map(|_| ())),
            provider_active,
            access: access.map(|(l, expired)| ProviderAccess { level: l.code(), expired }),
        }
    }

    const SELF: Result<AccessMethod, ContractError> = Ok(AccessMethod::SelfAccess);
    const CONSENT: Result<AccessMethod, ContractError> = Ok(AccessMethod::Consent);
    const EMERGENCY: Result<AccessMethod, ContractError> = Ok(AccessMethod::Emergency);

    /// (facts, expected for Read, Create, Update, Finalize, Unlock, Archive)
    #[test]
    fn authorize_follows_the_contract_branch_by_branch() {
        use AccessLevel::{Admin, Read, Write};
        let ok = |m: AccessMethod| Ok(m);
        let c = AccessMethod::Consent;
        type Row = (&'static str, AccessFacts, [Result<AccessMethod, ContractError>; 6]);
        let table: Vec<Row> = vec![
            ("consent refused", facts(Err(E::NoConsent), Some(true), Some((Admin, false))), [Err(E::NoConsent); 6]),
            (
                "self reads only",
                facts(SELF, None, None),
                [
                    ok(AccessMethod::SelfAccess),
                    Err(E::RecordUnauthorized),
                    Err(E::RecordUnauthorized),
                    Err(E::RecordUnauthorized),
                    Err(E::RecordUnauthorized),
                    Err(E::RecordUnauthorized),
                ],
            ),
            ("unregistered", facts(CONSENT, None, Some((Admin, false))), [Err(E::ProviderNotFound); 6]),
            ("deactivated", facts(CONSENT, Some(false), Some((Admin, false))), [Err(E::ProviderInactive); 6]),
            ("unregistered responder", facts(EMERGENCY, None, None), [Err(E::ProviderNotFound); 6]),
            (
                "emergency",
                facts(EMERGENCY, Some(true), None),
                [
                    ok(AccessMethod::Emergency),
                    ok(AccessMethod::Emergency),
                    Err(E::EmergencyViolation),
                    Err(E::EmergencyViolation),
                    Err(E::EmergencyViolation),
                    Err(E::EmergencyViolation),
                ],
            ),
            ("no access level", facts(CONSENT, Some(true), None), [Err(E::NoProviderAccess); 6]),
            ("access expired", facts(CONSENT, Some(true), Some((Admin, true))), [Err(E::ProviderAccessExpired); 6]),
            (
                "read access",
                facts(CONSENT, Some(true), Some((Read, false))),
                [
                    ok(c),
                    Err(E::InsufficientAccess),
                    Err(E::InsufficientAccess),
                    Err(E::InsufficientAccess),
                    Err(E::InsufficientAccess),
                    Err(E::InsufficientAccess),
                ],
            ),
            (
                "write access",
                facts(CONSENT, Some(true), Some((Write, false))),
                [ok(c), ok(c), ok(c), ok(c), Err(E::InsufficientAccess), Err(E::InsufficientAccess)],
            ),
            ("admin access", facts(CONSENT, Some(true), Some((Admin, false))), [ok(c); 6]),
        ];
        for (name, f, expected) in table {
            for (op, want) in Operation::ALL.iter().zip(expected) {
                assert_eq!(authorize(*op, &f), want, "{name}: {op:?}");
            }
        }
    }

    #[test]
    fn record_status_asserts_follow_each_function() {
        let admin = facts(CONSENT, Some(true), Some((AccessLevel::Admin, false)));
        let record = |status, finalized| RecordState {
            patient: "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM".parse().expect("principal"),
            record_type: medanchor_contracts::types::RecordType::LabResults,
            version: 1,
            status,
            finalized,
        };
        let c = Ok(AccessMethod::Consent);
        // (status, finalized, [Read, Create, Update, Finalize, Unlock, Archive])
        let table = [
            (RecordStatus::Active, false, [c, c, c, c, Err(E::RecordNotFinalized), c]),
            (RecordStatus::Active, true, [c, c, Err(E::RecordFinalized), Err(E::RecordFinalized), c, c]),
            (
                RecordStatus::Archived,
                false,
                [
                    c,
                    c,
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                ],
            ),
            (
                RecordStatus::Purged,
                true,
                [
                    c,
                    c,
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                    Err(E::RecordNotActive),
                ],
            ),
        ];
        for (status, finalized, expected) in table {
            for (op, want) in Operation::ALL.iter().zip(expected) {
                assert_eq!(
                    authorize_record(*op, &record(status, finalized), &admin),
                    want,
                    "{status:?} {finalized}: {op:?}"
                );
            }
        }
        // Authorization comes before the record's status, as in the contract.
        let reader = facts(CONSENT, Some(true), Some((AccessLevel::Read, false)));
        assert_eq!(
            authorize_record(Operation::Archive, &record(RecordStatus::Archived, false), &reader),
            Err(E::InsufficientAccess)
        );
    }

    #[test]
    fn a_grant_never_hides_a_revocation_behind_another_error() {
        let revoked = Some(Err(E::ConsentRevoked));
        // (check-consent's answer, consent-status, provider, expected)
        let table = [
            (Err(E::NoConsent), Some(Err(E::NoConsent)), Some(true), Ok(())),
            (Err(E::ConsentExpired), Some(Err(E::ConsentExpired)), Some(true), Ok(())),
            (Err(E::ConsentRevoked), revoked, Some(true), Err(E::ConsentRevoked)),
            // An override that ever existed turns check-consent's answer
            // into ERR-EMERGENCY-EXPIRED or ERR-ENHANCED-PROTECTION.
            (Err(E::EmergencyExpired), revoked, Some(true), Err(E::ConsentRevoked)),
            (Err(E::EnhancedProtection), revoked, Some(true), Err(E::ConsentRevoked)),
            (Ok(AccessMethod::Emergency), revoked, Some(true), Err(E::ConsentRevoked)),
            (Err(E::EmergencyExpired), Some(Err(E::NoConsent)), Some(true), Ok(())),
            (Err(E::PatientNotFound), None, Some(true), Err(E::PatientNotFound)),
            (Err(E::Paused), None, Some(true), Err(E::Paused)),
            (Err(E::PatientDeceased), None, Some(true), Err(E::PatientDeceased)),
            (Err(E::InvalidDataType), None, Some(true), Err(E::InvalidDataType)),
            (Err(E::NoConsent), Some(Err(E::NoConsent)), None, Err(E::ProviderNotFound)),
            (Err(E::NoConsent), Some(Err(E::NoConsent)), Some(false), Err(E::ProviderInactive)),
            (Ok(AccessMethod::Consent), Some(Ok(())), Some(false), Err(E::ProviderInactive)),
        ];
        for (consent, direct, provider_active, want) in table {
            let f = AccessFacts { burn_block_height: 1, consent, direct, provider_active, access: None };
            assert_eq!(authorize_grant(&f), want, "{consent:?} {direct:?} {provider_active:?}");
        }
    }
}
