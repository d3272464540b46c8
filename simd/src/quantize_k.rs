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
#[inline]
fn nearest_int(x: f32) -> i32 {
    let bits = (x + 12_582_912.0f32).to_bits() as i32;
    (bits & 0x007f_ffff) - 0x0040_0000
}

/// ggml's `make_qkx2_quants`: levels `l` in 0..=nmax and a (scale, min) with x ≈ scale·l − min,
/// searched over `nstep + 1` candidate scales around nmax/(max − min), minimising the
/// weighted squared error. Returns (scale, min as stored: −min of the fit).
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32; 32],
    weights: &[f32; 32],
    l_out: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
) -> (f32, f32) {
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..32 {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out[..32].fill(0);
        return (0.0, -min);
    }
    let mut iscale = nmax as f32 / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..32 {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    let mut laux = [0u8; 32];
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmax as f32) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..32 {
            let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = l as u8;
            let (w, lf) = (weights[i], l as f32);
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..32 {
                let diff = this_scale * laux[i] as f32 + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if cur_error < best_error {
                l_out[..32].copy_from_slice(&laux);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// ggml's `make_qx_quants` with `rmse_type = 1` and no importance weights (weights x²), for
/// groups of 16 and `nmax` = 32: levels `l + nmax` in 0..2·nmax and the fitted scale, trying
/// 18 scales around −nmax/max.
fn make_qx_quants_16(nmax: i32, x: &[f32], l_out: &mut [u8]) -> f32 {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in &x[..16] {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..16].fill(0);
        return 0.0;
    }
    let fit = |iscale: f32| {
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for &v in &x[..16] {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        (sumlx, suml2)
    };
    let levels = |iscale: f32, l_out: &mut [u8]| {
        for (q, &v) in l_out[..16].iter_mut().zip(&x[..16]) {
            *q = (nmax + nearest_int(iscale * v).clamp(-nmax, nmax - 1)) as u8;
        }
    };
    let iscale = -(nmax as f32) / max;
    levels(iscale, l_out);
    let (sumlx, suml2) = fit(iscale);
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let iscale = -(nmax as f32 + 0.1f32 * is as f32) / max;
        let (sumlx, suml2) = fit(iscale);
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            levels(iscale, l_out);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// The shared part of Q4_K and Q5_K: per sub-block (scale, min) fits, their 6-bit packing in
/// `scales[12]`, the super-block `d`/`dmin`, and the final levels in `l[256]`.
fn quantize_block_qkx(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    l: &mut [u8; QK_K],
) -> (Half, Half, [u8; 12]) {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let xs: &[f32; 32] = x[32 * j..32 * j + 32].try_into().expect("32 elements");
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        let weights: [f32; 32] = std::array::from_fn(|i| av_x + xs[i].abs());
        let (scale, min) = make_qkx2_quants(nmax, xs, &weights, &mut l[32 * j..], rmin, 0.1, nstep);
        scales[j] = scale;
        mins[j] = min;
        if scale > max_scale {
            max_scale = scale;
        }
        if min > max_min {
            max_min = min;
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
        for ii in 0..32 {
            l[32 * j + ii] = nearest_int((x[32 * j + ii] + dm) / dj).clamp(0, nmax) as u8;
        }
    }
    (d, dmin, packed)
}

/// Q4_K, as ggml's `quantize_row_q4_K_ref`. `dst`: `src.len() / 256` blocks of 144 bytes.
pub fn quantize_row_q4_K(src: &[f32], dst: &mut [u8]) {
    assert_eq!(
        src.len() % QK_K,
        0,
        "quantize_row_q4_K: partial super-block"
    );
    assert_eq!(dst.len(), src.len() / QK_K * Q4_K_BYTES);
    let mut l = [0u8; QK_K];
    for (x, out) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q4_K_BYTES)) {
        let (d, dmin, scales) = quantize_block_qkx(x, 15, -1.0, 20, &mut l);
        out[0..2].copy_from_slice(&d.0);
        out[2..4].copy_from_slice(&dmin.0);
        out[4..16].copy_from_slice(&scales);
        let qs = &mut out[16..144];
        for (c, chunk) in l.chunks_exact(64).enumerate() {
            for i in 0..32 {
                qs[32 * c + i] = chunk[i] | (chunk[i + 32] << 4);
            }
        }
    }
}

/// Q5_K, as ggml's `quantize_row_q5_K_ref`. `dst`: `src.len() / 256` blocks of 176 bytes.
pub fn quantize_row_q5_K(src: &[f32], dst: &mut [u8]) {
    assert_eq!(
        src.len() % QK_K,
        0,
        "quantize_row_q5_K: partial super-block"
    );
    assert_eq!(dst.len(), src.len() / QK_K * Q5_K_BYTES);
    let mut l = [0u8; QK_K];
    for (x, out) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q5_K_BYTES)) {
        let (d, dmin, scales) = quantize_block_qkx(x, 31, -0.5, 15, &mut l);
        out[0..2].copy_from_slice(&d.0);
        out[2..4].copy_from_slice(&dmin.0);
        out[4..16].copy_from_slice(&scales);
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
        out[16..48].copy_from_slice(&qh);
        out[48..176].copy_from_slice(&qs);
    }
}

/// Q6_K, as ggml's `quantize_row_q6_K_ref`. `dst`: `src.len() / 256` blocks of 210 bytes.
pub fn quantize_row_q6_K(src: &[f32], dst: &mut [u8]) {
    assert_eq!(
        src.len() % QK_K,
        0,
        "quantize_row_q6_K: partial super-block"
    );
    assert_eq!(dst.len(), src.len() / QK_K * Q6_K_BYTES);
    let mut l = [0u8; QK_K];
    for (x, out) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q6_K_BYTES)) {
        let mut scales = [0f32; QK_K / 16];
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants_16(32, &x[16 * ib..16 * ib + 16], &mut l[16 * ib..]);
            scales[ib] = scale;
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
            for ii in 0..16 {
                let q = nearest_int(x[16 * j + ii] / dj).clamp(-32, 31);
                l[16 * j + ii] = (q + 32) as u8;
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
}
