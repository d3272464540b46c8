//! Resident panels: Q4_0 / Q8_0 weights repacked once, at load, into the panel GEMM's
//! interleave (see [`crate::panel`]) but at the file's own size, so that every batch size —
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
//! Layout, per panel of 16 rows (the last panel is padded with zero rows, scale 0):
//! - `q`: `[block][...]` 64-byte lines. Q4_0: 4 lines per block, line c holding the native
//!   `qs` word c (bytes 4c..4c+4: low nibbles = weights 4c..4c+4, high nibbles = weights
//!   16+4c..) of rows 0..16 — a word transpose, nothing re-encoded. Q8_0: 8 lines per block,
//!   line s holding quants 4s..4s+4 of each row as unsigned bytes `w + 128`.
//! - `scale`: `[block][16]` the f16 block scales, as stored in the file.
//!
//! So the resident copy has exactly the file's bytes (18 per 32 weights for Q4_0, 34 for Q8_0)
//! and the loader drops the mapped pages it replaces: resident memory does not grow.
//!
//! Arithmetic: the panel contract for Q8_0 activations, operation for operation —
//! `isum = −c·Σa + Σ u·a` (exact), `acc = fma(f32(isum), f32(scale) · da, acc)` per block in
//! order — so a resident product is bit-identical to the on-the-fly panel GEMM of the same rows
//! ([`crate::panel::gemm_scalar`]), for any number of vectors: decoding a token alone or in a
//! batch gives the same bits. [`gemm_scalar`] is the twin of the SIMD kernels.

use half::f16;

use crate::blocks::{as_blocks, BlockQ4_0, BlockQ8_0};
use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS};
use crate::GgmlType;

/// One 64-byte line (the allocation unit of [`Resident::q`], so every line is aligned).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Line(pub [u8; 64]);

/// A weight matrix repacked into resident panels.
pub struct Resident {
    format: PanelFormat,
    rows: usize,
    k: usize,
    /// `[panel][block][lines_per_block]`.
    q: Vec<Line>,
    /// `[panel][block][16]` f16 scale bits.
    scale: Vec<u16>,
}

impl std::fmt::Debug for Resident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Resident({:?}, {} × {})",
            self.format, self.rows, self.k
        )
    }
}

impl Resident {
    /// The formats that have a resident layout.
    pub fn supports(ty: GgmlType) -> bool {
        matches!(ty, GgmlType::Q4_0 | GgmlType::Q8_0)
    }

    /// Repack `rows` rows of `k` elements of `ty` (`w`: the rows as stored in the file).
    /// Panics on a type without a resident layout or on inconsistent shapes (programmer
    /// errors: the loader checks both).
    pub fn pack(ty: GgmlType, w: &[u8], rows: usize, k: usize) -> Resident {
        let format = match ty {
            GgmlType::Q4_0 => PanelFormat::Q4_0,
            GgmlType::Q8_0 => PanelFormat::Q8_0,
            _ => panic!("ouro_simd::Resident: no resident layout for {ty}"),
        };
        assert!(k.is_multiple_of(32) && k > 0, "{k} elements per row");
        let w_row = ty.row_bytes(k as u64).expect("whole blocks") as usize;
        assert_eq!(w.len(), rows * w_row, "{rows} rows of {w_row} bytes");
        let blocks = k / 32;
        let lpb = lines_per_block(format);
        let panels = rows.div_ceil(PANEL_ROWS);
        let mut q = vec![Line([0; 64]); panels * blocks * lpb];
        let mut scale = vec![0u16; panels * blocks * PANEL_ROWS];
        let per_q = blocks * lpb;
        let per_s = blocks * PANEL_ROWS;
        let pack_panel = |(p, (pq, ps)): (usize, (&mut [Line], &mut [u16]))| {
            for r in 0..PANEL_ROWS.min(rows - p * PANEL_ROWS) {
                let row = &w[(p * PANEL_ROWS + r) * w_row..][..w_row];
                match format {
                    PanelFormat::Q4_0 => {
                        for (g, b) in as_blocks::<BlockQ4_0>(row).iter().enumerate() {
                            for c in 0..4 {
                                pq[g * 4 + c].0[4 * r..4 * r + 4]
                                    .copy_from_slice(&b.qs[4 * c..4 * c + 4]);
                            }
                            ps[g * PANEL_ROWS + r] = u16::from_le_bytes(b.d.0);
                        }
                    }
                    _ => {
                        for (g, b) in as_blocks::<BlockQ8_0>(row).iter().enumerate() {
                            for s in 0..8 {
                                for i in 0..4 {
                                    pq[g * 8 + s].0[4 * r + i] = (b.qs[4 * s + i] as u8) ^ 0x80;
                                }
                            }
                            ps[g * PANEL_ROWS + r] = u16::from_le_bytes(b.d.0);
                        }
                    }
                }
            }
        };
        use rayon::prelude::*;
        q.par_chunks_mut(per_q)
            .zip(scale.par_chunks_mut(per_s))
            .enumerate()
            .for_each(pack_panel);
        Resident {
            format,
            rows,
            k,
            q,
            scale,
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
        self.q.len() * 64 + self.scale.len() * 2
    }

    /// Panel `p`'s lines and scales.
    pub fn panel(&self, p: usize) -> (&[Line], &[u16]) {
        let blocks = self.k / 32;
        let lpb = lines_per_block(self.format);
        (
            &self.q[p * blocks * lpb..(p + 1) * blocks * lpb],
            &self.scale[p * blocks * PANEL_ROWS..(p + 1) * blocks * PANEL_ROWS],
        )
    }
}

/// 64-byte lines per block of 32 weights.
pub fn lines_per_block(format: PanelFormat) -> usize {
    match format {
        PanelFormat::Q4_0 => 4,
        _ => 8,
    }
}

/// A resident kernel: panel `p` of `w` against activation rows `v0 .. v0 + nv` (nv ≤ 8) of
/// `acts` (prepared for `w.format()`), writing `out[j·16 + r]` for vector `v0 + j`, row `r`.
pub type ResidentFn = fn(w: &Resident, p: usize, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]);

/// Check a kernel call's shapes (every path, before any unchecked access).
pub(crate) fn check(w: &Resident, p: usize, acts: &PanelActs, v0: usize, nv: usize, out: &[f32]) {
    assert!(matches!(w.format, PanelFormat::Q4_0 | PanelFormat::Q8_0));
    assert_eq!(acts.format, Some(w.format), "weights and activations of one format");
    assert_eq!(acts.k, w.k);
    assert!(p < w.panels());
    let blocks = w.k / 32;
    assert_eq!(w.q.len(), w.panels() * blocks * lines_per_block(w.format));
    assert_eq!(w.scale.len(), w.panels() * blocks * PANEL_ROWS);
    assert!(v0 + nv <= acts.n && (1..=8).contains(&nv));
    assert_eq!(acts.q.len(), acts.n * acts.k);
    assert_eq!(acts.corr.len(), acts.n * blocks);
    assert_eq!(acts.d.len(), acts.n * blocks);
    assert!(out.len() >= nv * PANEL_ROWS);
}

/// The unsigned byte `u = w + c` of row `r`, weight `i` of block `g` in panel lines `q`.
fn unsigned(format: PanelFormat, q: &[Line], g: usize, r: usize, i: usize) -> u8 {
    match format {
        PanelFormat::Q4_0 => {
            let b = q[g * 4 + (i % 16) / 4].0[4 * r + i % 4];
            if i < 16 {
                b & 0x0F
            } else {
                b >> 4
            }
        }
        _ => q[g * 8 + i / 4].0[4 * r + i % 4],
    }
}

/// The scalar twin of the resident kernels (the module doc's arithmetic, operation for
/// operation).
pub fn gemm_scalar(w: &Resident, p: usize, acts: &PanelActs, v0: usize, nv: usize, out: &mut [f32]) {
    check(w, p, acts, v0, nv, out);
    let k = w.k;
    let blocks = k / 32;
    let (q, scale) = w.panel(p);
    for j in 0..nv {
        let v = v0 + j;
        let a = &acts.q[v * k..(v + 1) * k];
        for r in 0..PANEL_ROWS {
            let mut acc = 0f32;
            for g in 0..blocks {
                let mut isum = acts.corr[v * blocks + g];
                for i in 0..32 {
                    isum += unsigned(w.format, q, g, r, i) as i32 * a[g * 32 + i] as i32;
                }
                let sc = f16::from_bits(scale[g * PANEL_ROWS + r]).to_f32() * acts.d[v * blocks + g];
                acc = (isum as f32).mul_add(sc, acc);
            }
            out[j * PANEL_ROWS + r] = acc;
        }
    }
}
