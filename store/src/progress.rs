//! How far a long job on a store has come (ingest, export, purge, compaction, association):
//! a bar on standard error with the amount done, the rate and the time left, or nothing when
//! the caller does not draw it (a pipe, a server, a test).
//!
//! ```
//! use cohortdb_store::progress::{Progress, Unit};
//! let progress = Progress::hidden();
//! progress.start(Some(1 << 20), Unit::Bytes, "reading");
//! progress.advance(4096);
//! progress.finish();
//! ```

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What a job counts its work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Stored bytes read (of compressed inputs, or of the store's files).
    Bytes,
    /// Things of the named kind ("variants", "bases").
    Items(&'static str),
}

/// A job's progress; cloning gives another handle to the same bar.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Default for Progress {
    fn default() -> Self {
        Self::hidden()
    }
}

impl Progress {
    /// Progress nobody sees.
    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// A bar on standard error when it is a terminal, else hidden.
    pub fn on_terminal() -> Self {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            Self::on_stderr()
        } else {
            Self::hidden()
        }
    }

    /// A bar on standard error, terminal or not (at most a few redraws a second).
    pub fn on_stderr() -> Self {
        let bar = ProgressBar::hidden();
        bar.set_draw_target(ProgressDrawTarget::stderr());
        Self { bar }
    }

    /// Whether anything is drawn.
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Starts (or restarts) the bar at zero of `total` in `unit`, labelled `message`; a spinner
    /// with the elapsed time when the total is unknown.
    pub fn start(&self, total: Option<u64>, unit: Unit, message: &str) {
        let template = match (total, unit) {
            (None, _) => "{spinner} {msg} [{elapsed}]".to_string(),
            (Some(_), Unit::Bytes) => "{msg} {wide_bar} {binary_bytes}/{binary_total_bytes} \
                                       {binary_bytes_per_sec} ETA {eta}"
                .to_string(),
            (Some(_), Unit::Items(what)) => {
                format!("{{msg}} {{wide_bar}} {{human_pos}}/{{human_len}} {what} ETA {{eta}}")
            }
        };
        let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| {
            if total.is_some() {
                ProgressStyle::default_bar()
            } else {
                ProgressStyle::default_spinner()
            }
        });
        self.bar.set_message(message.to_string());
        self.bar.set_style(style);
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.reset_eta();
        // A spinner turns on its own; a bar moves with the work.
        if total.is_none() && self.is_drawn() {
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(200));
        } else {
            self.bar.disable_steady_tick();
        }
    }

    /// Adds `amount` to the work done.
    pub fn advance(&self, amount: u64) {
        self.bar.inc(amount);
    }

    /// Sets the work done to `position`.
    pub fn set_position(&self, position: u64) {
        self.bar.set_position(position);
    }

    /// The work done so far.
    pub fn position(&self) -> u64 {
        self.bar.position()
    }

    /// Replaces the label.
    pub fn message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Clears the bar: the job's own summary line follows it.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
