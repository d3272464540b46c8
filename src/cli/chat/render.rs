//! How `ouro chat` draws an answer: text pieces coloured by exit loop (the depth view), hidden
//! thinking, the legend and the per-answer loops histogram. Colours only on a terminal.

use std::io::Write;

/// `/set think show|hide`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Think {
    Show,
    Hide,
}

/// Loop colours for the depth view (xterm-256 indices), loop 1 first; deeper loops reuse the last.
const LOOP_COLORS: [u8; 8] = [39, 44, 78, 184, 208, 196, 201, 250];

fn loop_color(loop_1based: usize) -> u8 {
    LOOP_COLORS[loop_1based.clamp(1, LOOP_COLORS.len()) - 1]
}

/// Rendering settings.
#[derive(Clone, Debug)]
pub struct Style {
    pub color: bool,
    pub depth_view: bool,
    pub think: Think,
}

impl Style {
    /// Write answer pieces `(is_thinking, text)` read out at `loop_1based`; hidden thinking shows
    /// as one dim "(thinking…)" on a terminal (`marked` remembers it was shown).
    pub fn write_pieces(&self, pieces: &[(bool, String)], loop_1based: usize, marked: &mut bool) {
        let mut out = std::io::stdout().lock();
        for (thinking, text) in pieces {
            if text.is_empty() {
                continue;
            }
            if *thinking && self.think == Think::Hide {
                if self.color && !*marked {
                    let _ = write!(out, "\x1b[2m(thinking…)\x1b[0m ");
                    *marked = true;
                }
                continue;
            }
            let r = if self.color && (self.depth_view || *thinking) {
                let dim = if *thinking { "2;" } else { "" };
                let fg = if self.depth_view {
                    format!("38;5;{}", loop_color(loop_1based))
                } else {
                    "39".to_owned()
                };
                write!(out, "\x1b[{dim}{fg}m{text}\x1b[0m")
            } else {
                write!(out, "{text}")
            };
            // A closed stdout (e.g. `| head`) must not kill the session mid-turn.
            if r.is_err() {
                return;
            }
        }
        let _ = out.flush();
    }

    /// The depth-view legend: one coloured square per loop.
    pub fn legend(&self, n_loops: usize) -> String {
        let mut line = String::from("depth view: tokens coloured by exit loop ");
        for l in 1..=n_loops {
            line.push_str(&format!("\x1b[38;5;{}m■ {l}\x1b[0m ", loop_color(l)));
        }
        line
    }

    /// One line: tokens per exit loop for one answer (`loops`: 1-based loop per token).
    pub fn histogram(&self, loops: &[usize], n_loops: usize) -> String {
        const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
        let n = loops.iter().copied().max().unwrap_or(0).max(n_loops);
        let mut counts = vec![0usize; n + 1];
        for &l in loops {
            counts[l] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1);
        let mut line = String::from("loops/token ");
        for (l, &c) in counts.iter().enumerate().skip(1) {
            if self.color {
                let bar = if c == 0 {
                    ' '
                } else {
                    BARS[(c * 7).div_ceil(max).min(7)]
                };
                line.push_str(&format!("\x1b[38;5;{}m{l}{bar}\x1b[0m ", loop_color(l)));
            } else {
                line.push_str(&format!("{l}:{c} "));
            }
        }
        let mean = if loops.is_empty() {
            0.0
        } else {
            loops.iter().sum::<usize>() as f64 / loops.len() as f64
        };
        line.push_str(&format!("| mean {mean:.2} over {} tokens", loops.len()));
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_histogram_counts_every_loop() {
        let s = Style {
            color: false,
            depth_view: true,
            think: Think::Show,
        };
        assert_eq!(
            s.histogram(&[1, 3, 3, 4], 4),
            "loops/token 1:1 2:0 3:2 4:1 | mean 2.75 over 4 tokens"
        );
    }
}
