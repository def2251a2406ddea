//! Ingest scenarios as data: blocks delivered by label with the expected
//! [`Outcome`] of each, and the canonical tip at the end. After every
//! scenario the derived state must be byte-identical to a fresh index fed
//! only the final canonical chain, in order: whatever was delivered,
//! duplicated, buffered or rolled back leaves no trace.

use medanchor_indexer::{Error, Outcome};

use crate::support::{assert_same, config, Chain, TestIndex};

/// What one delivery must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// `Outcome::Applied { height, reorg_depth, connected }`.
    Applied(u64, u64, usize),
    /// `Outcome::Duplicate`.
    Duplicate,
    /// `Outcome::Buffered`.
    Buffered,
    /// `Error::ReorgTooDeep { depth, kept }`, and no change at all.
    TooDeep(u64, u64),
}

use Expect::{Applied, Buffered, Duplicate, TooDeep};

struct Scenario {
    name: &'static str,
    /// Undo depth of the index.
    undo_depth: u64,
    /// Branches besides the genesis `G`: (name, fork point, block count);
    /// blocks are labelled `{name}{height}`.
    branches: &'static [(&'static str, &'static str, u64)],
    /// Deliveries in order.
    steps: Vec<Step>,
    /// The canonical tip at the end.
    tip: &'static str,
}

/// A delivery: the block's label and what it must do.
type Step = (String, Expect);

/// Deliveries of `{branch}{h}` for `heights`, each extending the tip.
fn extend(branch: &str, heights: std::ops::RangeInclusive<u64>) -> Vec<Step> {
    heights.map(|h| (format!("{branch}{h}"), Applied(h, 0, 0))).collect()
}

/// Deliveries as written in the table.
fn at(steps: &[(&str, Expect)]) -> Vec<Step> {
    steps.iter().map(|(label, expect)| (label.to_string(), *expect)).collect()
}

fn steps(parts: Vec<Vec<Step>>) -> Vec<Step> {
    parts.concat()
}

fn genesis() -> Vec<Step> {
    at(&[("G", Applied(0, 0, 0))])
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "append",
            undo_depth: 10_000,
            branches: &[("A", "G", 6)],
            steps: steps(vec![genesis(), extend("A", 1..=6)]),
            tip: "A6",
        },
        Scenario {
            name: "duplicate delivery",
            undo_depth: 10_000,
            branches: &[("A", "G", 5)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=2),
                at(&[("A2", Duplicate), ("A1", Duplicate), ("G", Duplicate)]),
                extend("A", 3..=3),
                at(&[("A3", Duplicate)]),
                // A buffered block delivered again is a duplicate too.
                at(&[("A5", Buffered), ("A5", Duplicate), ("A4", Applied(4, 0, 1)), ("A5", Duplicate)]),
            ]),
            tip: "A5",
        },
        Scenario {
            name: "fork at depth 1",
            undo_depth: 10_000,
            branches: &[("A", "G", 3), ("B", "A2", 2)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=3),
                at(&[("B3", Applied(3, 1, 0)), ("B4", Applied(4, 0, 0))]),
            ]),
            tip: "B4",
        },
        Scenario {
            name: "fork at depth 2",
            undo_depth: 10_000,
            branches: &[("A", "G", 4), ("B", "A2", 3)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=4),
                at(&[("B3", Applied(3, 2, 0)), ("B4", Applied(4, 0, 0)), ("B5", Applied(5, 0, 0))]),
                // The losing branch delivered again changes nothing.
                at(&[("A3", Duplicate), ("A4", Duplicate)]),
            ]),
            tip: "B5",
        },
        Scenario {
            name: "fork at depth 50",
            undo_depth: 10_000,
            branches: &[("A", "G", 55), ("B", "A5", 4)],
            steps: steps(vec![genesis(), extend("A", 1..=55), at(&[("B6", Applied(6, 50, 0))]), extend("B", 7..=9)]),
            tip: "B9",
        },
        Scenario {
            name: "fork back to the original branch",
            undo_depth: 10_000,
            branches: &[("A", "G", 6), ("B", "A2", 2)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=3),
                at(&[("B3", Applied(3, 1, 0)), ("B4", Applied(4, 0, 0))]),
                // A4 builds on A3, which is stored but no longer canonical:
                // roll back B4 and B3, re-apply A3, apply A4.
                at(&[("A4", Applied(4, 2, 0))]),
                extend("A", 5..=6),
            ]),
            tip: "A6",
        },
        Scenario {
            name: "out of order: child before parent",
            undo_depth: 10_000,
            branches: &[("A", "G", 4)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=1),
                at(&[("A3", Buffered), ("A2", Applied(2, 0, 1))]),
                extend("A", 4..=4),
            ]),
            tip: "A4",
        },
        Scenario {
            name: "out of order: a longer buffered chain",
            undo_depth: 10_000,
            branches: &[("A", "G", 7)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=1),
                at(&[
                    ("A6", Buffered),
                    ("A4", Buffered),
                    ("A5", Buffered),
                    ("A3", Buffered),
                    ("A2", Applied(2, 0, 4)),
                    ("A7", Applied(7, 0, 0)),
                ]),
            ]),
            tip: "A7",
        },
        Scenario {
            name: "out of order: a buffered fork connects with a re-org",
            undo_depth: 10_000,
            branches: &[("A", "G", 4), ("B", "A1", 4)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=4),
                // B2 (on A1) arrives last: B3..B5 wait for it, then the whole
                // branch replaces A2..A4.
                at(&[("B5", Buffered), ("B3", Buffered), ("B4", Buffered), ("B2", Applied(2, 3, 3))]),
            ]),
            tip: "B5",
        },
        Scenario {
            name: "re-org deeper than the undo depth is refused",
            undo_depth: 3,
            branches: &[("A", "G", 6), ("B", "A2", 2), ("C", "A3", 1)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=6),
                // Depth 4 > 3: refused, and refused again on redelivery.
                at(&[("B3", TooDeep(4, 3)), ("B3", TooDeep(4, 3))]),
                // Depth 3 is exactly what is kept.
                at(&[("C4", Applied(4, 3, 0))]),
            ]),
            tip: "C4",
        },
        Scenario {
            name: "second genesis announcement",
            undo_depth: 10_000,
            branches: &[("A", "G", 4)],
            steps: steps(vec![
                genesis(),
                extend("A", 1..=3),
                // The same genesis id again, without transactions.
                at(&[("G'", Duplicate)]),
                extend("A", 4..=4),
                at(&[("G'", Duplicate), ("G", Duplicate)]),
            ]),
            tip: "A4",
        },
    ]
}

fn outcome_of(expect: Expect) -> Option<Outcome> {
    match expect {
        Applied(height, reorg_depth, connected) => Some(Outcome::Applied { height, reorg_depth, connected }),
        Duplicate => Some(Outcome::Duplicate),
        Buffered => Some(Outcome::Buffered),
        TooDeep(..) => None,
    }
}

/// Runs one scenario; the only caller of the ingest API in this module.
fn check(s: &Scenario) {
    let mut chain = Chain::scenario_genesis();
    for (name, from, count) in s.branches {
        chain.branch(name, from, *count);
    }
    chain.reannounce("G'", "G");
    let index = TestIndex::new(config(s.undo_depth));
    for (n, (label, expect)) in s.steps.iter().enumerate() {
        let context = format!("{}: step {n} ({label})", s.name);
        let before = matches!(expect, TooDeep(..)).then(|| index.everything());
        let got = index.ingest(chain.block(label));
        match (*expect, got) {
            (TooDeep(depth, kept), Err(Error::ReorgTooDeep { depth: d, kept: k })) => {
                assert_eq!((d, k), (depth, kept), "{context}");
                let after = index.everything();
                assert_same(&format!("{context}: state after a refused re-org"), &after, &before.unwrap_or_default());
            }
            (expect, Ok(outcome)) if outcome_of(expect).as_ref() == Some(&outcome) => {}
            (expect, got) => panic!("{context}: expected {expect:?}, got {got:?}"),
        }
    }
    let tip = index.tip().expect("a tip");
    assert_eq!(chain.label_of(&tip), Some(s.tip), "{}: canonical tip", s.name);
    let fresh = chain.fresh_index(s.tip, config(s.undo_depth));
    assert_same(
        &format!("{}: derived state vs a fresh index of the canonical chain", s.name),
        &index.derived(),
        &fresh.derived(),
    );
}

#[test]
fn scenarios_match_a_fresh_index_of_the_canonical_chain() {
    for s in scenarios() {
        check(&s);
    }
}

/// The scenario chains carry real state, so the equality above is not
/// vacuous: every derived family is written, and branches differ.
#[test]
fn scenario_chains_carry_realistic_event_mixes() {
    let mut chain = Chain::scenario_genesis();
    chain.branch("A", "G", 55);
    chain.branch("B", "A5", 4);
    let index = chain.fresh_index("A55", config(10_000));
    for (cf, rows) in index.derived() {
        assert!(!rows.is_empty(), "family {} is empty after 55 realistic blocks", cf.name());
    }
    let names = |label: &str| -> Vec<String> {
        let block = chain.block(label);
        block
            .txs
            .iter()
            .flat_map(|tx| &tx.events)
            .map(|(_, e)| serde_json::to_value(e).expect("json")["event"]["event"].to_string())
            .collect()
    };
    let kinds: std::collections::BTreeSet<String> = (1..=55).flat_map(|h| names(&format!("A{h}"))).collect();
    assert!(kinds.len() >= 10, "branch A prints varied events: {kinds:?}");
    assert_ne!(names("A6"), names("B6"), "branches carry different events");
}
