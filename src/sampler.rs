//! Token sampling: repetition penalty, then greedy (temp 0) or temperature with top-k, min-p
//! and top-p filtering, drawn from a seeded PCG32 so one seed gives the same tokens on every
//! machine. Defaults follow the Ouro model card: temperature 1.0, top-p 0.7.

/// Sampling settings. `top_k` 0, `top_p` 1.0, `min_p` 0.0 and `repeat_penalty` 1.0 disable
/// their filter.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    pub temp: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    /// How many of the latest tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temp: 1.0,
            top_k: 0,
            top_p: 0.7,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5EED,
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): the seed expander of PCG32 here, and a small portable
/// generator of its own (seeded token ids in `ouro bench`, noise in `ouro-convert synth`).
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl SamplerConfig {
    /// Check every setting; the error names the command-line option and the value.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.temp >= 0.0 && self.temp.is_finite()) {
            return Err(format!("--temp must be >= 0, got {}", self.temp));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("--top-p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(format!("--min-p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return Err(format!(
                "--repeat-penalty must be > 0, got {}",
                self.repeat_penalty
            ));
        }
        Ok(())
    }
}

/// PCG32 (XSH RR), seeded through SplitMix64: small, portable and reproducible.
#[derive(Clone, Debug)]
pub struct Pcg32 {
    state: u64,
    inc: u64,
}

impl Pcg32 {
    const MUL: u64 = 6_364_136_223_846_793_005;

    /// The generator of `seed`: state and stream drawn from SplitMix64(seed).
    pub fn new(seed: u64) -> Self {
        let mut sm = SplitMix64(seed);
        let init_state = sm.next_u64();
        let init_seq = sm.next_u64();
        Self::with_stream(init_state, init_seq)
    }

    /// `pcg32_srandom_r(initstate, initseq)` of the PCG reference implementation.
    pub fn with_stream(init_state: u64, init_seq: u64) -> Self {
        let mut rng = Pcg32 {
            state: 0,
            inc: (init_seq << 1) | 1,
        };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(init_state);
        rng.next_u32();
        rng
    }

    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Self::MUL).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        let hi = (self.next_u32() >> 5) as u64;
        let lo = (self.next_u32() >> 6) as u64;
        ((hi << 26) | lo) as f64 / (1u64 << 53) as f64
    }
}

/// A sampler: its settings and RNG state.
#[derive(Clone, Debug)]
pub struct Sampler {
    cfg: SamplerConfig,
    rng: Pcg32,
}

/// Index of the largest value; the lowest index wins ties.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

impl Sampler {
    pub fn new(cfg: SamplerConfig) -> Self {
        let rng = Pcg32::new(cfg.seed);
        Sampler { cfg, rng }
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Whether this sampler always takes the most likely token (temperature 0 or top-k 1).
    pub fn is_greedy(&self) -> bool {
        self.cfg.temp <= 0.0 || self.cfg.top_k == 1
    }

    /// Choose the next token from `logits` (modified in place by the penalty); `history` holds
    /// the tokens so far (prompt and generated).
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        if self.is_greedy() {
            self.penalize(logits, history);
            return argmax(logits) as u32;
        }
        let dist = self.distribution(logits, history);
        self.draw(&dist)
    }

    fn penalize(&self, logits: &mut [f32], history: &[u32]) {
        let c = &self.cfg;
        if c.repeat_penalty != 1.0 && c.repeat_last_n > 0 {
            let start = history.len().saturating_sub(c.repeat_last_n);
            let mut seen: Vec<u32> = history[start..].to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l > 0.0 {
                        *l / c.repeat_penalty
                    } else {
                        *l * c.repeat_penalty
                    };
                }
            }
        }
    }

    /// The distribution `sample` draws from at temperature > 0: penalty, temperature, top-k,
    /// min-p and top-p applied (`logits` modified in place by the penalty).
    pub fn distribution(&self, logits: &mut [f32], history: &[u32]) -> Distribution {
        let c = &self.cfg;
        self.penalize(logits, history);
        // Candidates by descending logit (ties: lower id first), cut to top-k.
        let mut cand: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if cand.is_empty() {
            return Distribution {
                ids: vec![0],
                probs: vec![1.0],
                mass: 1.0,
            };
        }
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if c.top_k > 0 && c.top_k < cand.len() {
            cand.select_nth_unstable_by(c.top_k - 1, by_logit);
            cand.truncate(c.top_k);
        }
        cand.sort_unstable_by(by_logit);
        // Softmax at temperature, in f64.
        let temp = if c.temp > 0.0 { c.temp } else { 1.0 };
        let max = cand[0].1 as f64;
        let mut probs: Vec<f64> = cand
            .iter()
            .map(|&(_, l)| ((l as f64 - max) / temp as f64).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        // min-p: drop tokens below min_p × the top probability.
        let mut keep = probs.len();
        if c.min_p > 0.0 {
            let floor = c.min_p as f64 * probs[0];
            keep = probs.iter().take_while(|&&p| p >= floor).count().max(1);
        }
        // top-p: the smallest prefix whose mass reaches top_p.
        if c.top_p < 1.0 {
            let mut acc = 0.0;
            for (i, &p) in probs[..keep].iter().enumerate() {
                acc += p;
                if acc >= c.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
        }
        probs.truncate(keep);
        let mass: f64 = probs.iter().sum();
        Distribution {
            ids: cand[..keep].iter().map(|&(id, _)| id).collect(),
            probs,
            mass,
        }
    }

    /// Draw a token from `dist` with this sampler's RNG.
    pub fn draw(&mut self, dist: &Distribution) -> u32 {
        let r = self.rng.next_f64() * dist.mass;
        let mut acc = 0.0;
        for (i, &p) in dist.probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return dist.ids[i];
            }
        }
        dist.ids[dist.ids.len() - 1]
    }

    /// Uniform in [0, 1) from this sampler's RNG (speculative sampling's acceptance test).
    pub fn uniform(&mut self) -> f64 {
        self.rng.next_f64()
    }
}

/// A sparse distribution over token ids: `probs` (in candidate order) sum to `mass`.
#[derive(Clone, Debug, PartialEq)]
pub struct Distribution {
    pub ids: Vec<u32>,
    pub probs: Vec<f64>,
    pub mass: f64,
}

impl Distribution {
    /// Probability of `id` (0 outside the support).
    pub fn prob(&self, id: u32) -> f64 {
        self.ids
            .iter()
            .position(|&i| i == id)
            .map_or(0.0, |j| self.probs[j] / self.mass)
    }

    /// Speculative sampling's residual: max(0, p − q) over p's support, renormalized; `None`
    /// when p ≤ q everywhere (then p = q and the draft could not have been rejected).
    pub fn residual(&self, q: &Distribution) -> Option<Distribution> {
        let probs: Vec<f64> = self
            .ids
            .iter()
            .zip(&self.probs)
            .map(|(&id, &p)| (p / self.mass - q.prob(id)).max(0.0))
            .collect();
        let mass: f64 = probs.iter().sum();
        (mass > 0.0).then(|| Distribution {
            ids: self.ids.clone(),
            probs,
            mass,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcg32_matches_the_reference_implementation() {
        // pcg32-demo of pcg-c-basic: pcg32_srandom_r(&rng, 42u, 54u), first six outputs.
        let mut r = Pcg32::with_stream(42, 54);
        let got: Vec<u32> = (0..6).map(|_| r.next_u32()).collect();
        assert_eq!(
            got,
            [0xa15c02b7, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e]
        );
        let mut a = Pcg32::new(42);
        let mut b = Pcg32::new(42);
        let xs: Vec<u32> = (0..4).map(|_| a.next_u32()).collect();
        let ys: Vec<u32> = (0..4).map(|_| b.next_u32()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Pcg32::new(43).next_u32(), xs[0]);
        let u = a.next_f64();
        assert!((0.0..1.0).contains(&u));
    }

    #[test]
    fn splitmix64_matches_the_reference() {
        // splitmix64.c (Vigna), seed 1234567: the first three outputs.
        let mut r = SplitMix64(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
        assert_eq!(r.next_u64(), 9817491932198370423);
    }

    #[test]
    fn validate_names_the_bad_option() {
        let ok = SamplerConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |c: SamplerConfig| c.validate().expect_err("invalid");
        let e = bad(SamplerConfig {
            top_p: 0.0,
            ..ok.clone()
        });
        assert_eq!(e, "--top-p must be in (0, 1], got 0");
        assert!(bad(SamplerConfig {
            temp: -0.5,
            ..ok.clone()
        })
        .starts_with("--temp "));
        assert!(bad(SamplerConfig {
            temp: f32::NAN,
            ..ok.clone()
        })
        .starts_with("--temp "));
        assert!(bad(SamplerConfig {
            min_p: 1.5,
            ..ok.clone()
        })
        .starts_with("--min-p "));
        let e = bad(SamplerConfig {
            repeat_penalty: 0.0,
            ..ok
        });
        assert!(e.starts_with("--repeat-penalty "), "{e}");
    }

    #[test]
    fn greedy_and_filters() {
        let mut s = Sampler::new(SamplerConfig {
            temp: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&mut [1.0, 3.0, 3.0, -1.0], &[]), 1);
        // Repetition penalty moves the argmax off a repeated token.
        let mut s = Sampler::new(SamplerConfig {
            temp: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&mut [2.0, 1.5, 0.0], &[0]), 1);
        // top-k 2 never yields the third token; top-p tiny always yields the best.
        let mut s = Sampler::new(SamplerConfig {
            temp: 1.0,
            top_k: 2,
            top_p: 1.0,
            seed: 7,
            ..Default::default()
        });
        for _ in 0..200 {
            assert_ne!(s.sample(&mut [1.0, 1.0, 0.9], &[]), 2);
        }
        let mut s = Sampler::new(SamplerConfig {
            top_p: 0.01,
            ..Default::default()
        });
        for _ in 0..50 {
            assert_eq!(s.sample(&mut [0.0, 5.0, 4.9], &[]), 1);
        }
        // min-p 0.5 keeps only tokens with at least half the top probability.
        let mut s = Sampler::new(SamplerConfig {
            top_p: 1.0,
            min_p: 0.5,
            seed: 3,
            ..Default::default()
        });
        for _ in 0..200 {
            let t = s.sample(&mut [0.0, 0.1, -3.0], &[]);
            assert!(t < 2);
        }
    }

    #[test]
    fn same_seed_same_tokens_and_temperature_spreads() {
        let logits: Vec<f32> = (0..50).map(|i| (i as f32 * 0.37).sin()).collect();
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                top_p: 1.0,
                seed,
                ..Default::default()
            });
            (0..64)
                .map(|_| s.sample(&mut logits.clone(), &[]))
                .collect::<Vec<u32>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
        let mut distinct = run(11);
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 10);
    }
}
