//! The consent rules, checked two ways against the Rust model in
//! `model.rs`: an exhaustive authorization matrix, and random histories.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::model::{Op, Sim};
use super::support::*;

/// Grant states in the matrix: what a patient did for the grantee.
#[derive(Debug, Clone, Copy, PartialEq)]
enum GrantState {
    Forever,
    Timed,
    Expired,
    /// Expires exactly at the height of the checks: no longer valid.
    EndsAtCheck,
    /// Expires one block after the checks: still valid.
    EndsAfterCheck,
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Emergency {
    None,
    Active,
    Expired,
}

/// Every combination of grant (none, or one of the nine grantable data
/// types in each state) × emergency override (none, active, expired), plus
/// the patient preferences that open enhanced types to an override, a
/// deceased patient and a paused contract — checked for every data type
/// and for the grantee, the patient and a stranger.
#[test]
fn authorization_matrix() {
    let mut sim = Sim::new();
    let x = WALLET_2; // grantee and emergency responder
    let stranger = WALLET_3;
    sim.apply(&Op::Responder { provider: x.to_string(), authorized: true });
    // Overrides started in phase 1 end exactly at the height of the checks.
    const PHASE_GAP: u32 = 7;
    sim.apply(&Op::Timeout(u64::from(PHASE_GAP)));

    let mut grants: Vec<Option<(u8, GrantState)>> = vec![None];
    for dt in 0..=8u8 {
        for state in [
            GrantState::Forever,
            GrantState::Timed,
            GrantState::Expired,
            GrantState::EndsAtCheck,
            GrantState::EndsAfterCheck,
            GrantState::Revoked,
        ] {
            grants.push(Some((dt, state)));
        }
    }
    // (grant, emergency, open enhanced types to emergencies, deceased)
    let mut cases = Vec::new();
    for grant in &grants {
        for emergency in [Emergency::None, Emergency::Active, Emergency::Expired] {
            cases.push((*grant, emergency, false, false));
        }
        cases.push((*grant, Emergency::Active, true, false));
        cases.push((*grant, Emergency::Active, true, true));
    }
    let patients: Vec<String> = (0..cases.len() as u32).map(|i| account(1000 + i)).collect();

    // Phase 1: what must have expired by the time we check.
    for (patient, (grant, emergency, ..)) in patients.iter().zip(&cases) {
        sim.apply(&Op::Register(patient.clone()));
        let duration = match grant {
            Some((_, GrantState::Expired)) => Some(2),
            Some((_, GrantState::EndsAtCheck)) => Some(u64::from(PHASE_GAP)),
            Some((_, GrantState::EndsAfterCheck)) => Some(u64::from(PHASE_GAP) + 1),
            _ => None,
        };
        if let (Some((dt, _)), Some(duration)) = (grant, duration) {
            let op = Op::Grant { patient: patient.clone(), provider: x.to_string(), dt: *dt, duration: Some(duration) };
            sim.apply(&op);
        }
        if *emergency == Emergency::Expired {
            sim.apply(&Op::Override { responder: x.to_string(), patient: patient.clone() });
        }
    }
    sim.apply(&Op::Advance(PHASE_GAP));
    // Phase 2: what must be in force.
    for (patient, (grant, emergency, open, deceased)) in patients.iter().zip(&cases) {
        if let Some((dt, state)) = grant {
            let grant = |duration| Op::Grant { patient: patient.clone(), provider: x.to_string(), dt: *dt, duration };
            match state {
                GrantState::Forever => sim.apply(&grant(None)),
                GrantState::Timed => sim.apply(&grant(Some(100))),
                GrantState::Revoked => {
                    sim.apply(&grant(None));
                    sim.apply(&Op::Revoke { patient: patient.clone(), provider: x.to_string(), dt: *dt });
                }
                GrantState::Expired | GrantState::EndsAtCheck | GrantState::EndsAfterCheck => {}
            }
        }
        if *emergency == Emergency::Active {
            sim.apply(&Op::Override { responder: x.to_string(), patient: patient.clone() });
        }
        if *open {
            sim.apply(&Op::Preferences { patient: patient.clone(), mental_health: true, genetic: true });
        }
        if *deceased {
            sim.apply(&Op::SetDeceased { patient: patient.clone(), deceased: true });
        }
    }
    for patient in &patients {
        for dt in 0..=9u8 {
            sim.compare(patient, x, dt);
        }
        sim.compare(patient, patient, 5);
        sim.compare(patient, stranger, 1);
    }
    sim.compare(&account(999_999), x, 1); // never registered

    sim.apply(&Op::Pause(true));
    for patient in patients.iter().step_by(7) {
        sim.compare(patient, x, 1);
        sim.compare(patient, patient, 1);
    }
    sim.apply(&Op::Pause(false));
    // Revocation still works while paused; nothing else does.
    sim.apply(&Op::Pause(true));
    let first_forever = patients
        .iter()
        .zip(&cases)
        .find(|(_, (g, e, ..))| *g == Some((1, GrantState::Forever)) && *e == Emergency::None)
        .map(|(p, _)| p.clone())
        .expect("a forever grant case");
    sim.apply(&Op::Revoke { patient: first_forever.clone(), provider: x.to_string(), dt: 1 });
    sim.apply(&Op::Grant { patient: first_forever.clone(), provider: x.to_string(), dt: 1, duration: None });
    sim.apply(&Op::Pause(false));
    sim.compare(&first_forever, x, 1);
}

/// Random sequences of grant / revoke / override / end / preferences /
/// deceased / pause / block advance, compared with the model after every
/// step.
#[test]
fn random_histories_match_the_model() {
    for seed in [1u64, 2, 3] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut sim = Sim::new();
        let patients: Vec<String> = (0..4).map(|i| account(10 + i)).collect();
        let providers: Vec<String> = (0..3).map(|i| account(20 + i)).collect();
        // Patients also act as each other's providers, and one patient is
        // never registered.
        let everyone: Vec<String> = patients.iter().chain(&providers).cloned().collect();
        for p in &patients[..3] {
            sim.apply(&Op::Register(p.clone()));
        }
        sim.apply(&Op::Responder { provider: providers[0].clone(), authorized: true });
        sim.apply(&Op::Responder { provider: patients[1].clone(), authorized: true });
        sim.apply(&Op::Timeout(rng.gen_range(1..8)));
        let pick = |rng: &mut ChaCha8Rng, v: &[String]| v[rng.gen_range(0..v.len())].clone();
        for _ in 0..250 {
            let op = match rng.gen_range(0..100) {
                0..=29 => Op::Grant {
                    patient: pick(&mut rng, &patients),
                    provider: pick(&mut rng, &everyone),
                    dt: rng.gen_range(0..=9),
                    duration: match rng.gen_range(0..4) {
                        0 => None,
                        1 => Some([0, 5_259_601, u64::MAX][rng.gen_range(0..3)]),
                        _ => Some(rng.gen_range(1..12)),
                    },
                },
                30..=44 => Op::Revoke {
                    patient: pick(&mut rng, &patients),
                    provider: pick(&mut rng, &everyone),
                    dt: rng.gen_range(0..=8),
                },
                45..=54 => Op::Override { responder: pick(&mut rng, &everyone), patient: pick(&mut rng, &patients) },
                55..=59 => {
                    let patient = pick(&mut rng, &patients);
                    Op::EndOverride { caller: pick(&mut rng, &everyone), patient, provider: pick(&mut rng, &everyone) }
                }
                60..=64 => {
                    Op::Preferences { patient: pick(&mut rng, &patients), mental_health: rng.gen(), genetic: rng.gen() }
                }
                65..=67 => Op::SetDeceased { patient: pick(&mut rng, &patients), deceased: rng.gen_bool(0.5) },
                68..=69 => Op::Pause(rng.gen_bool(0.5)),
                72..=73 => Op::Responder { provider: pick(&mut rng, &everyone), authorized: rng.gen_bool(0.6) },
                70..=71 => Op::Register(pick(&mut rng, &patients)),
                _ => Op::Advance(rng.gen_range(1..4)),
            };
            sim.apply(&op);
            for _ in 0..3 {
                let (patient, accessor) = (pick(&mut rng, &patients), pick(&mut rng, &everyone));
                sim.compare(&patient, &accessor, rng.gen_range(1..=8));
            }
        }
        for patient in &patients {
            for accessor in &everyone {
                for dt in 1..=8 {
                    sim.compare(patient, accessor, dt);
                }
            }
        }
    }
}
