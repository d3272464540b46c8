//! Chat templates render byte-identically to Python jinja2 as transformers configures it.
//!
//! The expected strings were recorded once by tests/py/record_chat_templates.py into
//! tests/golden/chat_templates.json (ChatML, a Llama-3-style and a Thinking-style template,
//! including two conversations that the Thinking template rejects with `raise_exception`).

use ouro::chat_template::{ChatTemplate, Message};
use serde_json::Value as Json;

fn golden() -> Json {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/chat_templates.json"
    );
    let text =
        std::fs::read_to_string(path).expect("tests/golden/chat_templates.json is committed");
    serde_json::from_str(&text).expect("golden JSON parses")
}

fn str_field<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("golden case lacks string field {key}"))
}

/// The recorded extra kwargs are booleans and strings only.
fn to_jinja(v: &Json) -> minijinja::Value {
    match v {
        Json::Bool(b) => minijinja::Value::from(*b),
        Json::String(s) => minijinja::Value::from(s.as_str()),
        other => panic!("unsupported extra kwarg in golden: {other}"),
    }
}

#[test]
fn templates_match_python_jinja2() {
    let g = golden();
    let cases = g["cases"].as_array().expect("cases array");
    assert!(
        cases.len() >= 10,
        "expected the recorded cases, got {}",
        cases.len()
    );
    let mut rendered = 0;
    let mut raised = 0;
    for (i, case) in cases.iter().enumerate() {
        let name = str_field(case, "template");
        let source = g["templates"][name].as_str().expect("template source");
        let t = ChatTemplate::new(
            source,
            str_field(case, "bos_token"),
            str_field(case, "eos_token"),
        )
        .unwrap_or_else(|e| panic!("case {i} ({name}): {e}"));
        let messages: Vec<Message> =
            serde_json::from_value(case["messages"].clone()).expect("messages");
        let add_gen = case["add_generation_prompt"].as_bool().expect("bool");
        let extra: Vec<(String, minijinja::Value)> = case["extra"]
            .as_object()
            .expect("extra object")
            .iter()
            .map(|(k, v)| (k.clone(), to_jinja(v)))
            .collect();
        let extra: Vec<(&str, minijinja::Value)> =
            extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let got = t.render_with(&messages, add_gen, &extra);
        match (case.get("output"), case.get("error")) {
            (Some(want), _) => {
                let got = got.unwrap_or_else(|e| panic!("case {i} ({name}): {e}"));
                assert_eq!(
                    got,
                    want.as_str().expect("output string"),
                    "case {i} ({name})"
                );
                rendered += 1;
            }
            (None, Some(want)) => {
                let err = got.expect_err("jinja2 raised here").to_string();
                let want = want.as_str().expect("error string");
                assert!(
                    err.contains(want),
                    "case {i} ({name}): {err:?} lacks {want:?}"
                );
                raised += 1;
            }
            (None, None) => panic!("case {i} has neither output nor error"),
        }
    }
    assert!(
        rendered >= 10 && raised >= 2,
        "rendered {rendered}, raised {raised}"
    );
}

#[test]
fn chatml_fallback_matches_recorded_chatml() {
    let g = golden();
    let source = g["templates"]["chatml"].as_str().expect("chatml source");
    assert_eq!(source, ouro::chat_template::CHATML_TEMPLATE);
    let (t, notice) = ChatTemplate::from_source_or_chatml(None, "<|im_start|>", "<|im_end|>")
        .expect("fallback compiles");
    assert!(t.is_fallback());
    assert!(notice.is_some_and(|n| n.contains("ChatML")));
}
