//! Panel GEMM: the batched product for many activation rows (prefill, large batches).
//!
//! Sixteen weight rows are repacked on the fly into a *panel*: every weight becomes one
//! unsigned byte, and the bytes of the sixteen rows are interleaved four at a time, so that one
//! 512-bit load holds four consecutive weights of each of the 16 rows. One `vpdpbusd` of that
//! load with four broadcast activation bytes adds four products to each row's lane: after
//! `G / 4` steps a lane holds the exact integer dot product of its row with the activation over
//! one scale group (G = 32 weights; 16 for Q6_K). Each group then costs one convert and one
//! FMA per 16 rows, where the row-at-a-time kernels need a horizontal reduction, and the 16
//! results of a vector land contiguous in memory (no transpose of the tile's output).
//! The panel is packed once per 16 rows and call, then read by every activation row of the
//! batch, so its cost is amortized over the batch; memory stays the file's (nothing is
//! repacked at load).
//!
//! Weights are stored as `u = w + c` with a per-format offset `c` (Q4_0: the raw nibble, c = 8;
//! Q8_0: c = 128; Q4_K/Q5_K: the raw 4/5-bit value, c = 0; Q6_K: the raw 6-bit value, c = 32),
//! so `Σ w·a = Σ u·a − c·Σ a`; the `−c·Σ a` of each group and activation row is computed once
//! and is the value the accumulation starts from.
//!
//! The arithmetic, the contract every path follows exactly (the scalar twin [`gemm_scalar`]
//! is bit-identical to the SIMD kernels; both differ from the row-at-a-time dots only in the
//! order of float additions, a relative error of a few 1e-7 of Σ|w·a|):
//!
//! ```text
//! Q8_0 activations (Q4_0, Q8_0 weights), per row r and vector v:
//!     acc = 0;  for group g:  isum = corr[v][g] + Σ u[r][k]·a[v][k]   (exact i32)
//!                             acc  = fma(f32(isum), scale[g][r] · da[v][g], acc)
//! Q8_K activations (Q4_K, Q5_K, Q6_K), per super-block s:
//!     sb = 0;  for group g in s:  sb = fma(f32(isum_g), scale[g][r], sb)
//!     (Q4_K/Q5_K) mn = 0;  for g in s:  mn = fma(min[g][r], bsum[v][g], mn);  sb = sb − mn
//!     acc = fma(sb, da[v][s], acc)
//! ```
//! with `scale` = d (Q4_0, Q8_0), d·sc (Q4_K, Q5_K, Q6_K) and `min` = dmin·m.

use crate::blocks::{
    as_blocks, get_scale_min_k4, BlockQ4_0, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_0, BlockQ8_K,
};
use crate::GgmlType;

/// Weight rows per panel (the lanes of a 512-bit register of i32).
pub const PANEL_ROWS: usize = 16;

/// The weight formats the panel GEMM takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum PanelFormat {
    Q4_0,
    Q8_0,
    Q4_K,
    Q5_K,
    Q6_K,
}

impl PanelFormat {
    /// The panel format for weights of type `ty`, if there is one.
    pub fn of(ty: GgmlType) -> Option<PanelFormat> {
        Some(match ty {
            GgmlType::Q4_0 => PanelFormat::Q4_0,
            GgmlType::Q8_0 => PanelFormat::Q8_0,
            GgmlType::Q4_K => PanelFormat::Q4_K,
            GgmlType::Q5_K => PanelFormat::Q5_K,
            GgmlType::Q6_K => PanelFormat::Q6_K,
            _ => return None,
        })
    }

    /// Weights per scale group.
    pub fn group(self) -> usize {
        match self {
            PanelFormat::Q6_K => 16,
            _ => 32,
        }
    }

    /// The offset `c` of the stored bytes (`u = w + c`).
    fn offset(self) -> i32 {
        match self {
            PanelFormat::Q4_0 => 8,
            PanelFormat::Q8_0 => 128,
            PanelFormat::Q4_K | PanelFormat::Q5_K => 0,
            PanelFormat::Q6_K => 32,
        }
    }

    /// Whether activations are Q8_K (one scale per 256) rather than Q8_0 (one per 32).
    pub fn q8k(self) -> bool {
        matches!(
            self,
            PanelFormat::Q4_K | PanelFormat::Q5_K | PanelFormat::Q6_K
        )
    }

    /// Whether groups have a min term (`− dmin·m·Σa`).
    pub fn has_mins(self) -> bool {
        matches!(self, PanelFormat::Q4_K | PanelFormat::Q5_K)
    }

    /// The ggml type of the weights.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            PanelFormat::Q4_0 => GgmlType::Q4_0,
            PanelFormat::Q8_0 => GgmlType::Q8_0,
            PanelFormat::Q4_K => GgmlType::Q4_K,
            PanelFormat::Q5_K => GgmlType::Q5_K,
            PanelFormat::Q6_K => GgmlType::Q6_K,
        }
    }

    /// Elements per activation scale (32 for Q8_0, 256 for Q8_K).
    fn act_block(self) -> usize {
        if self.q8k() {
            256
        } else {
            32
        }
    }
}

/// Up to [`PANEL_ROWS`] weight rows, repacked (rows past `rows` are zero: scale 0).
#[derive(Default)]
pub struct Panel {
    pub format: Option<PanelFormat>,
    /// Elements per row.
    pub k: usize,
    /// Rows packed (≤ 16).
    pub rows: usize,
    /// `[group][step of 4 weights][row]`: four unsigned bytes per word, 64 bytes per step.
    pub q: Vec<u32>,
    /// `[group][row]` weight scale of the group.
    pub scale: Vec<f32>,
    /// `[group][row]` dmin·m of the group (Q4_K, Q5_K), else empty.
    pub min: Vec<f32>,
    /// Rows decoded in element order (`[row][k / 4]` words) before the interleave.
    scratch: Vec<u32>,
}

/// Four bytes as one little-endian word.
fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

const LOW: u32 = 0x0F0F_0F0F;

impl Panel {
    /// Size the buffers for `rows` rows of `k` elements of `format`, all zero (the padding rows
    /// of a partial panel stay zero: scale 0). Checks the shapes every pack relies on.
    pub(crate) fn reset(
        &mut self,
        format: PanelFormat,
        k: usize,
        w: &[u8],
        w_row: usize,
        rows: usize,
    ) {
        assert!(rows <= PANEL_ROWS, "a panel has at most 16 rows");
        assert!(k.is_multiple_of(format.act_block()) && k > 0);
        let ty = format.ggml_type();
        assert_eq!(
            ty.row_bytes(k as u64),
            Some(w_row as u64),
            "{k} {ty} elements per row"
        );
        assert_eq!(w.len(), rows * w_row, "{rows} rows of {w_row} bytes");
        assert!(
            PANEL_ROWS * w_row < i32::MAX as usize,
            "row offsets fit i32"
        );
        let groups = k / format.group();
        self.format = Some(format);
        self.k = k;
        self.rows = rows;
        self.q.clear();
        self.q.resize(k / 4 * PANEL_ROWS, 0);
        self.scale.clear();
        self.scale.resize(groups * PANEL_ROWS, 0.0);
        self.min.clear();
        if format.has_mins() {
            self.min.resize(groups * PANEL_ROWS, 0.0);
        }
    }

    /// Pack `rows` (≤ 16) consecutive rows of `k` elements of `format` (`w`: the rows, `w_row`
    /// bytes each) into this panel, reusing its buffers — the scalar twin of the paths' packs:
    /// each row is decoded into words in element order, then the rows are interleaved word
    /// by word in blocks of 16 × 16 words.
    pub fn pack(&mut self, format: PanelFormat, k: usize, w: &[u8], w_row: usize, rows: usize) {
        self.reset(format, k, w, w_row, rows);
        let words = k / 4;
        self.scratch.clear();
        self.scratch.resize(PANEL_ROWS * words, 0);
        for (r, (row, out)) in w
            .chunks_exact(w_row)
            .zip(self.scratch.chunks_exact_mut(words))
            .enumerate()
        {
            let scale = |g: usize| g * PANEL_ROWS + r;
            match format {
                PanelFormat::Q4_0 => {
                    for (g, (b, o)) in as_blocks::<BlockQ4_0>(row)
                        .iter()
                        .zip(out.chunks_exact_mut(8))
                        .enumerate()
                    {
                        for j in 0..4 {
                            let x = word(&b.qs[4 * j..]);
                            o[j] = x & LOW;
                            o[j + 4] = (x >> 4) & LOW;
                        }
                        self.scale[scale(g)] = b.d.to_f32();
                    }
                }
                PanelFormat::Q8_0 => {
                    for (g, (b, o)) in as_blocks::<BlockQ8_0>(row)
                        .iter()
                        .zip(out.chunks_exact_mut(8))
                        .enumerate()
                    {
                        let qs: &[u8] = bytemuck::cast_slice(&b.qs);
                        for (j, o) in o.iter_mut().enumerate() {
                            *o = word(&qs[4 * j..]) ^ 0x8080_8080;
                        }
                        self.scale[scale(g)] = b.d.to_f32();
                    }
                }
                PanelFormat::Q4_K => {
                    for (b, o) in as_blocks::<BlockQ4_K>(row)
                        .iter()
                        .zip(out.chunks_exact_mut(64))
                    {
                        k4_words(&b.qs, None, o);
                    }
                }
                PanelFormat::Q5_K => {
                    for (b, o) in as_blocks::<BlockQ5_K>(row)
                        .iter()
                        .zip(out.chunks_exact_mut(64))
                    {
                        k4_words(&b.qs, Some(&b.qh), o);
                    }
                }
                PanelFormat::Q6_K => {
                    for (b, o) in as_blocks::<BlockQ6_K>(row)
                        .iter()
                        .zip(out.chunks_exact_mut(64))
                    {
                        let v = q6_raw(b);
                        for (o, q) in o.iter_mut().zip(v.chunks_exact(4)) {
                            *o = word(q);
                        }
                    }
                }
            }
        }
        if format.q8k() {
            self.k_scales(w, w_row);
        }
        // Interleave: q[w·16 + r] = scratch[r][w], in blocks of 16 words so that both sides
        // stay in L1.
        for (w0, dst) in (0..words)
            .step_by(16)
            .zip(self.q.chunks_mut(16 * PANEL_ROWS))
        {
            let n = 16.min(words - w0);
            for (r, src) in self.scratch.chunks_exact(words).enumerate() {
                for (i, &x) in src[w0..w0 + n].iter().enumerate() {
                    dst[i * PANEL_ROWS + r] = x;
                }
            }
        }
    }
}

impl Panel {
    /// The K-quant group scales (d·sc) and mins (dmin·m) of every row of `w` (shared by all
    /// paths' packs: one decode per 32 or 16 weights).
    pub(crate) fn k_scales(&mut self, w: &[u8], w_row: usize) {
        let format = self.format.expect("reset");
        for (r, row) in w.chunks_exact(w_row).enumerate() {
            match format {
                PanelFormat::Q4_K => {
                    for (s, b) in as_blocks::<BlockQ4_K>(row).iter().enumerate() {
                        let d = [b.d.to_f32(), b.dmin.to_f32()];
                        k4_scales(&mut self.scale, &mut self.min, 8 * s, r, &b.scales, d);
                    }
                }
                PanelFormat::Q5_K => {
                    for (s, b) in as_blocks::<BlockQ5_K>(row).iter().enumerate() {
                        let d = [b.d.to_f32(), b.dmin.to_f32()];
                        k4_scales(&mut self.scale, &mut self.min, 8 * s, r, &b.scales, d);
                    }
                }
                PanelFormat::Q6_K => {
                    for (s, b) in as_blocks::<BlockQ6_K>(row).iter().enumerate() {
                        let d = b.d.to_f32();
                        for (j, &sc) in b.scales.iter().enumerate() {
                            self.scale[(16 * s + j) * PANEL_ROWS + r] = d * sc as f32;
                        }
                    }
                }
                PanelFormat::Q4_0 | PanelFormat::Q8_0 => {}
            }
        }
    }
}

/// The eight sub-block scales and mins of a Q4_K / Q5_K super-block (groups `g0..g0 + 8`) of
/// row `r`, from its packed 6-bit scales and `[d, dmin]`.
fn k4_scales(
    scale: &mut [f32],
    min: &mut [f32],
    g0: usize,
    r: usize,
    scales: &[u8; 12],
    [d, dmin]: [f32; 2],
) {
    for j in 0..8 {
        let (sc, m) = get_scale_min_k4(j, scales);
        scale[(g0 + j) * PANEL_ROWS + r] = d * sc as f32;
        min[(g0 + j) * PANEL_ROWS + r] = dmin * m as f32;
    }
}

/// The 64 words (256 values, element order) of a Q4_K super-block, or of a Q5_K one with its
/// fifth bits `qh` (bit j of each qh byte belongs to sub-block j).
pub(crate) fn k4_words(qs: &[u8; 128], qh: Option<&[u8; 32]>, out: &mut [u32]) {
    for j in 0..8 {
        let q = &qs[32 * (j / 2)..][..32];
        let shift = 4 * (j % 2) as u32;
        for i in 0..8 {
            let mut x = (word(&q[4 * i..]) >> shift) & LOW;
            if let Some(qh) = qh {
                x |= ((word(&qh[4 * i..]) >> j) & 0x0101_0101) << 4;
            }
            out[8 * j + i] = x;
        }
    }
}

/// The 6-bit values of a Q6_K block (0..64, before the −32), in element order.
pub(crate) fn q6_raw(b: &BlockQ6_K) -> [u8; 256] {
    let mut q = [0u8; 256];
    for n in 0..2 {
        let ql = &b.ql[64 * n..64 * n + 64];
        let qh = &b.qh[32 * n..32 * n + 32];
        let out = &mut q[128 * n..128 * n + 128];
        for l in 0..32 {
            out[l] = (ql[l] & 0xF) | ((qh[l] & 3) << 4);
            out[l + 32] = (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4);
            out[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
            out[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        }
    }
    q
}

/// Activation rows prepared for one panel format (once per product).
#[derive(Default)]
pub struct PanelActs {
    pub format: Option<PanelFormat>,
    /// Elements per row.
    pub k: usize,
    /// Rows.
    pub n: usize,
    /// `[n][k]` the int8 quants.
    pub q: Vec<i8>,
    /// `[n][groups]` −c·Σa of each group (the accumulator's start).
    pub corr: Vec<i32>,
    /// `[n][groups]` (Q8_0) or `[n][k / 256]` (Q8_K) activation scales.
    pub d: Vec<f32>,
    /// `[n][groups]` Σa of each group as f32 (formats with mins), else empty.
    pub bsum: Vec<f32>,
    /// The quants of whole tiles of [`TILE_VECS`] rows, `[tile][group][row of the tile][32]`
    /// (Q8_0-activation formats; filled by [`PanelActs::pack_tiles`], else empty): an AMX
    /// tile's A operand as 512 contiguous bytes.
    pub tiles: Vec<i8>,
}

/// Activation rows per tile in [`PanelActs::tiles`].
pub const TILE_VECS: usize = 16;

impl PanelActs {
    /// Prepare `n` rows of activations already quantized to the format's `vec_dot_type`
    /// (Q8_0 or Q8_K blocks, `a_row` bytes each).
    pub fn prepare(&mut self, format: PanelFormat, k: usize, acts: &[u8], n: usize) {
        let gs = format.group();
        let groups = k / gs;
        let c = format.offset();
        self.format = Some(format);
        self.k = k;
        self.n = n;
        self.q.clear();
        self.q.reserve(n * k);
        self.corr.clear();
        self.corr.reserve(n * groups);
        self.d.clear();
        self.bsum.clear();
        self.tiles.clear();
        let a_row = acts.len() / n.max(1);
        for row in acts.chunks_exact(a_row).take(n) {
            if format.q8k() {
                for b in as_blocks::<BlockQ8_K>(row) {
                    self.q.extend_from_slice(&b.qs);
                    self.d.push(b.d());
                    for g in 0..256 / gs {
                        // Q8_K's bsums are the sums of 16 quants: one or two per group.
                        let s: i32 = (0..gs / 16).map(|h| b.bsum(g * gs / 16 + h) as i32).sum();
                        self.corr.push(-c * s);
                        if format.has_mins() {
                            self.bsum.push(s as f32);
                        }
                    }
                }
            } else {
                for b in as_blocks::<BlockQ8_0>(row) {
                    self.q.extend_from_slice(&b.qs);
                    self.d.push(b.d.to_f32());
                    let s: i32 = b.qs.iter().map(|&q| q as i32).sum();
                    self.corr.push(-c * s);
                }
            }
        }
    }

    /// Fill [`PanelActs::tiles`] from `q` (Q4_0 / Q8_0 formats: groups of 32).
    pub fn pack_tiles(&mut self) {
        assert!(
            matches!(self.format, Some(PanelFormat::Q4_0 | PanelFormat::Q8_0)),
            "tiles are for groups of 32"
        );
        let k = self.k;
        let tiles = self.n / TILE_VECS;
        self.tiles.clear();
        self.tiles.resize(tiles * TILE_VECS * k, 0);
        for (t, out) in self.tiles.chunks_exact_mut(TILE_VECS * k).enumerate() {
            let rows = &self.q[t * TILE_VECS * k..(t + 1) * TILE_VECS * k];
            for (g, out) in out.chunks_exact_mut(TILE_VECS * 32).enumerate() {
                for (j, out) in out.chunks_exact_mut(32).enumerate() {
                    out.copy_from_slice(&rows[j * k + 32 * g..][..32]);
                }
            }
        }
    }
}

/// A panel pack: `Panel::pack`'s contract (the scalar one is `Panel::pack` itself).
pub type PackFn =
    fn(panel: &mut Panel, format: PanelFormat, k: usize, w: &[u8], w_row: usize, rows: usize);

/// A path's panel GEMM: how it packs weights and how it multiplies.
#[derive(Clone, Copy)]
pub struct PanelKernels {
    pub pack: PackFn,
    pub gemm: PanelFn,
}

/// The scalar pack, as a [`PackFn`].
pub fn pack_scalar(
    panel: &mut Panel,
    format: PanelFormat,
    k: usize,
    w: &[u8],
    w_row: usize,
    rows: usize,
) {
    panel.pack(format, k, w, w_row, rows)
}

/// A panel kernel: rows of `panel` against activation rows `v0 .. v0 + nv` (nv ≤ 8) of
/// `acts`, writing `out[j·16 + r]` for vector `v0 + j` and panel row `r`.
pub type PanelFn = fn(panel: &Panel, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]);

/// Check a kernel call's shapes (every path, before any unchecked access).
pub(crate) fn check(panel: &Panel, acts: &PanelActs, v0: usize, nv: usize, out: &[f32]) {
    let f = panel.format.expect("panel packed");
    assert_eq!(acts.format, Some(f), "panel and activations of one format");
    assert_eq!(panel.k, acts.k);
    let groups = panel.k / f.group();
    assert_eq!(panel.q.len(), groups * f.group() / 4 * PANEL_ROWS);
    assert_eq!(panel.scale.len(), groups * PANEL_ROWS);
    assert_eq!(
        panel.min.len(),
        if f.has_mins() { groups * PANEL_ROWS } else { 0 }
    );
    assert!(v0 + nv <= acts.n && (1..=8).contains(&nv));
    assert_eq!(acts.q.len(), acts.n * acts.k);
    assert_eq!(acts.corr.len(), acts.n * groups);
    let per_row = if f.q8k() { acts.k / 256 } else { groups };
    assert_eq!(acts.d.len(), acts.n * per_row);
    assert_eq!(
        acts.bsum.len(),
        if f.has_mins() { acts.n * groups } else { 0 }
    );
    assert!(out.len() >= nv * PANEL_ROWS);
}

/// The scalar twin of the panel kernels (the contract in the module doc, operation for
/// operation).
pub fn gemm_scalar(panel: &Panel, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(panel, acts, v0, nv, out);
    let f = panel.format.expect("checked");
    let gs = f.group();
    let k = panel.k;
    let groups = k / gs;
    let per_sb = 256 / gs;
    for j in 0..nv {
        let v = v0 + j;
        let a = &acts.q[v * k..(v + 1) * k];
        for r in 0..PANEL_ROWS {
            let isum = |g: usize| -> i32 {
                let mut s = acts.corr[v * groups + g];
                for st in 0..gs / 4 {
                    let wq = panel.q[(g * gs / 4 + st) * PANEL_ROWS + r].to_le_bytes();
                    for i in 0..4 {
                        s += wq[i] as i32 * a[g * gs + 4 * st + i] as i32;
                    }
                }
                s
            };
            let mut acc = 0f32;
            if f.q8k() {
                for s in 0..k / 256 {
                    let mut sb = 0f32;
                    for g in s * per_sb..(s + 1) * per_sb {
                        sb = (isum(g) as f32).mul_add(panel.scale[g * PANEL_ROWS + r], sb);
                    }
                    if f.has_mins() {
                        let mut mn = 0f32;
                        for g in s * per_sb..(s + 1) * per_sb {
                            mn = panel.min[g * PANEL_ROWS + r]
                                .mul_add(acts.bsum[v * groups + g], mn);
                        }
                        sb -= mn;
                    }
                    acc = sb.mul_add(acts.d[v * (k / 256) + s], acc);
                }
            } else {
                for g in 0..groups {
                    let scale = panel.scale[g * PANEL_ROWS + r] * acts.d[v * groups + g];
                    acc = (isum(g) as f32).mul_add(scale, acc);
                }
            }
            out[j * PANEL_ROWS + r] = acc;
        }
    }
}
