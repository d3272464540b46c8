//! `synth --residual-scale S`: only the residual writers (the post-sublayer norms) and the final
//! norm's spread change, exactly by S; a small S makes the early loops read out what full depth
//! reads out (draft acceptance under self-speculation rises); bad values are refused.

mod common;

use common::*;
use ouro::engine::{Event, GenStats, GenerateConfig, Generator, Speculation};
use ouro::model::{KvType, Model};
use ouro::sampler::SamplerConfig;
use ouro::session::{ExitMode, Session, SessionOptions};
use safetensors::SafeTensors;
use std::path::Path;

fn synth(dir: &Path, scale: &str) {
    run_ok(&[
        "synth",
        "--preset",
        "tiny",
        "-o",
        dir.to_str().unwrap(),
        "--seed",
        "9",
        "--residual-scale",
        scale,
    ]);
}

fn bf16_values(st: &SafeTensors, name: &str) -> Vec<f32> {
    st.tensor(name)
        .unwrap()
        .data()
        .chunks_exact(2)
        .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect()
}

#[test]
fn residual_scale_changes_only_the_residual_writers_and_the_final_norm() {
    let tmp = tempfile::tempdir().unwrap();
    let (one, small) = (tmp.path().join("one"), tmp.path().join("small"));
    synth(&one, "1");
    synth(&small, "0.01");
    let (a, b) = (
        std::fs::read(one.join("model.safetensors")).unwrap(),
        std::fs::read(small.join("model.safetensors")).unwrap(),
    );
    let (a, b) = (
        SafeTensors::deserialize(&a).unwrap(),
        SafeTensors::deserialize(&b).unwrap(),
    );
    let mut scaled = 0;
    for name in a.names() {
        let (x1, xs) = (bf16_values(&a, name), bf16_values(&b, name));
        if name.ends_with("input_layernorm_2.weight")
            || name.ends_with("post_attention_layernorm_2.weight")
        {
            // Same uniform draws, mean and spread × S: x_S = S · x_1 up to bf16 rounding
            // (2^-9 relative each).
            for (x1, xs) in x1.iter().zip(&xs) {
                assert!(
                    (xs - 0.01 * x1).abs() <= 0.01 * x1.abs() / 128.0,
                    "{name}: {xs} vs 0.01 × {x1}"
                );
            }
            scaled += 1;
        } else if name == "model.norm.weight" {
            // Spread around 1 × S; bf16 near 1 has a step of 2^-7.
            for (x1, xs) in x1.iter().zip(&xs) {
                assert!(
                    (xs - 1.0 - 0.01 * (x1 - 1.0)).abs() <= 1.0 / 256.0 + 1e-6,
                    "{name}: {xs} vs 1 + 0.01 × ({x1} − 1)"
                );
            }
            assert!(x1.iter().any(|x| (x - 1.0).abs() > 0.05), "S = 1 keeps 0.1");
        } else {
            assert_eq!(
                a.tensor(name).unwrap().data(),
                b.tensor(name).unwrap().data(),
                "{name} must not change"
            );
        }
    }
    assert_eq!(scaled, 2 * 2, "two post-norms in each of tiny's two layers");
    let cfg = config(&small);
    assert_eq!(
        cfg["synthetic_residual_scale"].as_f64(),
        Some(0.01f32 as f64)
    );
    assert_eq!(
        cfg["_name_or_path"], "synthetic-noise-residual-scale-0.01",
        "the GGUF's general.name says what it is"
    );
    assert!(config(&one).get("synthetic_residual_scale").is_none());
}

/// Greedy generation with self-speculation (D = 2, N = 4) on a converted tiny synth.
fn speculate(dir: &Path, gguf: &Path) -> GenStats {
    hf2gguf(dir, gguf, "f32");
    let model = Model::load(gguf).expect("load");
    let mut s = Session::new(
        &model,
        SessionOptions {
            ctx: 256,
            kv_type: KvType::F32,
            threads: 1,
            loops: None,
            exit_threshold: Some(1.0),
            exit_mode: ExitMode::Select,
        },
    )
    .expect("session");
    let prompt = model
        .tokenizer()
        .encode("The quick brown fox jumps over the lazy dog", true)
        .expect("encode");
    let cfg = GenerateConfig {
        sampler: SamplerConfig {
            temp: 0.0,
            ..SamplerConfig::default()
        },
        max_tokens: Some(64),
        ignore_eos: true,
        speculation: Some(Speculation {
            draft_loops: 2,
            draft_max: 4,
        }),
        ..GenerateConfig::default()
    };
    let mut stats = None;
    for e in Generator::new(&mut s, &prompt, 0, cfg).expect("generator") {
        if let Event::Done { stats: st, .. } = e.expect("event") {
            stats = Some(st);
        }
    }
    stats.expect("done")
}

/// The knob does what it is for: on tiny (4 loops), loop 2's readout agrees with loop 4's far
/// more often at S = 0.001 than at S = 1 (measured 2026-11-30: 0 of 67 drafts accepted at
/// S = 1, 63 of 63 at S = 0.001).
#[test]
fn small_residual_scale_raises_draft_acceptance() {
    let tmp = tempfile::tempdir().unwrap();
    let mut acceptance = Vec::new();
    for scale in ["1", "0.001"] {
        let dir = tmp.path().join(scale);
        synth(&dir, scale);
        let st = speculate(&dir, &tmp.path().join(format!("{scale}.gguf")));
        acceptance.push(st.acceptance());
        eprintln!(
            "residual scale {scale}: {} of {} drafts accepted, {:.2} tokens per verification",
            st.accepted,
            st.drafted,
            st.tokens_per_verify()
        );
    }
    assert!(acceptance[1] >= 0.9, "S = 0.001: {acceptance:?}");
    assert!(acceptance[0] < acceptance[1] - 0.3, "{acceptance:?}");
}

#[test]
fn bad_residual_scales_are_refused_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["0", "-1", "nan", "inf"] {
        let dir = tmp.path().join(format!("out-{bad}"));
        let arg = format!("--residual-scale={bad}");
        let o = run(&[
            "synth",
            "--preset",
            "tiny",
            "-o",
            dir.to_str().unwrap(),
            &arg,
        ]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--residual-scale"), "{bad}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
        assert!(!dir.exists(), "{bad}: nothing written");
    }
}
