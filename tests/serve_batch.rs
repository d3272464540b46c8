//! Continuous batching's step: one `forward_multi` over several sequences (each its own KV
//! cache, position and depth policy) gives exactly the logits, exit loops and KV rows that
//! stepping each sequence alone with `forward` gives. Exact equality holds because the batched
//! matmul computes every output row with the same kernel and summation order as a single row,
//! and attention, norms and the exit rule are per sequence.

mod common;

use std::path::Path;

use ouro::engine::batch::{resolve_depth, step_batch, SeqRequest, Sequence};
use ouro::engine::Event;
use ouro::model::forward::{forward, Depth, ExitMode};
use ouro::model::multi::{forward_multi, SeqStep};
use ouro::model::{KvCache, KvType, Model};
use ouro::sampler::SamplerConfig;

fn demo() -> Model {
    Model::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models/ouro-demo.gguf"))
        .expect("demo model")
}

fn prompt(model: &Model, text: &str) -> Vec<u32> {
    model.tokenizer().encode(text, true).expect("encode")
}

/// A cache holding `tokens` prefilled at `depth`.
fn prefilled(model: &Model, tokens: &[u32], depth: &Depth, kv: KvType) -> KvCache {
    let c = model.config();
    let mut cache = KvCache::new(kv, 1, c.n_layers, c.kv_dim());
    cache.ensure_loop_slots(depth.loops);
    forward(model, &mut cache, tokens, depth, false);
    cache
}

fn kv_rows(cache: &KvCache, pos: usize, kv_dim: usize, n_layers: usize) -> Vec<f32> {
    let mut out = Vec::new();
    let (mut k, mut v) = (vec![0.0; kv_dim], vec![0.0; kv_dim]);
    for lp in 0..cache.n_loop_slots() {
        for l in 0..n_layers {
            cache.read(lp, l, pos, &mut k, &mut v);
            out.extend_from_slice(&k);
            out.extend_from_slice(&v);
        }
    }
    out
}

/// The demo model (q8_0, MHA, 2 layers × 4 loops).
#[test]
fn batched_step_equals_single_steps_demo_q8_0() {
    batched_step_equals_single_steps(&demo());
}

/// The tiny-b fixture in q4_0 (the 1.4B's type; GQA 6/2 heads, 3 layers × 3 loops).
#[test]
fn batched_step_equals_single_steps_tiny_q4_0() {
    let model = Model::load(&common::converted("ouro-tiny-b", "q4_0")).expect("load");
    batched_step_equals_single_steps(&model);
}

fn batched_step_equals_single_steps(model: &Model) {
    let c = model.config();
    let n = c.n_loops;
    let vocab = c.vocab_size;
    let th = c.early_exit_threshold;
    // Different prompts (lengths, so positions), depths and exit modes in one batch.
    let cases: Vec<(Vec<u32>, Depth, u32)> = vec![
        (
            prompt(
                model,
                "<|im_start|>user\nWhat is 347 + 589?<|im_end|>\n<|im_start|>assistant\n347 +",
            ),
            Depth {
                loops: n,
                threshold: th,
                mode: ExitMode::Select,
            },
            5,
        ),
        (
            prompt(model, "Sort 52, 7"),
            Depth {
                loops: n,
                threshold: th,
                mode: ExitMode::Skip,
            },
            9,
        ),
        (
            prompt(
                model,
                "<|im_start|>user\nReverse the digits of 3081.<|im_end|>",
            ),
            Depth {
                loops: 2,
                threshold: None,
                mode: ExitMode::Select,
            },
            1,
        ),
        (
            prompt(model, "What is 702 - 45? 702"),
            Depth {
                loops: n,
                threshold: Some(0.0),
                mode: ExitMode::Skip,
            },
            20,
        ),
        (
            prompt(model, "1"),
            Depth {
                loops: n + 1,
                threshold: None,
                mode: ExitMode::Skip,
            },
            30,
        ),
    ];
    for kv in [KvType::F32, KvType::F16] {
        let mut alone: Vec<KvCache> = cases
            .iter()
            .map(|(p, d, _)| prefilled(model, p, d, kv))
            .collect();
        let mut batched: Vec<KvCache> = cases
            .iter()
            .map(|(p, d, _)| prefilled(model, p, d, kv))
            .collect();
        // Two steps, so the second reads KV the batched step wrote.
        for step in 0..2u32 {
            let single: Vec<_> = cases
                .iter()
                .zip(alone.iter_mut())
                .map(|((_, d, t), cache)| forward(model, cache, &[t + step], d, false))
                .collect();
            let mut steps: Vec<SeqStep<'_>> = cases
                .iter()
                .zip(batched.iter_mut())
                .map(|((_, d, t), cache)| SeqStep {
                    cache,
                    token: t + step,
                    depth: *d,
                })
                .collect();
            let multi = forward_multi(model, &mut steps);
            let evals: u64 = single.iter().map(|o| o.layer_evals).sum();
            assert_eq!(multi.layer_evals, evals);
            for (i, one) in single.iter().enumerate() {
                assert_eq!(
                    one.logits,
                    &multi.logits[i * vocab..][..vocab],
                    "{kv:?} step {step} sequence {i}: logits differ"
                );
                assert_eq!(one.exit_loops[0], multi.exit_loops[i], "sequence {i}");
            }
            // The skip mode / threshold 0 case really exits early, the others differ too.
            assert_eq!(multi.exit_loops[3], 0);
        }
        for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
            assert_eq!(a.n_tokens(), b.n_tokens());
            assert_eq!(a.n_loop_slots(), b.n_loop_slots());
            for pos in 0..a.n_tokens() {
                assert_eq!(
                    kv_rows(a, pos, c.kv_dim(), c.n_layers),
                    kv_rows(b, pos, c.kv_dim(), c.n_layers),
                    "sequence {i} position {pos}: KV differs"
                );
            }
        }
    }
}

/// The engine's slots: three greedy requests decoded together give the answers each gives
/// alone, and a slot reuses the KV of a prompt prefix it holds.
#[test]
fn sequences_decoded_together_answer_as_alone() {
    let model = demo();
    let qs = [
        "What is 347 + 589?",
        "Reverse the digits of 3081.",
        "What is 905 - 487?",
    ];
    let prompts: Vec<Vec<u32>> = qs
        .iter()
        .map(|q| {
            prompt(
                &model,
                &format!("<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n"),
            )
        })
        .collect();
    let depth = resolve_depth(&model, None, None, ExitMode::Select).expect("depth");
    let req = SeqRequest {
        sampler: SamplerConfig {
            temp: 0.0,
            ..SamplerConfig::default()
        },
        max_tokens: 30,
        depth,
        ignore_eos: false,
    };
    let run = |slots: &mut Vec<Sequence<'_>>, which: &[usize]| -> Vec<(String, Vec<usize>)> {
        let mut out = vec![(String::new(), Vec::new()); slots.len()];
        for &i in which {
            slots[i].start(&prompts[i], req.clone()).expect("start");
        }
        while slots.iter().any(Sequence::busy) {
            for (i, s) in slots.iter_mut().enumerate() {
                match s.next_event() {
                    Some(Event::Token { text, loops, .. }) => {
                        out[i].0.push_str(&text);
                        out[i].1.push(loops);
                    }
                    Some(Event::Done { .. }) | None => {}
                }
                if s.exhausted() {
                    s.end(ouro::engine::StopReason::MaxTokens);
                }
            }
            step_batch(slots);
        }
        out
    };
    let mut together: Vec<Sequence<'_>> = (0..3)
        .map(|_| Sequence::new(&model, 256, KvType::F16))
        .collect();
    let joint = run(&mut together, &[0, 1, 2]);
    assert_eq!(joint[0].0, "347 + 589 = 936.");
    assert_eq!(joint[1].0, "1803.");
    assert_eq!(joint[2].0, "905 - 487 = 418.");
    for i in 0..3 {
        let mut alone: Vec<Sequence<'_>> = (0..3)
            .map(|_| Sequence::new(&model, 256, KvType::F16))
            .collect();
        let solo = run(&mut alone, &[i]);
        assert_eq!(solo[i], joint[i], "request {i}");
    }
    // Prefix reuse: slot 0 holds prompt 0 and its answer; the same prompt again reuses all but
    // its last token, under the same depth only.
    assert_eq!(together[0].reusable(&prompts[0], &depth), prompts[0].len());
    let other = Depth { loops: 2, ..depth };
    assert_eq!(together[0].reusable(&prompts[0], &other), 0);
    let cached = together[0].start(&prompts[0], req.clone()).expect("start");
    assert_eq!(cached, prompts[0].len() - 1);
    let again = {
        let mut text = String::new();
        while together[0].busy() {
            if let Some(Event::Token { text: t, .. }) = together[0].next_event() {
                text.push_str(&t);
            }
            if together[0].exhausted() {
                together[0].end(ouro::engine::StopReason::MaxTokens);
            }
            step_batch(&mut together);
        }
        text
    };
    assert_eq!(again, joint[0].0);
}
