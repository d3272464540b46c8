//! The exit distribution over loops and the Q-exit rule, in f32 as the reference does.
//!
//! With gates λ_0 … λ_{T−1}: p_t = λ_t · Π_{j<t}(1 − λ_j) for t < T−1, and the last loop takes
//! the rest, p_{T−1} = Π_{j<T−1}(1 − λ_j) (its own gate is ignored). A token exits at the first
//! t whose CDF Σ_{k≤t} p_k reaches the threshold Q, else at T−1.

/// The exit rule applied one loop at a time, as the forward pass meets the gates.
#[derive(Clone, Debug)]
pub struct ExitTracker {
    n_loops: usize,
    threshold: f32,
    t: usize,
    /// Π(1 − λ_j) over the loops seen so far.
    survive: f32,
    cdf: f32,
    exited: Option<usize>,
}

impl ExitTracker {
    /// A tracker for `n_loops` loops at threshold `q` (`f32::INFINITY`: only the last loop).
    pub fn new(n_loops: usize, q: f32) -> Self {
        ExitTracker {
            n_loops,
            threshold: q,
            t: 0,
            survive: 1.0,
            cdf: 0.0,
            exited: None,
        }
    }

    /// Feed the gate of the next loop; returns p_t and, the first time the CDF reaches the
    /// threshold (or at the last loop), the exit loop.
    pub fn push(&mut self, gate: f32) -> (f32, Option<usize>) {
        let t = self.t;
        let last = t + 1 >= self.n_loops;
        let p = if last {
            self.survive
        } else {
            gate * self.survive
        };
        self.survive *= 1.0 - gate;
        self.cdf += p;
        self.t += 1;
        let newly = if self.exited.is_none() && (self.cdf >= self.threshold || last) {
            self.exited = Some(t);
            Some(t)
        } else {
            None
        };
        (p, newly)
    }

    /// The exit loop once decided.
    pub fn exited(&self) -> Option<usize> {
        self.exited
    }
}

/// The logistic function in f32.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exit probabilities p_t for the gates of `gates.len()` loops.
    fn exit_pdf(gates: &[f32]) -> Vec<f32> {
        let mut tracker = ExitTracker::new(gates.len(), f32::INFINITY);
        gates.iter().map(|&g| tracker.push(g).0).collect()
    }

    /// The 0-based exit loop for `gates` at threshold `q`.
    fn exit_step(gates: &[f32], q: f32) -> usize {
        let mut tracker = ExitTracker::new(gates.len(), q);
        for &g in gates {
            if let (_, Some(t)) = tracker.push(g) {
                return t;
            }
        }
        gates.len().saturating_sub(1)
    }

    #[test]
    fn pdf_sums_to_one_and_last_takes_the_rest() {
        let g = [0.2f32, 0.5, 0.9, 0.3];
        let p = exit_pdf(&g);
        assert!((p[0] - 0.2).abs() < 1e-7);
        assert!((p[1] - 0.8 * 0.5).abs() < 1e-7);
        assert!((p[2] - 0.8 * 0.5 * 0.9).abs() < 1e-7);
        assert!((p[3] - 0.8 * 0.5 * 0.1).abs() < 1e-7);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }

    #[test]
    fn exit_step_is_first_cdf_reaching_q() {
        let g = [0.2f32, 0.5, 0.9, 0.3];
        assert_eq!(exit_step(&g, 0.1), 0);
        assert_eq!(exit_step(&g, 0.2), 0);
        assert_eq!(exit_step(&g, 0.5), 1);
        assert_eq!(exit_step(&g, 0.95), 2);
        assert_eq!(exit_step(&g, 1.0), 3);
        assert_eq!(exit_step(&[0.7], 0.9), 0);
    }
}
