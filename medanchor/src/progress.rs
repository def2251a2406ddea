//! The commands' progress bars (`indicatif`): drawn on stderr only when
//! it is a terminal, so logs, pipes and tests get the summary lines alone.

/// A progress bar of bytes or of items.
pub(crate) struct ProgressBar {
    bar: indicatif::ProgressBar,
}

impl ProgressBar {
    fn styled(what: &'static str, template: &str) -> ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("#>-");
        bar.set_style(style);
        bar.set_prefix(what);
        ProgressBar { bar }
    }

    /// A bar of bytes (`backing up`, `exporting`).
    pub(crate) fn new(what: &'static str) -> ProgressBar {
        ProgressBar::styled(
            what,
            "{prefix} [{bar:30}] {percent:>3}%  {bytes} / {total_bytes}  {bytes_per_sec}  eta {eta}",
        )
    }

    /// A bar of items (`replaying` blocks).
    pub(crate) fn items(what: &'static str, unit: &'static str) -> ProgressBar {
        let template = format!("{{prefix}} [{{bar:30}}] {{pos}} / {{len}} {unit}  {{per_sec}}  eta {{eta}}");
        ProgressBar::styled(what, &template)
    }

    /// A spinner for work whose size is unknown; it ticks on its own.
    pub(crate) fn spinner(what: &'static str) -> ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix}  {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_prefix(what);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        ProgressBar { bar }
    }

    pub(crate) fn show(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
