//! The commands' progress bar.

/// A one-line progress bar on stderr, drawn only when stderr is a
/// terminal (logs and tests get the summary lines alone), at most ten
/// times a second.
pub(crate) struct ProgressBar {
    what: &'static str,
    tty: bool,
    last: std::cell::Cell<Option<std::time::Instant>>,
}

impl ProgressBar {
    pub(crate) fn new(what: &'static str) -> ProgressBar {
        use std::io::IsTerminal;
        ProgressBar { what, tty: std::io::stderr().is_terminal(), last: Default::default() }
    }

    pub(crate) fn show(&self, done: u64, total: u64) {
        let now = std::time::Instant::now();
        if !self.tty || self.last.get().is_some_and(|t| now - t < std::time::Duration::from_millis(100)) {
            return;
        }
        self.last.set(Some(now));
        let share = if total == 0 { 1.0 } else { done as f64 / total as f64 };
        let filled = (share * 30.0).round() as usize;
        eprint!(
            "\r{} [{}{}] {:>3.0}%  {:.2} / {:.2} GB",
            self.what,
            "#".repeat(filled.min(30)),
            "-".repeat(30 - filled.min(30)),
            share * 100.0,
            done as f64 / 1e9,
            total as f64 / 1e9
        );
    }

    pub(crate) fn finish(&self) {
        if self.tty && self.last.get().is_some() {
            eprintln!();
        }
    }
}
