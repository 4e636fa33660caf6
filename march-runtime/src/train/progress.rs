//! What a run shows while it works (log lines, progress bars) and how it
//! hears a signal (SIGINT, SIGTERM, SIGHUP: a checkpoint after this step).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn install_ctrl_c() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted twice: exiting without a checkpoint");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupted (SIGINT, SIGTERM or SIGHUP): saving a checkpoint after this step (again to quit now)"
            );
        });
    });
}

/// A run or sweep stopped by SIGINT, SIGTERM or SIGHUP, with what was saved
/// and how to continue (the command exits 130, not 0 and not 1).
#[derive(Debug)]
pub struct Interrupted(pub String);

impl Interrupted {
    /// 128 + SIGINT, as a shell reports a process stopped by Ctrl-C.
    pub const EXIT_CODE: u8 = 130;
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Whether a signal asked the run to stop after this step.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Forget an earlier signal (a new run in this process).
pub(crate) fn clear_interrupt() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// Log to stderr unless quiet.
pub(super) fn say(progress: bool, msg: impl AsRef<str>) {
    if progress {
        eprintln!("{}", msg.as_ref());
    }
}

/// A progress bar on a terminal (`None` elsewhere: plain log lines instead).
/// `unit` empty: training steps; else a count of `unit`.
pub(super) fn progress_bar(
    progress: bool,
    len: u64,
    at: u64,
    unit: &str,
) -> Option<indicatif::ProgressBar> {
    if !progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let template = if unit.is_empty() {
        "{spinner} step {pos}/{len} [{bar:30}] {msg} {elapsed} eta {eta}".to_string()
    } else {
        format!("{{spinner}} {{pos}}/{{len}} {unit} [{{bar:30}}] eta {{eta}}")
    };
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_position(at);
    Some(bar)
}

/// A progress bar over `total` bytes on a terminal (`None` elsewhere).
pub(super) fn bytes_bar(progress: bool, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{binary_bytes}}/{{binary_total_bytes}} {what} [{{bar:30}}] {{binary_bytes_per_sec}} eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(bar)
}
