//! x86_64 kernels: AVX2 + FMA + F16C, AVX-512 (F, BW, VL, VNNI) on top, and AMX int8 tiles on
//! top of that for large resident batches.

// An ISA module: the intrinsics need `unsafe` (the crate root denies it elsewhere).
#![allow(unsafe_code)]

mod amx;
mod avx2;
mod avx512;
mod gemm_k;
mod kv;
mod panel256;
mod panel512;
pub(crate) mod peak;
pub(crate) mod quantize_k;
mod resident256;
mod resident512;

use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0, _MM_HINT_T1};

use crate::dispatch::Kernels;

/// Rows ahead whose lines the decode-attention rows kernels (f16 and q8_0 KV) prefetch, into
/// L2. One head's slice of a cached row is a few lines of a multi-KiB row — a new page every
/// key, which the hardware prefetchers do not follow. Decode attention of an Ouro-1.4B-shaped
/// f16 cache at 512 keys (96 layer passes, 2 threads, on the AMD EPYC VM): no prefetch 33 ms
/// per token; into L1 8 / 16 / 32 rows ahead 26–30 ms (L1's miss buffers fill); into L2 16 /
/// 32 / 64 / 128 rows ahead 23 / 21 / 20–21 / 21 ms.
pub(crate) const KV_ROWS_AHEAD: usize = 64;

/// Prefetch the lines of `x[from..to]` into L2 (nothing when the range is empty or not
/// inside `x`).
#[target_feature(enable = "sse")]
#[inline]
pub(crate) fn prefetch_l2<X>(x: &[X], from: usize, to: usize) {
    if from >= to || to > x.len() {
        return;
    }
    let p = x[from..].as_ptr().cast::<i8>();
    let bytes = (to - from) * size_of::<X>();
    for b in (0..bytes).step_by(64) {
        _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(b));
    }
    _mm_prefetch::<_MM_HINT_T1>(p.wrapping_add(bytes - 1));
}

/// Software prefetch of blocks `i..i + n` of the weight row `x`, four rows ahead, one hint per
/// 64 bytes. A matrix's rows are contiguous, so in GEMV that is what the call four rows later
/// reads. Decode streams the weights from DRAM once per token, and the unpack-and-dot work per
/// byte keeps the out-of-order window from reaching far enough ahead on its own: measured on
/// the 1.4B shape (Q4_0, 1 loop, 2 threads) tg32 went from 8.2–8.8 to 11.9–13.3 tok/s
/// (6.5 → 9.5–10.7 GB/s); 1 KiB ahead did nothing, 4.5 KiB to 32 KiB all gave about the same.
/// A prefetch never faults, whatever the address; `wrapping_add` keeps the arithmetic defined
/// past the end of the allocation.
#[target_feature(enable = "sse")]
#[inline]
pub(crate) fn prefetch_rows_ahead<X>(x: &[X], i: usize, n: usize) {
    let at = x.as_ptr().cast::<u8>().wrapping_add(i * size_of::<X>());
    let ahead = 4 * size_of_val(x);
    for off in (0..n * size_of::<X>()).step_by(64) {
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(off + ahead).cast());
    }
}

/// The four rows after `w` (which are contiguous, as in a matrix) into L2: a prefill tile's
/// next weight group loads while the current one is multiplied.
#[target_feature(enable = "sse")]
#[inline]
pub(crate) fn prefetch_next_group_l2(w: [&[u8]; 4]) {
    let bytes = 4 * w[0].len();
    let next = w[0].as_ptr().wrapping_add(bytes);
    for off in (0..bytes).step_by(64) {
        _mm_prefetch::<_MM_HINT_T1>(next.wrapping_add(off).cast());
    }
}

/// The first feature of the AVX2 path this CPU lacks.
pub(crate) fn missing_avx2() -> Option<&'static str> {
    if !is_x86_feature_detected!("avx2") {
        Some("avx2")
    } else if !is_x86_feature_detected!("fma") {
        Some("fma")
    } else if !is_x86_feature_detected!("f16c") {
        Some("f16c")
    } else {
        None
    }
}

/// The first feature of the AVX-512 path this CPU lacks.
pub(crate) fn missing_avx512() -> Option<&'static str> {
    missing_avx2().or(if !is_x86_feature_detected!("avx512f") {
        Some("avx512f")
    } else if !is_x86_feature_detected!("avx512bw") {
        Some("avx512bw")
    } else if !is_x86_feature_detected!("avx512vl") {
        Some("avx512vl")
    } else if !is_x86_feature_detected!("avx512vnni") {
        Some("avx512vnni")
    } else {
        None
    })
}

/// The first feature of the AMX path this CPU (or OS) lacks.
pub(crate) fn missing_amx() -> Option<&'static str> {
    missing_avx512().or_else(amx::missing_amx)
}

/// The AMX table (the AVX-512 one with the tiles for large resident batches) if this CPU has
/// the AVX-512 features and AMX-INT8, and the OS granted the tile state.
pub(crate) fn detected_amx_kernels() -> Option<Kernels> {
    // SAFETY: missing_amx() has just detected the AVX-512 features, AMX and the permission.
    missing_amx().is_none().then(|| Kernels {
        resident_tiles: Some(amx::gemm),
        ..unsafe { avx512_kernels() }
    })
}

/// The AVX2 table if this CPU has AVX2, FMA and F16C.
pub(crate) fn detected_avx2_kernels() -> Option<Kernels> {
    // SAFETY: missing_avx2() has just detected AVX2, FMA and F16C on this CPU.
    missing_avx2().is_none().then(|| unsafe { avx2_kernels() })
}

/// The AVX-512 table if this CPU has AVX2, FMA, F16C, AVX-512 F/BW/VL and VNNI.
pub(crate) fn detected_avx512_kernels() -> Option<Kernels> {
    // SAFETY: missing_avx512() has just detected all of those features on this CPU.
    missing_avx512()
        .is_none()
        .then(|| unsafe { avx512_kernels() })
}

/// The AVX2 table (every kernel).
///
/// # Safety
/// The CPU must have AVX2, FMA and F16C (`missing_avx2()` returned `None`): the table's safe
/// `fn` pointers call `#[target_feature(enable = "avx2,fma,f16c")]` code without checking.
pub(crate) unsafe fn avx2_kernels() -> Kernels {
    Kernels {
        panel_gemm: Some(crate::panel::PanelKernels {
            pack: crate::panel::pack_scalar,
            gemm: panel256::gemm,
        }),
        resident: Some(resident256::gemm),
        // SAFETY: our caller guarantees AVX2 + FMA + F16C, what `avx2::kernels` and
        // `kv::with_avx2` require.
        ..unsafe { kv::with_avx2(avx2::kernels()) }
    }
}

/// The AVX-512 table (every kernel).
///
/// # Safety
/// The CPU must have AVX2, FMA, F16C, AVX-512 F/BW/VL and VNNI (`missing_avx512()` returned
/// `None`): the table's safe `fn` pointers call code compiled for those features unchecked.
pub(crate) unsafe fn avx512_kernels() -> Kernels {
    // SAFETY: our caller guarantees the AVX2 and AVX-512 features `avx512::kernels` and
    // `kv::with_avx512` require.
    unsafe { kv::with_avx512(avx512::kernels()) }
}
