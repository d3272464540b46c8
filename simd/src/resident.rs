//! Resident panels: Q4_0 / Q8_0 / Q4_K / Q6_K weights repacked once, at load, into the panel
//! GEMM's interleave (see [`crate::panel`]) at about the file's size, so that every batch size —
//! one decoded token, a speculative verification, a server step, a prefill — runs the same
//! kernel with the panel contract.
//!
//! Why: the row-at-a-time GEMV spends ~14 vector instructions per row and 64 weights (nibble
//! unpack, the per-block scale pair, a horizontal sum per row), enough to keep a core that
//! executes 512-bit operations in two halves (AMD Zen 4) from streaming weights at the memory's
//! speed. Here sixteen rows share every instruction: per 16 rows × 32 weights, 4 (Q4_0) or 8
//! (Q8_0) 64-byte loads, 8 `vpdpbusd` with a broadcast activation dword, one scale conversion,
//! one multiply, one convert and one FMA — and each row's exact block sum lands in its own lane.
//!
//! Layout, per panel of 16 rows (the last panel is padded with zero rows, scale 0), per *unit*
//! (a block of 32 weights for Q4_0 / Q8_0, a super-block of 256 for Q4_K / Q6_K):
//! - `q`: 64-byte lines, group after group (a group: 32 weights, 16 for Q6_K), each line one
//!   word (four weights) of each of the 16 rows, as unsigned bytes `u = w + c` (the panel's
//!   offsets: 8, 128, 0, 32):
//!   - Q4_0, Q4_K: 4 lines per group; line c byte = `u[4c + i] | u[16 + 4c + i] << 4` — for
//!     Q4_0 exactly the file's `qs` word c (a word transpose, nothing re-encoded);
//!   - Q8_0: 8 lines per group, line s = `u[4s + i]`;
//!   - Q6_K: 3 lines per group of 16: two of nibbles (`lo(u[i]) | lo(u[4 + i]) << 4`,
//!     `lo(u[8 + i]) | lo(u[12 + i]) << 4`) and one of the 2-bit tops of all four words.
//! - `meta`: per unit, the row scales as the file has them, rows innermost: Q4_0 / Q8_0
//!   `d[16]` (f16); Q4_K `d[16] dmin[16]` (f16), `sc[8][16] m[8][16]` (6-bit values as
//!   bytes); Q6_K `d[16]` (f16), `sc[16][16]` (i8).
//!
//! So the resident copy has the file's bytes (Q4_0, Q8_0, Q6_K exactly; Q4_K 148 instead of
//! 144 per 256 weights: the 6-bit scales unpacked) and the loader drops the mapped pages it
//! replaces: resident memory does not grow.
//!
//! Arithmetic: the panel contract ([`crate::panel`] module doc), operation for operation, with
//! `scale = f32(d)·sc` and `min = f32(dmin)·m` formed where used — the same f32 values the
//! panel stores — so a resident product is bit-identical to the on-the-fly panel GEMM of the
//! same rows ([`crate::panel::gemm_scalar`]), for any number of vectors: decoding a token alone
//! or in a batch gives the same bits. [`gemm_scalar`] is the twin of the SIMD kernels.

use half::f16;

use crate::blocks::{as_blocks, BlockQ4_0, BlockQ4_K, BlockQ6_K, BlockQ8_0};
use crate::panel::{k4_words, q6_raw, PanelActs, PanelFormat, PANEL_ROWS};
use crate::GgmlType;

/// One 64-byte line (the allocation unit of [`Resident::q`], so every line is aligned).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// The shape of a format's resident units.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// Weights per unit (32 or 256).
    pub unit: usize,
    /// Weights per scale group (32, or 16 for Q6_K).
    pub group: usize,
    /// Lines per group.
    pub lines: usize,
    /// Meta bytes per unit.
    pub meta: usize,
}

impl Geometry {
    pub fn of(format: PanelFormat) -> Geometry {
        let (unit, group, lines, meta) = match format {
            PanelFormat::Q4_0 => (32, 32, 4, 32),
            PanelFormat::Q8_0 => (32, 32, 8, 32),
            PanelFormat::Q4_K => (256, 32, 4, 320),
            PanelFormat::Q6_K => (256, 16, 3, 288),
            PanelFormat::Q5_K => panic!("ouro_simd::resident: Q5_K has no resident layout"),
        };
        Geometry {
            unit,
            group,
            lines,
            meta,
        }
    }

    /// Groups per unit.
    pub fn groups(&self) -> usize {
        self.unit / self.group
    }

    /// Lines per unit.
    pub fn unit_lines(&self) -> usize {
        self.groups() * self.lines
    }
}

/// A weight matrix repacked into resident panels.
pub struct Resident {
    format: PanelFormat,
    rows: usize,
    k: usize,
    /// `[panel][unit][group][line]`.
    q: Vec<Line>,
    /// `[panel][unit][meta bytes]`.
    meta: Vec<u8>,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Resident({:?}, {} × {})", self.format, self.rows, self.k)
    }
}

/// The unsigned values `u = w + c` of one row's unit, in element order.
fn unit_values(format: PanelFormat, unit: &[u8], out: &mut [u8]) {
    match format {
        PanelFormat::Q4_0 => {
            let b = &as_blocks::<BlockQ4_0>(unit)[0];
            for i in 0..16 {
                out[i] = b.qs[i] & 0x0F;
                out[i + 16] = b.qs[i] >> 4;
            }
        }
        PanelFormat::Q8_0 => {
            let b = &as_blocks::<BlockQ8_0>(unit)[0];
            for (o, &q) in out.iter_mut().zip(&b.qs) {
                *o = (q as u8) ^ 0x80;
            }
        }
        PanelFormat::Q4_K => {
            let b = &as_blocks::<BlockQ4_K>(unit)[0];
            let mut words = [0u32; 64];
            k4_words(&b.qs, None, &mut words);
            for (o, w) in out.chunks_exact_mut(4).zip(words) {
                o.copy_from_slice(&w.to_le_bytes());
            }
        }
        PanelFormat::Q6_K => out.copy_from_slice(&q6_raw(&as_blocks::<BlockQ6_K>(unit)[0])),
        PanelFormat::Q5_K => unreachable!("no resident layout"),
    }
}

/// One row's unit scales into the unit's meta (row `r` of 16).
fn unit_meta(format: PanelFormat, unit: &[u8], r: usize, meta: &mut [u8]) {
    let mut f16_at = |slot: usize, h: [u8; 2]| {
        meta[2 * (slot * PANEL_ROWS + r)..][..2].copy_from_slice(&h);
    };
    match format {
        PanelFormat::Q4_0 => f16_at(0, as_blocks::<BlockQ4_0>(unit)[0].d.0),
        PanelFormat::Q8_0 => f16_at(0, as_blocks::<BlockQ8_0>(unit)[0].d.0),
        PanelFormat::Q4_K => {
            let b = &as_blocks::<BlockQ4_K>(unit)[0];
            f16_at(0, b.d.0);
            f16_at(1, b.dmin.0);
            for j in 0..8 {
                let (sc, m) = crate::blocks::get_scale_min_k4(j, &b.scales);
                meta[64 + j * PANEL_ROWS + r] = sc;
                meta[192 + j * PANEL_ROWS + r] = m;
            }
        }
        PanelFormat::Q6_K => {
            let b = &as_blocks::<BlockQ6_K>(unit)[0];
            f16_at(0, b.d.0);
            for (j, &sc) in b.scales.iter().enumerate() {
                meta[32 + j * PANEL_ROWS + r] = sc as u8;
            }
        }
        PanelFormat::Q5_K => unreachable!("no resident layout"),
    }
}

/// Row `r`'s values of one group (`v`: words of four values, element order) into the group's
/// lines, a word at a time (values are below 16, or 64 for Q6_K, so shifts stay in their byte).
fn encode_group(format: PanelFormat, v: &[u32], r: usize, lines: &mut [Line]) {
    const LO: u32 = 0x0F0F_0F0F;
    const TOP: u32 = 0x0303_0303;
    let mut put = |line: usize, word: u32| {
        lines[line].0[4 * r..4 * r + 4].copy_from_slice(&word.to_le_bytes());
    };
    match format {
        PanelFormat::Q4_0 | PanelFormat::Q4_K => {
            for c in 0..4 {
                put(c, v[c] | v[c + 4] << 4);
            }
        }
        PanelFormat::Q8_0 => {
            for (s, &w) in v.iter().enumerate() {
                put(s, w);
            }
        }
        PanelFormat::Q6_K => {
            put(0, (v[0] & LO) | (v[1] & LO) << 4);
            put(1, (v[2] & LO) | (v[3] & LO) << 4);
            let top = |w: u32| (w >> 4) & TOP;
            put(
                2,
                top(v[0]) | top(v[1]) << 2 | top(v[2]) << 4 | top(v[3]) << 6,
            );
        }
        PanelFormat::Q5_K => unreachable!("no resident layout"),
    }
}

impl Resident {
    /// The formats that have a resident layout.
    pub fn supports(ty: GgmlType) -> bool {
        matches!(
            ty,
            GgmlType::Q4_0 | GgmlType::Q8_0 | GgmlType::Q4_K | GgmlType::Q6_K
        )
    }

    /// Repack `rows` rows of `k` elements of `ty` (`w`: the rows as stored in the file).
    /// Panics on a type without a resident layout or on inconsistent shapes (programmer
    /// errors: the loader checks both).
    pub fn pack(ty: GgmlType, w: &[u8], rows: usize, k: usize) -> Resident {
        let format = match ty {
            GgmlType::Q4_0 => PanelFormat::Q4_0,
            GgmlType::Q8_0 => PanelFormat::Q8_0,
            GgmlType::Q4_K => PanelFormat::Q4_K,
            GgmlType::Q6_K => PanelFormat::Q6_K,
            _ => panic!("ouro_simd::Resident: no resident layout for {ty}"),
        };
        let geo = Geometry::of(format);
        assert!(k.is_multiple_of(geo.unit) && k > 0, "{k} elements per row");
        let w_row = ty.row_bytes(k as u64).expect("whole blocks") as usize;
        assert_eq!(w.len(), rows * w_row, "{rows} rows of {w_row} bytes");
        let units = k / geo.unit;
        let unit_bytes = w_row / units;
        let panels = rows.div_ceil(PANEL_ROWS);
        let per_q = units * geo.unit_lines();
        let per_m = units * geo.meta;
        let mut q = vec![Line([0; 64]); panels * per_q];
        let mut meta = vec![0u8; panels * per_m];
        let pack_panel = |(p, (pq, pm)): (usize, (&mut [Line], &mut [u8]))| {
            let mut v = vec![0u8; geo.unit];
            let mut words = vec![0u32; geo.unit / 4];
            for r in 0..PANEL_ROWS.min(rows - p * PANEL_ROWS) {
                let row = &w[(p * PANEL_ROWS + r) * w_row..][..w_row];
                let units = pq
                    .chunks_exact_mut(geo.unit_lines())
                    .zip(pm.chunks_exact_mut(geo.meta));
                for (ub, (ql, m)) in row.chunks_exact(unit_bytes).zip(units) {
                    unit_values(format, ub, &mut v);
                    unit_meta(format, ub, r, m);
                    for (w, b) in words.iter_mut().zip(v.chunks_exact(4)) {
                        *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    }
                    let per = geo.group / 4;
                    for (vg, lg) in words.chunks_exact(per).zip(ql.chunks_exact_mut(geo.lines)) {
                        encode_group(format, vg, r, lg);
                    }
                }
            }
        };
        use rayon::prelude::*;
        q.par_chunks_mut(per_q)
            .zip(meta.par_chunks_mut(per_m))
            .enumerate()
            .for_each(pack_panel);
        Resident {
            format,
            rows,
            k,
            q,
            meta,
        }
    }

    pub fn format(&self) -> PanelFormat {
        self.format
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Elements per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Panels of 16 rows (the last one may be partial).
    pub fn panels(&self) -> usize {
        self.rows.div_ceil(PANEL_ROWS)
    }

    /// Bytes held (quants and scales).
    pub fn bytes(&self) -> usize {
        self.q.len() * 64 + self.meta.len()
    }

    /// Panel `p`'s lines and meta bytes.
    pub fn panel(&self, p: usize) -> (&[Line], &[u8]) {
        let geo = Geometry::of(self.format);
        let units = self.k / geo.unit;
        let (nq, nm) = (units * geo.unit_lines(), units * geo.meta);
        (
            &self.q[p * nq..(p + 1) * nq],
            &self.meta[p * nm..(p + 1) * nm],
        )
    }
}

/// A resident kernel: panel `p` of `w` against activation rows `v0 .. v0 + nv` (nv ≤ 8) of
/// `acts` (prepared for `w.format()`), writing `out[j·16 + r]` for vector `v0 + j`, row `r`.
pub type ResidentFn =
    fn(w: &Resident, p: usize, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]);

/// A resident kernel for `np` (1 or 2) consecutive panels from `p` and any number of vectors
/// (`nv ≥ 1`), writing `out[i·nv·16 + j·16 + r]` for panel `p + i`, vector `v0 + j`, row `r`
/// (the `[panel][vector][16]` layout of consecutive [`ResidentFn`] outputs). The AMX path
/// multiplies 16 vectors × 16 rows at a time in tiles and hands what is left to its
/// [`ResidentFn`]. Same arithmetic, same bits.
pub type ResidentTilesFn =
    fn(w: &Resident, p: usize, np: usize, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]);

/// Check a kernel call's shapes (every path, before any unchecked access).
pub(crate) fn check(w: &Resident, p: usize, acts: &PanelActs, v0: usize, nv: usize, out: &[f32]) {
    assert!(nv <= 8, "{nv} vectors per call");
    check_any(w, p, acts, v0, nv, out)
}

/// [`check`] for a [`ResidentTilesFn`] (any number of vectors).
pub(crate) fn check_any(
    w: &Resident,
    p: usize,
    acts: &PanelActs,
    v0: usize,
    nv: usize,
    out: &[f32],
) {
    let geo = Geometry::of(w.format);
    assert_eq!(
        acts.format,
        Some(w.format),
        "weights and activations of one format"
    );
    assert_eq!(acts.k, w.k);
    assert!(p < w.panels());
    let units = w.k / geo.unit;
    let groups = w.k / geo.group;
    assert_eq!(w.q.len(), w.panels() * units * geo.unit_lines());
    assert_eq!(w.meta.len(), w.panels() * units * geo.meta);
    assert!(v0 + nv <= acts.n && nv >= 1);
    assert_eq!(acts.q.len(), acts.n * acts.k);
    assert_eq!(acts.corr.len(), acts.n * groups);
    let per_row = if w.format.q8k() { w.k / 256 } else { groups };
    assert_eq!(acts.d.len(), acts.n * per_row);
    let mins = w.format == PanelFormat::Q4_K;
    assert_eq!(acts.bsum.len(), if mins { acts.n * groups } else { 0 });
    assert!(out.len() >= nv * PANEL_ROWS);
}

/// The unsigned value of row `r`, weight `i` of a group whose lines are `l`.
fn unsigned(format: PanelFormat, l: &[Line], r: usize, i: usize) -> u8 {
    let byte = |line: usize| l[line].0[4 * r + i % 4];
    match format {
        PanelFormat::Q4_0 | PanelFormat::Q4_K => {
            let b = byte((i % 16) / 4);
            if i < 16 {
                b & 0x0F
            } else {
                b >> 4
            }
        }
        PanelFormat::Q8_0 => byte(i / 4),
        PanelFormat::Q6_K => {
            let word = i / 4;
            let lo = byte(word / 2) >> (4 * (word % 2)) & 15;
            let hi = byte(2) >> (2 * word) & 3;
            lo | hi << 4
        }
        PanelFormat::Q5_K => unreachable!("no resident layout"),
    }
}

/// The f16 at `slot` (a block of 16, row `r`) of a unit's meta, as f32.
pub(crate) fn meta_f16(m: &[u8], slot: usize, r: usize) -> f32 {
    let at = 2 * (slot * PANEL_ROWS + r);
    f16::from_le_bytes([m[at], m[at + 1]]).to_f32()
}

/// The scalar twin of the resident kernels (the module doc's arithmetic, operation for
/// operation).
pub fn gemm_scalar(
    w: &Resident,
    p: usize,
    acts: &PanelActs,
    v0: usize,
    nv: usize,
    out: &mut [f32],
) {
    check(w, p, acts, v0, nv, out);
    let f = w.format;
    let geo = Geometry::of(f);
    let k = w.k;
    let groups = k / geo.group;
    let (q, meta) = w.panel(p);
    for j in 0..nv {
        let v = v0 + j;
        let a = &acts.q[v * k..(v + 1) * k];
        for r in 0..PANEL_ROWS {
            let isum = |g: usize| -> i32 {
                let l = &q[g * geo.lines..(g + 1) * geo.lines];
                let mut s = acts.corr[v * groups + g];
                for i in 0..geo.group {
                    s += unsigned(f, l, r, i) as i32 * a[g * geo.group + i] as i32;
                }
                s
            };
            let mut acc = 0f32;
            for (s, m) in meta.chunks_exact(geo.meta).enumerate() {
                let d = meta_f16(m, 0, r);
                match f {
                    PanelFormat::Q4_0 | PanelFormat::Q8_0 => {
                        let sc = d * acts.d[v * groups + s];
                        acc = (isum(s) as f32).mul_add(sc, acc);
                    }
                    _ => {
                        let gs = geo.groups();
                        let mut sb = 0f32;
                        for gl in 0..gs {
                            let sc = if f == PanelFormat::Q4_K {
                                m[64 + gl * PANEL_ROWS + r] as f32
                            } else {
                                m[32 + gl * PANEL_ROWS + r] as i8 as f32
                            };
                            sb = (isum(s * gs + gl) as f32).mul_add(d * sc, sb);
                        }
                        if f == PanelFormat::Q4_K {
                            let dmin = meta_f16(m, 1, r);
                            let mut mn = 0f32;
                            for gl in 0..gs {
                                let min = dmin * m[192 + gl * PANEL_ROWS + r] as f32;
                                mn = min.mul_add(acts.bsum[v * groups + s * gs + gl], mn);
                            }
                            sb -= mn;
                        }
                        acc = sb.mul_add(acts.d[v * (k / 256) + s], acc);
                    }
                }
            }
            out[j * PANEL_ROWS + r] = acc;
        }
    }
}
