//! NEON + dotprod kernels (Raspberry Pi 5's Cortex-A76 and up): the int8 dot bodies of
//! `neon.rs` instantiated with SDOT inside `#[target_feature(enable = "neon,dotprod")]`
//! functions. `vdotq_s32` is still unstable (rust#117224), so SDOT is emitted with stable
//! inline asm unless the `nightly-dotprod` feature asks for the intrinsic.

use core::arch::aarch64::*;

use super::neon;

/// `acc` plus, per i32 lane, the dot product of the matching 4 int8 of `a` and `b` (SDOT).
#[cfg(not(feature = "nightly-dotprod"))]
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: SDOT is available: this function is compiled with dotprod, so its callers must
    // guarantee it; the instruction only reads and writes these three registers.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// `acc` plus, per i32 lane, the dot product of the matching 4 int8 of `a` and `b` (SDOT).
#[cfg(feature = "nightly-dotprod")]
#[inline]
#[target_feature(enable = "neon,dotprod")]
pub(super) fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    vdotq_s32(acc, a, b)
}

macro_rules! sdot_dot {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        pub(super) fn $name(w: &[u8], a: &[u8]) -> f32 {
            #[target_feature(enable = "neon,dotprod")]
            fn with_dotprod(w: &[u8], a: &[u8]) -> f32 {
                // SAFETY: this function is compiled with dotprod, as SDOT = true requires.
                unsafe { neon::$body::<true>(w, a) }
            }
            // SAFETY: these functions are only reachable through `dotprod_kernels`, which
            // asserts `is_aarch64_feature_detected!("dotprod")` before installing them.
            unsafe { with_dotprod(w, a) }
        }
    )*};
}

sdot_dot!(
    vec_dot_q4_0_q8_0 => vec_dot_q4_0_q8_0_body,
    vec_dot_q4_1_q8_1 => vec_dot_q4_1_q8_1_body,
    vec_dot_q5_0_q8_0 => vec_dot_q5_0_q8_0_body,
    vec_dot_q5_1_q8_1 => vec_dot_q5_1_q8_1_body,
    vec_dot_q8_0_q8_0 => vec_dot_q8_0_q8_0_body,
    vec_dot_q4_K_q8_K => vec_dot_q4_K_q8_K_body,
    vec_dot_q5_K_q8_K => vec_dot_q5_K_q8_K_body,
    vec_dot_q6_K_q8_K => vec_dot_q6_K_q8_K_body,
);

macro_rules! sdot_dot_x4 {
    ($($name:ident => $body:ident),* $(,)?) => {$(
        pub(super) fn $name(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
            #[target_feature(enable = "neon,dotprod")]
            fn with_dotprod(w: &[u8], a: [&[u8]; 4]) -> [f32; 4] {
                // SAFETY: this function is compiled with dotprod, as SDOT = true requires.
                unsafe { neon::$body::<true>(w, a) }
            }
            // SAFETY: these functions are only reachable through `dotprod_kernels`, which
            // asserts `is_aarch64_feature_detected!("dotprod")` before installing them.
            unsafe { with_dotprod(w, a) }
        }
    )*};
}

sdot_dot_x4!(
    vec_dot_q4_0_q8_0_x4 => vec_dot_q4_0_q8_0_x4_body,
    vec_dot_q8_0_q8_0_x4 => vec_dot_q8_0_q8_0_x4_body,
);
