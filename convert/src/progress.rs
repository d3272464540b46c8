//! Byte progress bar with ETA on a terminal (stderr); nothing when stderr is not a TTY.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(total_bytes: u64) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style);
        }
        Progress(bar)
    }

    pub fn inc(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
