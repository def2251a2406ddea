//! Record operations × roles: who may do what to a record, from the table
//! below (one row per operation, one column per role). Every cell runs on a
//! record of its own, so cells do not influence each other.

use medanchor_contracts::{ClarityValue, ContractError as E};

use super::support::*;

/// Roles, in column order.
const ROLES: [&str; 9] =
    ["self", "read", "write", "admin", "no-access", "no-consent", "unregistered", "inactive", "emergency"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    Ok,
    Err(E),
}
use Cell::{Err as X, Ok as Y};

#[test]
fn record_operations_by_role() {
    let me = X(E::RecordUnauthorized); // a patient never writes their own records
    let low = X(E::InsufficientAccess);
    let ev = X(E::EmergencyViolation);
    let (na, nc, nr, ia) = (X(E::NoProviderAccess), X(E::NoConsent), X(E::ProviderNotFound), X(E::ProviderInactive));
    #[rustfmt::skip]
    let table: Vec<(&str, [Cell; 9])> = vec![
        //                  self read write admin no-access no-consent unregistered inactive emergency
        ("get-record",      [Y,   Y,   Y,    Y,    na,       nc,        nr,          ia,      Y]),
        ("create-record",   [me,  low, Y,    Y,    na,       nc,        nr,          ia,      Y]),
        ("update-record",   [me,  low, Y,    Y,    na,       nc,        nr,          ia,      ev]),
        ("finalize-record", [me,  low, Y,    Y,    na,       nc,        nr,          ia,      ev]),
        ("archive-record",  [me,  low, low,  Y,    na,       nc,        nr,          ia,      ev]),
        ("unlock-record",   [me,  low, low,  Y,    na,       nc,        nr,          ia,      ev]),
    ];

    let mut chain = Chain::new();
    let patient = WALLET_1;
    let setup = account(100); // an admin provider that creates the records
    let actors: Vec<String> =
        (0..ROLES.len() as u32).map(|i| if i == 0 { patient.to_string() } else { account(200 + i) }).collect();
    chain.ok(patient, PC, "register-patient", &[h32(1), none(), none()]);
    for (i, actor) in actors.iter().enumerate().skip(1) {
        let role = ROLES[i];
        if role != "unregistered" {
            chain.ok(DEPLOYER, RM, "register-provider", &[p(actor), h32(i as u8)]);
        }
        if !matches!(role, "no-consent" | "emergency") {
            chain.ok(patient, PC, "grant-consent", &[p(actor), u(1), none()]);
        }
        let level = match role {
            "read" => Some(0),
            "write" => Some(1),
            "admin" | "no-consent" | "inactive" => Some(2),
            _ => None,
        };
        if let Some(level) = level {
            chain.ok(patient, RM, "grant-provider-access", &[p(actor), u(level), none()]);
        }
        if role == "inactive" {
            chain.ok(DEPLOYER, RM, "set-provider-active", &[p(actor), b(false)]);
        }
        if role == "emergency" {
            chain.ok(DEPLOYER, PC, "set-emergency-responder", &[p(actor), b(true)]);
            chain.ok(actor, PC, "emergency-override", &[p(patient), u(1)]);
        }
    }
    chain.ok(DEPLOYER, RM, "register-provider", &[p(&setup), h32(0xff)]);
    chain.ok(patient, PC, "grant-consent", &[p(&setup), u(0), none()]);
    chain.ok(patient, RM, "grant-provider-access", &[p(&setup), u(2), none()]);

    let mut next: u8 = 0;
    let mut fresh = || {
        next += 1;
        next
    };
    for (op, cells) in &table {
        for (i, expected) in cells.iter().enumerate() {
            let (actor, role) = (&actors[i], ROLES[i]);
            let n = fresh();
            let id = id16(n);
            let args: Vec<ClarityValue> = if *op == "create-record" {
                vec![id, p(patient), u(1), h32(n), none(), u(0)]
            } else {
                chain.ok(&setup, RM, "create-record", &[id.clone(), p(patient), u(1), h32(n), none(), u(0)]);
                if *op == "unlock-record" {
                    chain.ok(&setup, RM, "finalize-record", std::slice::from_ref(&id));
                }
                match *op {
                    "update-record" => vec![id, u(1), buff(&[n, 0xaa].repeat(16)), none()],
                    _ => vec![id],
                }
            };
            let out = chain.call(actor, RM, op, &args);
            let got = if out.raw.is_ok() { Y } else { X(out.err().expect("an error code")) };
            assert_eq!(got, *expected, "{op} by {role}");
        }
    }

    // Paused contracts and a deceased patient stop every role, the admin included.
    let admin = &actors[3];
    chain.ok(&setup, RM, "create-record", &[id16(250), p(patient), u(1), h32(250), none(), u(0)]);
    chain.ok(DEPLOYER, PC, "pause", &[]);
    chain.err(admin, RM, "get-record", &[id16(250)], E::Paused);
    chain.err(admin, RM, "update-record", &[id16(250), u(1), h32(251), none()], E::Paused);
    chain.ok(DEPLOYER, PC, "unpause", &[]);
    chain.ok(DEPLOYER, PC, "set-deceased", &[p(patient), b(true)]);
    chain.err(admin, RM, "get-record", &[id16(250)], E::PatientDeceased);
    chain.err(patient, RM, "get-record", &[id16(250)], E::PatientDeceased);
    chain.err(admin, RM, "update-record", &[id16(250), u(1), h32(251), none()], E::PatientDeceased);
}
