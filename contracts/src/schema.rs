//! Store schema versions: the one forward-migration runner the devnet's
//! chain, the indexer and the API database open through. Pure control
//! flow — each store says how its version is read and stamped, whether it
//! holds data, and what each step does.
//!
//! The rules, the same for every store:
//! - a new (empty) store is stamped at the target version at once;
//! - a store with data and no stamp is version 1 (the first release's
//!   layout), and is stamped so before anything else;
//! - each step runs in order from the store's version up, and the next
//!   version is stamped only once a step is done, so a crash part-way
//!   leaves a store the next open finishes (a step's writes are
//!   idempotent);
//! - a newer version, or one no step leads on from, is refused — never
//!   opened.

/// What the runner needs of a store.
pub trait Versioned: Sized {
    /// The store's error.
    type Error;
    /// Names the store in log lines ("migrating the index").
    const NAME: &'static str;
    /// The stamped version (`None` when there is none).
    fn stored_version(&self) -> Result<Option<u32>, Self::Error>;
    /// Whether the store holds no data (its version key aside).
    fn is_empty(&self) -> Result<bool, Self::Error>;
    /// Stamps `version`, durably.
    fn stamp(&self, version: u32) -> Result<(), Self::Error>;
    /// The refusal of a store at `found`.
    fn refused(found: String) -> Self::Error;
}

/// One step: brings a store at version `from` to `from + 1`.
pub struct Migration<S: Versioned> {
    /// The version it migrates from.
    pub from: u32,
    /// What it does (logged).
    pub what: &'static str,
    /// The step; its writes must be idempotent (it runs again if a crash
    /// comes before the next version is stamped).
    pub run: fn(&S) -> Result<(), S::Error>,
}

// By hand: a derive would ask `S` itself to be `Clone`/`Debug`.
impl<S: Versioned> Clone for Migration<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Versioned> Copy for Migration<S> {}

impl<S: Versioned> std::fmt::Debug for Migration<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Migration").field("from", &self.from).field("what", &self.what).finish()
    }
}

/// Brings `store` to version `target` with `steps` (see the module docs).
pub fn migrate<S: Versioned>(store: &S, steps: &[Migration<S>], target: u32) -> Result<(), S::Error> {
    let stored = store.stored_version()?;
    let mut version = match stored {
        Some(v) => v,
        None if store.is_empty()? => return store.stamp(target),
        None => 1,
    };
    if version > target {
        return Err(S::refused(version.to_string()));
    }
    if stored.is_none() {
        store.stamp(version)?;
    }
    while version < target {
        let step = steps
            .iter()
            .find(|s| s.from == version)
            .ok_or_else(|| S::refused(format!("{version} (this build has no migration from it)")))?;
        tracing::info!(from = version, to = version + 1, step = step.what, "migrating {}", S::NAME);
        (step.run)(store)?;
        version += 1;
        store.stamp(version)?;
    }
    Ok(())
}
