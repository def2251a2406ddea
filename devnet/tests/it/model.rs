//! A plain Rust model of the consent rules, and a driver that applies the
//! same operations to the contracts and to the model, asserting that both
//! agree on every outcome.
//!
//! The model states the rules directly: access is allowed when the
//! contracts run, the patient is registered and alive, and the accessor is
//! the patient, holds an unexpired unrevoked grant that covers the data
//! type, or holds an unexpired emergency override that covers it.

use std::collections::{HashMap, HashSet};

use medanchor_contracts::types::DataType;
use medanchor_contracts::{ClarityValue, ContractError as E};

use super::support::*;

#[derive(Debug, Clone, Default)]
pub struct Patient {
    pub deceased: bool,
    pub emergency_mental_health: bool,
    pub emergency_genetic: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Grant {
    pub expires: Option<u64>,
    pub revoked: bool,
}

/// The consent state as the rules describe it.
#[derive(Debug, Default)]
pub struct Model {
    pub height: u64,
    pub paused: bool,
    pub timeout: u64,
    pub patients: HashMap<String, Patient>,
    pub grants: HashMap<(String, String, u8), Grant>,
    pub overrides: HashMap<(String, String), u64>,
    pub responders: HashSet<String>,
}

impl Model {
    fn grant_status(&self, patient: &str, provider: &str, dt: u8) -> Result<u8, E> {
        match self.grants.get(&(patient.to_string(), provider.to_string(), dt)) {
            None => Err(E::NoConsent),
            Some(g) if g.revoked => Err(E::ConsentRevoked),
            Some(g) if g.expires.is_some_and(|h| self.height >= h) => Err(E::ConsentExpired),
            Some(_) => Ok(1),
        }
    }

    /// `check-consent`: how access is allowed, or the most specific reason
    /// it is not.
    pub fn check(&self, patient: &str, accessor: &str, dt: u8) -> Result<u8, E> {
        let profile = self.patients.get(patient).ok_or(E::PatientNotFound)?;
        let requested = DataType::from_code(u128::from(dt)).filter(|d| *d != DataType::AllStandard);
        let requested = requested.ok_or(E::InvalidDataType)?;
        if self.paused {
            return Err(E::Paused);
        }
        if profile.deceased {
            return Err(E::PatientDeceased);
        }
        if patient == accessor {
            return Ok(0);
        }
        let specific = self.grant_status(patient, accessor, dt);
        let direct = if specific.is_ok() || requested.is_enhanced() {
            specific
        } else {
            let broad = self.grant_status(patient, accessor, 0);
            if broad.is_ok() || specific == Err(E::NoConsent) {
                broad
            } else {
                specific
            }
        };
        if direct.is_ok() {
            return direct;
        }
        match self.overrides.get(&(patient.to_string(), accessor.to_string())) {
            None => direct,
            Some(&expires) if self.height >= expires => Err(E::EmergencyExpired),
            Some(_) => {
                let allowed = match requested {
                    DataType::MentalHealth => profile.emergency_mental_health,
                    DataType::Genetic => profile.emergency_genetic,
                    _ => true,
                };
                if allowed {
                    Ok(2)
                } else {
                    Err(E::EnhancedProtection)
                }
            }
        }
    }

    /// `has-consent`, stated independently of `check` as the rule itself.
    pub fn has_consent(&self, patient: &str, accessor: &str, dt: u8) -> bool {
        let Some(profile) = self.patients.get(patient) else {
            return false;
        };
        let Some(requested) = DataType::from_code(u128::from(dt)).filter(|d| *d != DataType::AllStandard) else {
            return false;
        };
        if self.paused || profile.deceased {
            return false;
        }
        let live = |g: &Grant| !g.revoked && g.expires.is_none_or(|h| self.height < h);
        let granted = DataType::ALL.iter().any(|grant_type| {
            grant_type.covers(requested)
                && self.grants.get(&(patient.to_string(), accessor.to_string(), grant_type.code())).is_some_and(live)
        });
        let emergency =
            self.overrides.get(&(patient.to_string(), accessor.to_string())).is_some_and(|&h| self.height < h)
                && self.responders.contains(accessor)
                && match requested {
                    DataType::MentalHealth => profile.emergency_mental_health,
                    DataType::Genetic => profile.emergency_genetic,
                    _ => true,
                };
        patient == accessor || granted || emergency
    }
}

/// One operation on the consent contract.
#[derive(Debug, Clone)]
pub enum Op {
    Register(String),
    Grant { patient: String, provider: String, dt: u8, duration: Option<u64> },
    Revoke { patient: String, provider: String, dt: u8 },
    Override { responder: String, patient: String },
    EndOverride { caller: String, patient: String, provider: String },
    Preferences { patient: String, mental_health: bool, genetic: bool },
    SetDeceased { patient: String, deceased: bool },
    Responder { provider: String, authorized: bool },
    Timeout(u64),
    Pause(bool),
    Advance(u32),
}

/// The contracts and the model, driven together.
pub struct Sim {
    pub chain: Chain,
    pub model: Model,
    next_patient_id: u32,
}

impl Sim {
    pub fn new() -> Self {
        let chain = Chain::new();
        let model = Model { height: chain.height() as u64, timeout: 432, ..Default::default() };
        Sim { chain, model, next_patient_id: 0 }
    }

    fn predict(&self, op: &Op) -> Result<(), E> {
        let m = &self.model;
        let profile = |patient: &str| m.patients.get(patient).ok_or(E::PatientNotFound);
        match op {
            Op::Register(patient) => {
                if m.paused {
                    return Err(E::Paused);
                }
                if m.patients.contains_key(patient) {
                    return Err(E::AlreadyRegistered);
                }
            }
            Op::Grant { patient, provider, dt, duration } => {
                let p = profile(patient)?;
                if m.paused {
                    return Err(E::Paused);
                }
                if p.deceased {
                    return Err(E::PatientDeceased);
                }
                if *dt > 8 {
                    return Err(E::InvalidDataType);
                }
                if duration.is_some_and(|d| d == 0 || d > 5_259_600) {
                    return Err(E::InvalidDuration);
                }
                if patient == provider {
                    return Err(E::InvalidPrincipal);
                }
            }
            Op::Revoke { patient, provider, dt } => {
                profile(patient)?;
                match m.grants.get(&(patient.clone(), provider.clone(), *dt)) {
                    None => return Err(E::NoConsent),
                    Some(g) if g.revoked => return Err(E::ConsentRevoked),
                    Some(_) => {}
                }
            }
            Op::Override { responder, patient } => {
                let p = profile(patient)?;
                if m.paused {
                    return Err(E::Paused);
                }
                if !m.responders.contains(responder) {
                    return Err(E::EmergencyNotAuthorized);
                }
                if responder == patient {
                    return Err(E::InvalidPrincipal);
                }
                if p.deceased {
                    return Err(E::PatientDeceased);
                }
                if m.overrides.get(&(patient.clone(), responder.clone())).is_some_and(|&h| m.height < h) {
                    return Err(E::EmergencyAlreadyActive);
                }
            }
            Op::EndOverride { caller, patient, provider } => {
                profile(patient)?;
                if caller != patient && caller != provider && caller != DEPLOYER {
                    return Err(E::Unauthorized);
                }
                if !m.overrides.contains_key(&(patient.clone(), provider.clone())) {
                    return Err(E::NoEmergencyOverride);
                }
            }
            Op::Preferences { patient, .. } => {
                let p = profile(patient)?;
                if m.paused {
                    return Err(E::Paused);
                }
                if p.deceased {
                    return Err(E::PatientDeceased);
                }
            }
            Op::SetDeceased { patient, .. } => {
                profile(patient)?;
            }
            Op::Responder { .. } | Op::Timeout(_) | Op::Pause(_) | Op::Advance(_) => {}
        }
        Ok(())
    }

    fn commit(&mut self, op: &Op) {
        let m = &mut self.model;
        match op {
            Op::Register(patient) => {
                m.patients.insert(patient.clone(), Patient::default());
            }
            Op::Grant { patient, provider, dt, duration } => {
                let grant = Grant { expires: duration.map(|d| m.height + d), revoked: false };
                m.grants.insert((patient.clone(), provider.clone(), *dt), grant);
            }
            Op::Revoke { patient, provider, dt } => {
                if let Some(g) = m.grants.get_mut(&(patient.clone(), provider.clone(), *dt)) {
                    g.revoked = true;
                }
            }
            Op::Override { responder, patient } => {
                m.overrides.insert((patient.clone(), responder.clone()), m.height + m.timeout);
            }
            Op::EndOverride { patient, provider, .. } => {
                m.overrides.remove(&(patient.clone(), provider.clone()));
            }
            Op::Preferences { patient, mental_health, genetic } => {
                if let Some(p) = m.patients.get_mut(patient) {
                    p.emergency_mental_health = *mental_health;
                    p.emergency_genetic = *genetic;
                }
            }
            Op::SetDeceased { patient, deceased } => {
                if let Some(p) = m.patients.get_mut(patient) {
                    p.deceased = *deceased;
                }
            }
            Op::Responder { provider, authorized: true } => {
                m.responders.insert(provider.clone());
            }
            Op::Responder { provider, authorized: false } => {
                m.responders.remove(provider);
            }
            Op::Timeout(blocks) => m.timeout = *blocks,
            Op::Pause(paused) => m.paused = *paused,
            Op::Advance(_) => {}
        }
    }

    /// Applies `op` to both, asserting the contract's outcome is the
    /// model's prediction.
    pub fn apply(&mut self, op: &Op) {
        let expected = self.predict(op);
        let got = match op {
            Op::Advance(n) => {
                self.model.height = u64::from(self.chain.advance(*n));
                return;
            }
            Op::Register(patient) => {
                self.next_patient_id += 1;
                let mut id = [0u8; 32];
                id[..4].copy_from_slice(&self.next_patient_id.to_be_bytes());
                self.chain.call(patient, PC, "register-patient", &[buff(&id), none(), none()])
            }
            Op::Grant { patient, provider, dt, duration } => {
                let duration = duration.map_or(none(), |d| some(u(u128::from(d))));
                self.chain.call(patient, PC, "grant-consent", &[p(provider), u(u128::from(*dt)), duration])
            }
            Op::Revoke { patient, provider, dt } => {
                self.chain.call(patient, PC, "revoke-consent", &[p(provider), u(u128::from(*dt))])
            }
            Op::Override { responder, patient } => {
                self.chain.call(responder, PC, "emergency-override", &[p(patient), u(1)])
            }
            Op::EndOverride { caller, patient, provider } => {
                self.chain.call(caller, PC, "end-emergency-override", &[p(patient), p(provider)])
            }
            Op::Preferences { patient, mental_health, genetic } => self.chain.call(
                patient,
                PC,
                "update-patient-preferences",
                &[none(), none(), b(*mental_health), b(*genetic)],
            ),
            Op::SetDeceased { patient, deceased } => {
                self.chain.call(DEPLOYER, PC, "set-deceased", &[p(patient), b(*deceased)])
            }
            Op::Responder { provider, authorized } => {
                self.chain.call(DEPLOYER, PC, "set-emergency-responder", &[p(provider), b(*authorized)])
            }
            Op::Timeout(blocks) => self.chain.call(DEPLOYER, PC, "set-emergency-timeout", &[u(u128::from(*blocks))]),
            Op::Pause(true) => self.chain.call(DEPLOYER, PC, "pause", &[]),
            Op::Pause(false) => self.chain.call(DEPLOYER, PC, "unpause", &[]),
        };
        let got = if got.raw.is_ok() { Ok(()) } else { Err(got.err().expect("an err code")) };
        assert_eq!(got, expected, "{op:?} at height {}", self.model.height);
        if got.is_ok() {
            self.commit(op);
        }
    }

    /// Asserts the contract's `check-consent` and `has-consent` agree with
    /// the model for one triple.
    pub fn compare(&mut self, patient: &str, accessor: &str, dt: u8) {
        let args = [p(patient), p(accessor), u(u128::from(dt))];
        let got = match self.chain.read(PC, "check-consent", &args) {
            ClarityValue::Response(Ok(v)) => match *v {
                ClarityValue::UInt(method) => Ok(method as u8),
                other => panic!("check-consent ok value {other:?}"),
            },
            ClarityValue::Response(Err(v)) => match *v {
                ClarityValue::UInt(code) => Err(E::from_code(code).expect("known code")),
                other => panic!("check-consent err value {other:?}"),
            },
            other => panic!("check-consent returned {other:?}"),
        };
        let here = format!("patient {patient} accessor {accessor} data type {dt} at height {}", self.model.height);
        assert_eq!(got, self.model.check(patient, accessor, dt), "check-consent: {here}");
        let has = self.chain.read(PC, "has-consent", &args);
        assert_eq!(has, b(self.model.has_consent(patient, accessor, dt)), "has-consent: {here}");
        assert_eq!(has, b(got.is_ok()), "has-consent disagrees with check-consent: {here}");
    }
}
