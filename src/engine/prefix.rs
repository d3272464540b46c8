//! KV-prefix reuse between the turns of a conversation (llama-server's `cache_prompt`).
//!
//! The cache mirrors a token sequence and the text it stands for. A new rendering of the
//! conversation usually extends that text: then only the suffix is tokenized and prefilled.
//! When it does not (an edited system prompt, a template that rewrites earlier turns), the
//! whole rendering is tokenized and the cache is cut back to the longest common token prefix.

/// What to keep of the cache and what to prefill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReusePlan {
    /// Cached tokens that stay (the cache is truncated to this length).
    pub keep: usize,
    /// Tokens to prefill after them.
    pub new: Vec<u32>,
}

/// The plan for `rendered`, given the cached `tokens` standing for `text`. `encode` tokenizes
/// (special tokens parsed); `bos` is prepended to a full re-tokenization when the model wants
/// one and the encoding does not start with it.
pub fn plan<E>(
    tokens: &[u32],
    text: &str,
    rendered: &str,
    bos: Option<u32>,
    encode: impl Fn(&str) -> Result<Vec<u32>, E>,
) -> Result<ReusePlan, E> {
    if let Some(suffix) = rendered.strip_prefix(text) {
        if !tokens.is_empty() {
            return Ok(ReusePlan {
                keep: tokens.len(),
                new: encode(suffix)?,
            });
        }
    }
    let encoded = encode(rendered)?;
    let mut all = Vec::with_capacity(encoded.len() + 1);
    if let Some(b) = bos {
        if encoded.first() != Some(&b) {
            all.push(b);
        }
    }
    all.extend(encoded);
    let keep = tokens.iter().zip(&all).take_while(|(a, b)| a == b).count();
    Ok(ReusePlan {
        keep,
        new: all.split_off(keep),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per character (its code point); never fails.
    fn chars(s: &str) -> Result<Vec<u32>, ()> {
        Ok(s.chars().map(u32::from).collect())
    }

    fn ids(s: &str) -> Vec<u32> {
        chars(s).unwrap()
    }

    #[test]
    fn an_extension_prefills_only_the_suffix() {
        let p = plan(&ids("ab"), "ab", "abcd", None, chars).unwrap();
        assert_eq!(
            p,
            ReusePlan {
                keep: 2,
                new: ids("cd")
            }
        );
    }

    #[test]
    fn an_empty_cache_tokenizes_everything_with_bos() {
        let p = plan(&[], "", "hi", Some(7), chars).unwrap();
        assert_eq!(
            p,
            ReusePlan {
                keep: 0,
                new: vec![7, 104, 105]
            }
        );
        // No second BOS when the encoding already starts with it.
        let p = plan(&[], "", "\u{7}hi", Some(7), chars).unwrap();
        assert_eq!(p.new, vec![7, 104, 105]);
    }

    #[test]
    fn a_changed_history_keeps_the_common_token_prefix() {
        // The system prompt changed in the middle: keep "sys:" only.
        let p = plan(&ids("sys:A|u1"), "sys:A|u1", "sys:B|u1|u2", None, chars).unwrap();
        assert_eq!(
            p,
            ReusePlan {
                keep: 4,
                new: ids("B|u1|u2")
            }
        );
        // Nothing in common.
        let p = plan(&ids("xyz"), "xyz", "abc", None, chars).unwrap();
        assert_eq!(
            p,
            ReusePlan {
                keep: 0,
                new: ids("abc")
            }
        );
    }

    #[test]
    fn the_same_text_again_needs_nothing_new() {
        let p = plan(&ids("abc"), "abc", "abc", None, chars).unwrap();
        assert_eq!(
            p,
            ReusePlan {
                keep: 3,
                new: vec![]
            }
        );
    }

    #[test]
    fn encoder_errors_pass_through() {
        let fail = |_: &str| Err::<Vec<u32>, &str>("boom");
        assert_eq!(plan(&[1], "a", "ab", None, fail), Err("boom"));
    }
}
