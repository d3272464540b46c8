//! K-quant quantizers (Q4_K, Q5_K, Q6_K), byte-identical to ggml's reference quantizers
//! `quantize_row_q{4,5,6}_K_ref` — what `llama-quantize` runs when it has no importance matrix.
//!
//! Byte identity needs the same f32 operations in the same order: every expression below keeps
//! ggml's evaluation order and its int → float conversions, uses no fused multiply-add (ggml-base
//! is built for baseline x86-64, which has none) and ggml's `nearest_int` (the 1.5·2^23 trick).
//! Blocks are written field by field into the output bytes, in `ggml-common.h` order.

use crate::blocks::{BlockQ4_K, BlockQ5_K, BlockQ6_K, Half, QK_K};

/// ggml's `GROUP_MAX_EPS`: a group whose largest |x| is below it is all zeros.
const GROUP_MAX_EPS: f32 = 1e-15;

const Q4_K_BYTES: usize = std::mem::size_of::<BlockQ4_K>();
const Q5_K_BYTES: usize = std::mem::size_of::<BlockQ5_K>();
const Q6_K_BYTES: usize = std::mem::size_of::<BlockQ6_K>();

/// ggml's `nearest_int`: adds 1.5·2^23 and reads the low mantissa bits (round half to even for
/// |x| < 2^22; outside that range the same bits as ggml, whatever they mean).
#[inline(always)]
fn nearest_int(x: f32) -> i32 {
    let bits = (x + 12_582_912.0f32).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qkx2_quants` for the 8 sub-blocks of 32 of one super-block at once, one lane per
/// sub-block (`x[i][lane]` = element i of sub-block `lane`): levels in 0..=nmax and a
/// (scale, min) with x ≈ scale·l − min, searched over `nstep + 1` candidate scales around
/// nmax/(max − min), minimising the weighted squared error. Each lane performs exactly ggml's
/// operations in ggml's order (lanes never mix), so the results are ggml's bit for bit; the
/// lane loops are what the compiler vectorizes. Returns (scales, mins as stored: −min of the fit).
#[inline(always)]
pub(crate) fn make_qkx2_quants_x8(
    nmax: i32,
    x: &[[f32; 8]; 32],
    w: &[[f32; 8]; 32],
    l_out: &mut [[u8; 8]; 32],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> ([f32; 8], [f32; 8]) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = w[0];
    let mut sum_x: [f32; 8] = std::array::from_fn(|k| sum_w[k] * x[0][k]);
    for i in 1..32 {
        for k in 0..8 {
            if x[i][k] < min[k] {
                min[k] = x[i][k];
            }
            if x[i][k] > max[k] {
                max[k] = x[i][k];
            }
            sum_w[k] += w[i][k];
            sum_x[k] += w[i][k] * x[i][k];
        }
    }
    for m in &mut min {
        if *m > 0.0 {
            *m = 0.0;
        }
    }
    // Lanes with max == min are all levels 0, scale 0 (they ignore the search below).
    let flat: [bool; 8] = std::array::from_fn(|k| max[k] == min[k]);
    let iscale: [f32; 8] = std::array::from_fn(|k| nmax as f32 / (max[k] - min[k]));
    let mut scale: [f32; 8] = std::array::from_fn(|k| 1.0 / iscale[k]);
    let mut best_error = [0.0f32; 8];
    for i in 0..32 {
        for k in 0..8 {
            let l = nearest_int(iscale[k] * (x[i][k] - min[k])).clamp(0, nmax);
            l_out[i][k] = l as u8;
            let diff = scale[k] * l as f32 + min[k] - x[i][k];
            best_error[k] += w[i][k] * (diff * diff);
        }
    }
    let mut laux = [[0u8; 8]; 32];
    for is in 0..=nstep {
        let num = rmin + rdelta * is as f32 + nmax as f32;
        // `min` is the best fit so far: ggml's later candidates start from it.
        let iscale: [f32; 8] = std::array::from_fn(|k| num / (max[k] - min[k]));
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
        for i in 0..32 {
            for k in 0..8 {
                let l = nearest_int(iscale[k] * (x[i][k] - min[k])).clamp(0, nmax);
                laux[i][k] = l as u8;
                let lf = l as f32;
                sum_l[k] += w[i][k] * lf;
                sum_l2[k] += w[i][k] * lf * lf;
                sum_xl[k] += w[i][k] * lf * x[i][k];
            }
        }
        let mut this_scale = [0.0f32; 8];
        let mut this_min = [0.0f32; 8];
        let mut valid = [false; 8];
        for k in 0..8 {
            let d = sum_w[k] * sum_l2[k] - sum_l[k] * sum_l[k];
            valid[k] = d > 0.0 && !flat[k];
            this_scale[k] = (sum_w[k] * sum_xl[k] - sum_x[k] * sum_l[k]) / d;
            this_min[k] = (sum_l2[k] * sum_x[k] - sum_l[k] * sum_xl[k]) / d;
            if this_min[k] > 0.0 {
                this_min[k] = 0.0;
                this_scale[k] = sum_xl[k] / sum_l2[k];
            }
        }
        if !valid.iter().any(|&v| v) {
            continue;
        }
        let mut cur_error = [0.0f32; 8];
        for i in 0..32 {
            for k in 0..8 {
                let diff = this_scale[k] * laux[i][k] as f32 + this_min[k] - x[i][k];
                cur_error[k] += w[i][k] * (diff * diff);
            }
        }
        let better: [bool; 8] = std::array::from_fn(|k| valid[k] && cur_error[k] < best_error[k]);
        for i in 0..32 {
            for k in 0..8 {
                if better[k] {
                    l_out[i][k] = laux[i][k];
                }
            }
        }
        for k in 0..8 {
            if better[k] {
                best_error[k] = cur_error[k];
                scale[k] = this_scale[k];
                min[k] = this_min[k];
            }
        }
    }
    for k in 0..8 {
        if flat[k] {
            for row in l_out.iter_mut() {
                row[k] = 0;
            }
            scale[k] = 0.0;
        }
    }
    (scale, min.map(|m| -m))
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights (weights x²), for the
/// 16 groups of 16 of a Q6_K super-block at once (`x[i][lane]` = element i of group `lane`), with
/// nmax = 32: levels `l + nmax` in 0..64 and the fitted scale per group, trying 18 scales around
/// −nmax/max. Lanes never mix: each is ggml's arithmetic in ggml's order.
#[inline(always)]
pub(crate) fn make_qx_quants_x16(x: &[[f32; 16]; 16], l_out: &mut [[u8; 16]; 16]) -> [f32; 16] {
    const NMAX: i32 = 32;
    let mut max = [0.0f32; 16];
    let mut amax = [0.0f32; 16];
    for row in x {
        for k in 0..16 {
            let ax = row[k].abs();
            if ax > amax[k] {
                amax[k] = ax;
                max[k] = row[k];
            }
        }
    }
    let zero: [bool; 16] = std::array::from_fn(|k| amax[k] < GROUP_MAX_EPS);
    // (Plain functions, not closures: closures are not inlined into the AVX2 build.)
    #[inline(always)]
    fn fit(x: &[[f32; 16]; 16], iscale: &[f32; 16]) -> ([f32; 16], [f32; 16]) {
        let (mut sumlx, mut suml2) = ([0.0f32; 16], [0.0f32; 16]);
        for row in x {
            for k in 0..16 {
                let v = row[k];
                let l = nearest_int(iscale[k] * v).clamp(-NMAX, NMAX - 1) as f32;
                let w = v * v;
                sumlx[k] += w * v * l;
                suml2[k] += w * l * l;
            }
        }
        (sumlx, suml2)
    }
    #[inline(always)]
    fn levels(
        x: &[[f32; 16]; 16],
        iscale: &[f32; 16],
        take: &[bool; 16],
        l_out: &mut [[u8; 16]; 16],
    ) {
        for (q, row) in l_out.iter_mut().zip(x) {
            for k in 0..16 {
                if take[k] {
                    q[k] = (NMAX + nearest_int(iscale[k] * row[k]).clamp(-NMAX, NMAX - 1)) as u8;
                }
            }
        }
    }
    let iscale: [f32; 16] = std::array::from_fn(|k| -(NMAX as f32) / max[k]);
    levels(x, &iscale, &[true; 16], l_out);
    let (sumlx, suml2) = fit(x, &iscale);
    let mut scale: [f32; 16] = std::array::from_fn(|k| {
        if suml2[k] != 0.0 {
            sumlx[k] / suml2[k]
        } else {
            0.0
        }
    });
    let mut best: [f32; 16] = std::array::from_fn(|k| scale[k] * sumlx[k]);
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let num = -(NMAX as f32 + 0.1f32 * is as f32);
        let iscale: [f32; 16] = std::array::from_fn(|k| num / max[k]);
        let (sumlx, suml2) = fit(x, &iscale);
        let better: [bool; 16] = std::array::from_fn(|k| {
            !zero[k] && suml2[k] > 0.0 && sumlx[k] * sumlx[k] > best[k] * suml2[k]
        });
        if !better.iter().any(|&b| b) {
            continue;
        }
        levels(x, &iscale, &better, l_out);
        for k in 0..16 {
            if better[k] {
                scale[k] = sumlx[k] / suml2[k];
                best[k] = scale[k] * sumlx[k];
            }
        }
    }
    for k in 0..16 {
        if zero[k] {
            for row in l_out.iter_mut() {
                row[k] = 0;
            }
            scale[k] = 0.0;
        }
    }
    scale
}

/// Super-blocks whose Q4_K / Q5_K scale searches run together: each search is a chain of
/// dependent sums (32 additions per candidate, 21 candidates, each starting from the last best
/// fit), so one super-block at a time leaves the vector units waiting on latency; the SIMD twins
/// interleave `SEARCH_BLOCKS` independent chains. Lanes still never mix.
pub(crate) const SEARCH_BLOCKS: usize = 4;

/// One group of super-blocks in the transposed layout of [`make_qkx2_quants_x8`].
pub(crate) type Lanes8 = [[[f32; 8]; 32]; SEARCH_BLOCKS];
/// Their levels.
pub(crate) type Levels8 = [[[u8; 8]; 32]; SEARCH_BLOCKS];

/// The signature of the batched Q4_K / Q5_K scale search: [`make_qkx2_quants_x8`] on each of
/// [`SEARCH_BLOCKS`] super-blocks ([`qkx2_each`], and the AVX2 / AVX-512 twins that interleave
/// them).
pub(crate) type Qkx2Search =
    fn(i32, &Lanes8, &Lanes8, &mut Levels8, f32, f32, i32) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS];

/// The scalar batched search: [`make_qkx2_quants_x8`] on each super-block in turn.
#[inline(always)]
pub(crate) fn qkx2_each(
    nmax: i32,
    x: &Lanes8,
    w: &Lanes8,
    l_out: &mut Levels8,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> [([f32; 8], [f32; 8]); SEARCH_BLOCKS] {
    let mut out = [([0.0; 8], [0.0; 8]); SEARCH_BLOCKS];
    for b in 0..SEARCH_BLOCKS {
        out[b] = make_qkx2_quants_x8(nmax, &x[b], &w[b], &mut l_out[b], rmin, rdelta, nstep);
    }
    out
}

/// The signature of [`make_qx_quants_x16`] (and of its AVX2 twin).
pub(crate) type QxSearch = fn(&[[f32; 16]; 16], &mut [[u8; 16]; 16]) -> [f32; 16];

/// The search input of one Q4_K / Q5_K super-block: its values transposed (`xt[i][j]` = element
/// i of sub-block j) and ggml's weights `sqrt(mean x²) + |x|` in the same layout.
#[inline(always)]
fn qkx_search_input(x: &[f32], xt: &mut [[f32; 8]; 32], weights: &mut [[f32; 8]; 32]) {
    // Plain loops: `array::from_fn` stays a call in the ISA builds.
    for (j, sub) in x.chunks_exact(32).enumerate() {
        for (i, &v) in sub.iter().enumerate() {
            xt[i][j] = v;
        }
    }
    let mut sum_x2 = [0.0f32; 8];
    for row in xt.iter() {
        for j in 0..8 {
            sum_x2[j] += row[j] * row[j];
        }
    }
    let mut av_x = [0.0f32; 8];
    for j in 0..8 {
        av_x[j] = (sum_x2[j] / 32.0).sqrt();
    }
    for (wrow, row) in weights.iter_mut().zip(xt.iter()) {
        for j in 0..8 {
            wrow[j] = av_x[j] + row[j].abs();
        }
    }
}

/// The rest of Q4_K and Q5_K after the search: the 6-bit packing of the sub-block (scale, min)
/// fits in `scales[12]`, the super-block `d`/`dmin`, and the final levels in `l[256]` (the
/// search's levels, then requantized against the rounded scales).
#[inline(always)]
fn qkx_finish(
    x: &[f32],
    nmax: i32,
    (scales, mins): ([f32; 8], [f32; 8]),
    lt: &[[u8; 8]; 32],
    l: &mut [u8; QK_K],
) -> (Half, Half, [u8; 12]) {
    for (i, row) in lt.iter().enumerate() {
        for j in 0..8 {
            l[32 * j + i] = row[j];
        }
    }
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    let mut packed = [0u8; 12];
    for j in 0..QK_K / 32 {
        // ggml stores nearest_int's result in a uint8_t before the MIN: truncation, then clamp.
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            packed[j] = ls;
            packed[j + 4] = lm;
        } else {
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            packed[j - 4] |= (ls >> 4) << 6;
            packed[j] |= (lm >> 4) << 6;
        }
    }
    let d = Half::from_f32(max_scale / 63.0);
    let dmin = Half::from_f32(max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (sc, m) = crate::blocks::get_scale_min_k4(j, &packed);
        let dj = d.to_f32() * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin.to_f32() * m as f32;
        // Fixed-size arrays so the loop vectorizes (a division per element otherwise).
        let xs: &[f32; 32] = x[32 * j..32 * j + 32].try_into().unwrap();
        let mut q = [0i32; 32];
        for ii in 0..32 {
            q[ii] = nearest_int((xs[ii] + dm) / dj).clamp(0, nmax);
        }
        for ii in 0..32 {
            l[32 * j + ii] = q[ii] as u8;
        }
    }
    (d, dmin, packed)
}

/// The shared driver of Q4_K and Q5_K: super-blocks in groups of [`SEARCH_BLOCKS`] through
/// `search` (a short last group repeats its first super-block; those results are dropped), then
/// per super-block `d`, `dmin` and the packed scales, and `levels(bytes after them, levels)`.
#[inline(always)]
fn qkx_rows(
    name: &str,
    src: &[f32],
    dst: &mut [u8],
    block_bytes: usize,
    (nmax, rmin, nstep): (i32, f32, i32),
    search: Qkx2Search,
    levels: impl Fn(&mut [u8], &[u8; QK_K]),
) {
    assert_eq!(src.len() % QK_K, 0, "{name}: partial super-block");
    assert_eq!(dst.len(), src.len() / QK_K * block_bytes);
    let mut xt = [[[0.0f32; 8]; 32]; SEARCH_BLOCKS];
    let mut w = [[[0.0f32; 8]; 32]; SEARCH_BLOCKS];
    let mut lt = [[[0u8; 8]; 32]; SEARCH_BLOCKS];
    let mut l = [0u8; QK_K];
    for (xg, outg) in src
        .chunks(SEARCH_BLOCKS * QK_K)
        .zip(dst.chunks_mut(SEARCH_BLOCKS * block_bytes))
    {
        let n = xg.len() / QK_K;
        for b in 0..SEARCH_BLOCKS {
            let x = &xg[QK_K * (b % n)..QK_K * (b % n + 1)];
            qkx_search_input(x, &mut xt[b], &mut w[b]);
        }
        let fits = search(nmax, &xt, &w, &mut lt, rmin, 0.1, nstep);
        for b in 0..n {
            let x = &xg[QK_K * b..QK_K * (b + 1)];
            let (d, dmin, scales) = qkx_finish(x, nmax, fits[b], &lt[b], &mut l);
            let out = &mut outg[block_bytes * b..block_bytes * (b + 1)];
            out[0..2].copy_from_slice(&d.0);
            out[2..4].copy_from_slice(&dmin.0);
            out[4..16].copy_from_slice(&scales);
            levels(&mut out[16..], &l);
        }
    }
}

/// Q4_K, as ggml's `quantize_row_q4_K_ref`. `dst`: `src.len() / 256` blocks of 144 bytes.
pub fn quantize_row_q4_K(src: &[f32], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::x86_64::quantize_k::q4_K(src, dst) {
        return;
    }
    q4_K_rows(src, dst, qkx2_each);
}

/// The quantizer proper; `inline(always)` so the ISA modules can compile it for wider lanes
/// (and pass their own build of the scale search).
#[inline(always)]
pub(crate) fn q4_K_rows(src: &[f32], dst: &mut [u8], search: Qkx2Search) {
    qkx_rows(
        "quantize_row_q4_K",
        src,
        dst,
        Q4_K_BYTES,
        (15, -1.0, 20),
        search,
        |out, l| {
            let qs = &mut out[..128];
            for (c, chunk) in l.chunks_exact(64).enumerate() {
                for i in 0..32 {
                    qs[32 * c + i] = chunk[i] | (chunk[i + 32] << 4);
                }
            }
        },
    );
}

/// Q5_K, as ggml's `quantize_row_q5_K_ref`. `dst`: `src.len() / 256` blocks of 176 bytes.
pub fn quantize_row_q5_K(src: &[f32], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::x86_64::quantize_k::q5_K(src, dst) {
        return;
    }
    q5_K_rows(src, dst, qkx2_each);
}

/// The quantizer proper; `inline(always)` so the ISA modules can compile it for wider lanes
/// (and pass their own build of the scale search).
#[inline(always)]
pub(crate) fn q5_K_rows(src: &[f32], dst: &mut [u8], search: Qkx2Search) {
    qkx_rows(
        "quantize_row_q5_K",
        src,
        dst,
        Q5_K_BYTES,
        (31, -0.5, 15),
        search,
        |out, l| {
            let mut qh = [0u8; 32];
            let mut qs = [0u8; 128];
            let (mut m1, mut m2) = (1u8, 2u8);
            for (c, chunk) in l.chunks_exact(64).enumerate() {
                for j in 0..32 {
                    let mut l1 = chunk[j];
                    if l1 > 15 {
                        l1 -= 16;
                        qh[j] |= m1;
                    }
                    let mut l2 = chunk[j + 32];
                    if l2 > 15 {
                        l2 -= 16;
                        qh[j] |= m2;
                    }
                    qs[32 * c + j] = l1 | (l2 << 4);
                }
                m1 <<= 2;
                m2 <<= 2;
            }
            out[..32].copy_from_slice(&qh);
            out[32..].copy_from_slice(&qs);
        },
    );
}

/// Q6_K, as ggml's `quantize_row_q6_K_ref`. `dst`: `src.len() / 256` blocks of 210 bytes.
pub fn quantize_row_q6_K(src: &[f32], dst: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::x86_64::quantize_k::q6_K(src, dst) {
        return;
    }
    q6_K_rows(src, dst, make_qx_quants_x16);
}

/// The quantizer proper; `inline(always)` so the ISA modules can compile it for wider lanes.
#[inline(always)]
pub(crate) fn q6_K_rows(src: &[f32], dst: &mut [u8], search: QxSearch) {
    assert_eq!(
        src.len() % QK_K,
        0,
        "quantize_row_q6_K: partial super-block"
    );
    assert_eq!(dst.len(), src.len() / QK_K * Q6_K_BYTES);
    let mut l = [0u8; QK_K];
    for (x, out) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q6_K_BYTES)) {
        // Plain loops: `array::from_fn` stays a call in the ISA builds (15 % of Q6_K's time).
        let mut xt = [[0.0f32; 16]; 16];
        for (g, group) in x.chunks_exact(16).enumerate() {
            for (i, &v) in group.iter().enumerate() {
                xt[i][g] = v;
            }
        }
        let mut lt = [[0u8; 16]; 16];
        let scales = search(&xt, &mut lt);
        for (i, row) in lt.iter().enumerate() {
            for g in 0..16 {
                l[16 * g + i] = row[g];
            }
        }
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for &scale in &scales {
            let abs_scale = scale.abs();
            if abs_scale > max_abs_scale {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            out.fill(0);
            continue;
        }
        let iscale = -128.0f32 / max_scale;
        let d = Half::from_f32(1.0 / iscale);
        let mut sc = [0i8; QK_K / 16];
        for (s, &scale) in sc.iter_mut().zip(&scales) {
            *s = nearest_int(iscale * scale).min(127) as i8;
        }
        for (j, &s) in sc.iter().enumerate() {
            let dj = d.to_f32() * s as f32;
            if dj == 0.0 {
                continue;
            }
            // Fixed-size arrays so the loop vectorizes (a division per element otherwise).
            let xs: &[f32; 16] = x[16 * j..16 * j + 16].try_into().unwrap();
            let mut q = [0i32; 16];
            for ii in 0..16 {
                q[ii] = nearest_int(xs[ii] / dj).clamp(-32, 31) + 32;
            }
            for ii in 0..16 {
                l[16 * j + ii] = q[ii] as u8;
            }
        }
        let (ql, rest) = out.split_at_mut(128);
        let (qh, rest) = rest.split_at_mut(64);
        for (c, chunk) in l.chunks_exact(128).enumerate() {
            let (ql, qh) = (&mut ql[64 * c..64 * c + 64], &mut qh[32 * c..32 * c + 32]);
            for i in 0..32 {
                let (a, b, e, f) = (chunk[i], chunk[i + 32], chunk[i + 64], chunk[i + 96]);
                ql[i] = (a & 0xF) | ((e & 0xF) << 4);
                ql[i + 32] = (b & 0xF) | ((f & 0xF) << 4);
                qh[i] = (a >> 4) | ((b >> 4) << 2) | ((e >> 4) << 4) | ((f >> 4) << 6);
            }
        }
        for (o, &s) in rest[..16].iter_mut().zip(&sc) {
            *o = s as u8;
        }
        rest[16..18].copy_from_slice(&d.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (x, n) in [
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (3.49, 3),
            (-7.7, -8),
        ] {
            assert_eq!(nearest_int(x), n, "{x}");
        }
    }

    /// The AVX2 build of the quantizers gives the baseline build's bytes.
    #[test]
    fn dispatched_quantizers_match_baseline_build() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let x: Vec<f32> = (0..63 * QK_K)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                u * u * u * (1 + i / QK_K) as f32
            })
            .collect();
        type Q = fn(&[f32], &mut [u8]);
        let cases: [(Q, Q, usize); 3] = [
            (
                quantize_row_q4_K,
                |x, y| q4_K_rows(x, y, qkx2_each),
                Q4_K_BYTES,
            ),
            (
                quantize_row_q5_K,
                |x, y| q5_K_rows(x, y, qkx2_each),
                Q5_K_BYTES,
            ),
            (
                quantize_row_q6_K,
                |x, y| q6_K_rows(x, y, make_qx_quants_x16),
                Q6_K_BYTES,
            ),
        ];
        for (dispatched, baseline, bytes) in cases {
            let mut a = vec![0u8; 63 * bytes];
            let mut b = vec![0u8; 63 * bytes];
            dispatched(&x, &mut a);
            baseline(&x, &mut b);
            assert_eq!(a, b);
        }
    }
}
