//! The scheduler's rules, apart from any store or clock: when a periodic
//! job is due, who holds it, and what its record says after a run.
//!
//! A job's [`JobState`] is stored (the service keeps it in its database):
//! when the job was first registered, the last run's start, end and
//! outcome, counts, and a lease. A job is due `every` after its last start
//! (or, before its first run, after it was registered: a new node does
//! not back up or sweep the moment it starts) — so a node that was down
//! through several periods runs it **once** on start, not once per period
//! missed. Before running, a node takes the
//! lease (compare-and-set in the store) for `lease_ms`; another node sees
//! it held and skips, until it ends or expires (a node killed mid-run
//! leaves a lease that lapses, and the job runs again elsewhere).

use serde::{Deserialize, Serialize};

/// A periodic job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobSpec {
    /// Its name (`share-sweep`, `backup`, …).
    pub name: &'static str,
    /// How often.
    pub every_ms: u64,
    /// How long a run may hold the job before another node may take it.
    pub lease_ms: u64,
}

/// Who runs a job now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The node (its process id and start).
    pub holder: String,
    /// Until when (unix ms).
    pub until_ms: u64,
}

/// A job's stored record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// When a scheduler first saw the job (unix ms).
    #[serde(default)]
    pub registered_ms: Option<u64>,
    /// When the last run started (unix ms).
    pub last_start_ms: Option<u64>,
    /// When it ended.
    pub last_end_ms: Option<u64>,
    /// `ok` or `failed`.
    pub last_outcome: Option<String>,
    /// What it did, or why it failed (no secrets, no PHI: counts and codes).
    pub last_detail: Option<String>,
    /// Runs started, all time.
    pub runs: u64,
    /// Runs failed, all time.
    pub failures: u64,
    /// Failed runs since the last success (an alert while above zero).
    pub failing: u64,
    /// Held while a run is under way.
    pub lease: Option<Lease>,
}

impl JobState {
    /// When the job is next due.
    pub fn next_due_ms(&self, spec: &JobSpec) -> u64 {
        self.last_start_ms.or(self.registered_ms).map_or(0, |t| t.saturating_add(spec.every_ms))
    }

    /// The state once a scheduler sees the job for the first time at
    /// `now`; `None` when it was seen before.
    pub fn register(&self, now: u64) -> Option<JobState> {
        if self.registered_ms.is_some() || self.last_start_ms.is_some() {
            return None;
        }
        Some(JobState { registered_ms: Some(now), ..self.clone() })
    }

    /// Whether it is due at `now` (whoever holds it).
    pub fn is_due(&self, spec: &JobSpec, now: u64) -> bool {
        now >= self.next_due_ms(spec)
    }

    /// Whether a run holds it at `now` (a lease not yet lapsed).
    pub fn held(&self, now: u64) -> bool {
        self.lease.as_ref().is_some_and(|l| l.until_ms > now)
    }

    /// The state once `holder` takes the job at `now` to run it, or `None`
    /// when it is not due or a run holds it.
    pub fn take(&self, spec: &JobSpec, holder: &str, now: u64) -> Option<JobState> {
        if !self.is_due(spec, now) || self.held(now) {
            return None;
        }
        let mut next = self.clone();
        next.last_start_ms = Some(now);
        next.runs += 1;
        next.lease = Some(Lease { holder: holder.into(), until_ms: now.saturating_add(spec.lease_ms) });
        Some(next)
    }

    /// The state once `holder`'s run ends at `now` (its lease released).
    /// `None` when the lease is no longer `holder`'s (it lapsed and another
    /// node took the job): that node's record stands.
    pub fn finish(&self, holder: &str, now: u64, outcome: Result<String, String>) -> Option<JobState> {
        if self.lease.as_ref().is_none_or(|l| l.holder != holder) {
            return None;
        }
        let mut next = self.clone();
        next.last_end_ms = Some(now);
        next.lease = None;
        match outcome {
            Ok(detail) => {
                next.last_outcome = Some("ok".into());
                next.last_detail = Some(detail);
                next.failing = 0;
            }
            Err(detail) => {
                next.last_outcome = Some("failed".into());
                next.last_detail = Some(detail);
                next.failures += 1;
                next.failing += 1;
            }
        }
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: JobSpec = JobSpec { name: "sweep", every_ms: 1_000, lease_ms: 300 };

    #[test]
    fn a_job_runs_when_due_once_however_long_the_node_was_down() {
        let s = JobState::default().register(0).expect("new");
        assert!(s.register(5).is_none(), "registered once");
        assert!(s.take(&SPEC, "a", 500).is_none(), "a new job waits a period");
        let taken = s.take(&SPEC, "a", 1_010).expect("due");
        let done = taken.finish("a", 1_020, Ok("3 swept".into())).expect("a's");
        assert_eq!((done.runs, done.last_outcome.as_deref(), done.lease.clone()), (1, Some("ok"), None));
        assert!(done.take(&SPEC, "a", 1_500).is_none(), "not due before a period has passed");
        // Down for ten periods: due once, then not again until a period on.
        let again = done.take(&SPEC, "a", 10_010).expect("due after downtime");
        let again = again.finish("a", 10_020, Ok(String::new())).expect("a's");
        assert_eq!(again.runs, 2);
        assert!(again.take(&SPEC, "a", 10_500).is_none());
        assert_eq!(again.next_due_ms(&SPEC), 11_010);
    }

    #[test]
    fn a_lease_keeps_others_out_until_it_ends_or_lapses() {
        let held = JobState::default().take(&SPEC, "a", 0).expect("a takes it");
        assert!(held.take(&SPEC, "b", 100).is_none(), "held by a");
        // a was killed: its lease lapses, b takes the job, and a's late
        // finish does not overwrite b's record.
        let b = JobState { last_start_ms: Some(0), ..held.clone() };
        let b = b.take(&SPEC, "b", 1_400).expect("lapsed and due");
        assert!(b.finish("a", 1_450, Ok(String::new())).is_none());
        let b = b.finish("b", 1_500, Err("store unavailable".into())).expect("b's");
        assert_eq!((b.failures, b.failing, b.last_outcome.as_deref()), (1, 1, Some("failed")));
        let b = b.take(&SPEC, "b", 2_400).expect("due").finish("b", 2_401, Ok(String::new())).expect("b's");
        assert_eq!((b.failures, b.failing), (1, 0), "a success ends the alert");
    }
}
