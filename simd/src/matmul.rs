//! The matmul driver: activations quantized once per call, weight rows split across the rayon
//! pool (never the reduction dimension, so results do not depend on the thread count), and the
//! four-row / four-vector / 4×4-tile kernels used where the path has them.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::dispatch::{self, kernels, Kernels, Tile4x4};
use crate::panel::{Panel, PanelActs, PanelFormat, PanelKernels, PANEL_ROWS};
use crate::resident::{self, Resident};
use crate::{row_bytes, vec_dot_type, GgmlType};

/// `y[v*rows + r] = dot(weight row r, x[v*cols .. (v+1)*cols])` for `v < n_vecs`, with the
/// selected kernel path. `w` is `rows` rows of `cols` elements of `wtype`. Each activation
/// vector is quantized once to `vec_dot_type(wtype)`; rows are split across the current
/// rayon pool, and each output is computed by one kernel call, so the result does not
/// depend on the thread count. Each weight row is dotted with all `n_vecs` vectors while it
/// is in cache, so the weights stream from memory once per call.
pub fn matmul(
    wtype: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n_vecs: usize,
    y: &mut [f32],
) {
    matmul_with(kernels(), wtype, w, rows, cols, x, n_vecs, y)
}

/// Weight bytes × vectors below which `matmul` stays on the calling thread (a rayon
/// fork-join costs a few microseconds, about what one core needs for 32 KiB of Q4_0).
const PARALLEL_MIN_WORK: usize = 1 << 15;

thread_local! {
    static ACTIVATIONS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// [`matmul`] with an explicit kernel table (tests and benchmarks force each path this way).
#[allow(clippy::too_many_arguments)]
pub fn matmul_with(
    k: &Kernels,
    wtype: GgmlType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n_vecs: usize,
    y: &mut [f32],
) {
    let w_row = row_bytes("matmul", wtype, cols);
    assert_eq!(
        w.len(),
        rows * w_row,
        "ouro_simd::matmul: {rows}x{cols} {wtype} weights need {} bytes, got {}",
        rows * w_row,
        w.len()
    );
    assert_eq!(
        x.len(),
        n_vecs * cols,
        "ouro_simd::matmul: {n_vecs} vectors of {cols} need {} inputs, got {}",
        n_vecs * cols,
        x.len()
    );
    assert_eq!(
        y.len(),
        n_vecs * rows,
        "ouro_simd::matmul: {n_vecs} vectors of {rows} need {} outputs, got {}",
        n_vecs * rows,
        y.len()
    );
    let dot = k
        .vec_dot(wtype)
        .unwrap_or_else(|| panic!("ouro_simd::matmul: no dot product for {wtype} weights"));
    let atype = vec_dot_type(wtype);
    let quantize = k
        .quantize_activation(atype)
        .unwrap_or_else(|| panic!("ouro_simd::matmul: no quantizer for {atype}"));
    let a_row = row_bytes("matmul", atype, cols);
    if rows == 0 || n_vecs == 0 {
        return;
    }
    if cols == 0 {
        // Empty dot products (and no zero-sized chunks below).
        y.fill(0.0);
        return;
    }

    let mut run = |acts: &mut Vec<u8>| {
        acts.clear();
        acts.resize(n_vecs * a_row, 0);
        for (a, xv) in acts.chunks_exact_mut(a_row).zip(x.chunks_exact(cols)) {
            quantize(xv, a);
        }
        if n_vecs >= PANEL_MIN_VECS {
            if let (Some(f), Some(fmt)) = (k.panel_gemm, PanelFormat::of(wtype)) {
                return panel_rows(f, fmt, w, w_row, cols, acts, rows, n_vecs, y);
            }
        }
        gemm_rows(
            dot,
            k.vec_dot_x4(wtype),
            k.vec_dot_r4(wtype),
            // The K-quant tiles lose to the one-row × four-vector kernels at 4 vectors and tie at
            // 8 (idle criterion run, 2048×5632, avx512-vnni: Q4_K 64 vs 90 GMAC/s at n = 4, 83 vs
            // 85 at n = 8): only from 8 on. Both are bit-identical to the single dots.
            k.tile_4x4(wtype).filter(|_| {
                n_vecs >= 8 || !matches!(wtype, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K)
            }),
            w,
            w_row,
            acts,
            a_row,
            rows,
            n_vecs,
            y,
        );
    };
    // A nested matmul on the same thread (rayon work stealing) gets its own buffer.
    ACTIVATIONS.with(|buf| match buf.try_borrow_mut() {
        Ok(mut acts) => run(&mut acts),
        Err(_) => run(&mut Vec::new()),
    });
}

thread_local! {
    static RESIDENT_ACTS: RefCell<PanelActs> = RefCell::new(PanelActs::default());
    /// `[panel][vector][16]` results before the scatter (kept: a fresh multi-MB buffer per
    /// prefill product cost page faults, ~2.5 % of a pp128).
    static RESIDENT_OUT: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// [`matmul`] for weights repacked into resident panels: `y[v*rows + r]` for `n_vecs`
/// vectors of `w.k()` inputs. Every output is computed by the same arithmetic whatever
/// `n_vecs` (the panel contract), so a token decoded alone and inside a batch get the same
/// bits — and the same as the on-the-fly panel GEMM.
pub fn matmul_resident(w: &Resident, x: &[f32], n_vecs: usize, y: &mut [f32]) {
    matmul_resident_with(kernels(), w, x, n_vecs, y)
}

/// [`matmul_resident`] with an explicit kernel table (a table without a resident kernel runs
/// the scalar twin).
pub fn matmul_resident_with(k: &Kernels, w: &Resident, x: &[f32], n_vecs: usize, y: &mut [f32]) {
    let (rows, cols) = (w.rows(), w.k());
    assert_eq!(
        x.len(),
        n_vecs * cols,
        "ouro_simd::matmul_resident: {n_vecs} vectors of {cols} need {} inputs, got {}",
        n_vecs * cols,
        x.len()
    );
    assert_eq!(
        y.len(),
        n_vecs * rows,
        "ouro_simd::matmul_resident: {n_vecs} vectors of {rows} need {} outputs, got {}",
        n_vecs * rows,
        y.len()
    );
    if rows == 0 || n_vecs == 0 {
        return;
    }
    let gemm = k.resident.unwrap_or(resident::gemm_scalar);
    let fmt = w.format();
    // The tiles take Q4_0 / Q8_0 (groups of 32); other formats keep the resident kernel.
    let tiles = k.resident_tiles.filter(|_| {
        n_vecs >= TILES_MIN_VECS && matches!(fmt, PanelFormat::Q4_0 | PanelFormat::Q8_0)
    });
    let atype = vec_dot_type(fmt.ggml_type());
    let quantize = k
        .quantize_activation(atype)
        .unwrap_or_else(|| panic!("ouro_simd::matmul_resident: no quantizer for {atype}"));
    let a_row = row_bytes("matmul_resident", atype, cols);
    let mut run = |acts: &mut Vec<u8>, pa: &mut PanelActs, yt: &mut Vec<f32>| {
        acts.clear();
        acts.resize(n_vecs * a_row, 0);
        for (a, xv) in acts.chunks_exact_mut(a_row).zip(x.chunks_exact(cols)) {
            quantize(xv, a);
        }
        pa.prepare(fmt, cols, acts, n_vecs);
        if tiles.is_some() {
            pa.pack_tiles();
        }
        let pa = &*pa;
        let n_panels = w.panels();
        let threads = rayon::current_num_threads();
        let parallel = threads > 1 && rows * cols * n_vecs >= 2 * PARALLEL_MIN_WORK && n_panels > 1;
        let chunk = if parallel {
            n_panels.div_ceil(threads * 4).max(1)
        } else {
            n_panels
        };
        // The tiles kernel takes panels in pairs: a worker's chunk holds whole pairs.
        let chunk = if tiles.is_some() {
            chunk.next_multiple_of(2)
        } else {
            chunk
        };
        let per_panel = n_vecs * PANEL_ROWS;
        // Panels × (vectors in groups of 8) into `out` laid out [panel][vector][16].
        let task = |(ci, out): (usize, &mut [f32])| {
            if let Some(tiles) = tiles {
                // Two panels per call (the tiles share each activation load between them).
                for (pi, o) in out.chunks_mut(2 * per_panel).enumerate() {
                    tiles(
                        w,
                        ci * chunk + 2 * pi,
                        o.len() / per_panel,
                        pa,
                        0,
                        n_vecs,
                        o,
                    );
                }
                return;
            }
            for (pi, o) in out.chunks_exact_mut(per_panel).enumerate() {
                let p = ci * chunk + pi;
                for v0 in (0..n_vecs).step_by(8) {
                    gemm(w, p, pa, v0, 8.min(n_vecs - v0), &mut o[v0 * PANEL_ROWS..]);
                }
            }
        };
        if n_vecs == 1 && rows.is_multiple_of(PANEL_ROWS) {
            // [panel][16] is y itself.
            if parallel {
                y.par_chunks_mut(chunk * per_panel)
                    .enumerate()
                    .for_each(task);
            } else {
                y.chunks_mut(chunk * per_panel).enumerate().for_each(task);
            }
            return;
        }
        yt.clear();
        yt.resize(n_panels * per_panel, 0.0);
        if parallel {
            yt.par_chunks_mut(chunk * per_panel)
                .enumerate()
                .for_each(task);
        } else {
            yt.chunks_mut(chunk * per_panel).enumerate().for_each(task);
        }
        scatter_panels(yt, n_vecs, rows, y, parallel && n_vecs > 1);
    };
    // A nested product on the same thread (rayon work stealing) gets fresh buffers.
    ACTIVATIONS.with(|buf| {
        RESIDENT_ACTS.with(|pa| {
            RESIDENT_OUT.with(|out| {
                match (
                    buf.try_borrow_mut(),
                    pa.try_borrow_mut(),
                    out.try_borrow_mut(),
                ) {
                    (Ok(mut acts), Ok(mut pa), Ok(mut yt)) => run(&mut acts, &mut pa, &mut yt),
                    _ => run(&mut Vec::new(), &mut PanelActs::default(), &mut Vec::new()),
                }
            })
        })
    });
}

/// Batches from this size on take a path's `resident_tiles` kernel (AMX: one tile product
/// holds 16 vectors) where it has one. Same bits as the 8-vector resident kernels.
pub const TILES_MIN_VECS: usize = crate::panel::TILE_VECS;

/// Batches from this size on take the panel GEMM where the path has one (smaller batches —
/// speculative verification, a few server sequences — keep the 4×4 tiles, which are
/// bit-identical to decoding the tokens one at a time).
pub const PANEL_MIN_VECS: usize = 16;

thread_local! {
    static PANEL: RefCell<Panel> = RefCell::new(Panel::default());
}

/// The panel product: 16-row panels split across the pool, each packed once and multiplied
/// with every vector (8 at a time), results `[panel][vector][16]` then scattered to
/// `[vector][row]`.
#[allow(clippy::too_many_arguments)]
fn panel_rows(
    pk: PanelKernels,
    fmt: PanelFormat,
    w: &[u8],
    w_row: usize,
    cols: usize,
    acts: &[u8],
    rows: usize,
    n_vecs: usize,
    y: &mut [f32],
) {
    let mut pa = PanelActs::default();
    pa.prepare(fmt, cols, acts, n_vecs);
    let n_panels = rows.div_ceil(PANEL_ROWS);
    let threads = rayon::current_num_threads();
    let chunk = n_panels.div_ceil(threads * 4).max(1);
    let per_panel = n_vecs * PANEL_ROWS;
    let mut yt = vec![0f32; n_panels * per_panel];
    let task = |(ci, out): (usize, &mut [f32])| {
        PANEL.with_borrow_mut(|panel| {
            for (pi, o) in out.chunks_exact_mut(per_panel).enumerate() {
                let r0 = (ci * chunk + pi) * PANEL_ROWS;
                let r1 = rows.min(r0 + PANEL_ROWS);
                (pk.pack)(panel, fmt, cols, &w[r0 * w_row..r1 * w_row], w_row, r1 - r0);
                for v0 in (0..n_vecs).step_by(8) {
                    let nv = 8.min(n_vecs - v0);
                    (pk.gemm)(panel, &pa, v0, nv, &mut o[v0 * PANEL_ROWS..]);
                }
            }
        })
    };
    if threads > 1 {
        yt.par_chunks_mut(chunk * per_panel)
            .enumerate()
            .for_each(task);
    } else {
        yt.chunks_mut(chunk * per_panel).enumerate().for_each(task);
    }
    scatter_panels(&yt, n_vecs, rows, y, threads > 1);
}

/// Panel results `yt` (`[panel][vector][16]`) to `y` (`[vector][row]`), `rows` per vector.
fn scatter_panels(yt: &[f32], n_vecs: usize, rows: usize, y: &mut [f32], parallel: bool) {
    let per_panel = n_vecs * PANEL_ROWS;
    let scatter = |(v, out): (usize, &mut [f32])| {
        for (p, o) in out.chunks_mut(PANEL_ROWS).enumerate() {
            o.copy_from_slice(&yt[p * per_panel + v * PANEL_ROWS..][..o.len()]);
        }
    };
    if parallel {
        y.par_chunks_mut(rows).enumerate().for_each(scatter);
    } else {
        y.chunks_mut(rows).enumerate().for_each(scatter);
    }
}

/// The row-parallel product on already quantized activations.
#[allow(clippy::too_many_arguments)]
fn gemm_rows(
    dot: dispatch::VecDotFn,
    dot_x4: Option<dispatch::VecDotX4Fn>,
    dot_r4: Option<dispatch::VecDotR4Fn>,
    tile: Option<Tile4x4>,
    w: &[u8],
    w_row: usize,
    acts: &[u8],
    a_row: usize,
    rows: usize,
    n_vecs: usize,
    y: &mut [f32],
) {
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && rows * w_row * n_vecs >= PARALLEL_MIN_WORK;
    // About four tasks per thread balance uneven cores without much fork-join overhead.
    // Chunks are whole multiples of 4 rows for the four-row GEMV kernels.
    let chunk_rows = if parallel {
        rows.div_ceil(threads * 4).next_multiple_of(4)
    } else {
        rows
    };
    if n_vecs == 1 {
        let row = |r: usize| &w[r * w_row..(r + 1) * w_row];
        let task = |(ci, out): (usize, &mut [f32])| {
            let r0 = ci * chunk_rows;
            let mut i = 0;
            if let Some(dot_r4) = dot_r4 {
                while i + 4 <= out.len() {
                    let r = r0 + i;
                    let rows4 = [row(r), row(r + 1), row(r + 2), row(r + 3)];
                    out[i..i + 4].copy_from_slice(&dot_r4(rows4, acts));
                    i += 4;
                }
            }
            for (i, o) in out.iter_mut().enumerate().skip(i) {
                *o = dot(row(r0 + i), acts);
            }
        };
        if parallel {
            y.par_chunks_mut(chunk_rows).enumerate().for_each(task);
        } else {
            y.chunks_mut(chunk_rows).enumerate().for_each(task);
        }
        return;
    }
    // The 4×4 tile wants its own activation layout: prepare the first n_vecs/4·4 vectors once.
    let tile = tile
        .filter(|_| n_vecs >= 4 && rows >= 4)
        .and_then(|t| (t.prepared_bytes)(a_row).map(|pb| (t, pb)));
    let mut prepared = Vec::new();
    if let Some((t, pb)) = tile {
        prepared.resize(n_vecs / 4 * 4 * pb, 0u8);
        prepared
            .par_chunks_mut(pb)
            .zip(acts.par_chunks_exact(a_row))
            .for_each(|(out, a)| (t.prepare)(a, out));
    }
    // Row-major [rows][n_vecs] so that a task owns a contiguous range, then transpose.
    let mut yt = vec![0f32; rows * n_vecs];
    let act = |v: usize| &acts[v * a_row..(v + 1) * a_row];
    // One weight row against vectors `from..n_vecs` (four at a time where the path can).
    let row_dots = |wr: &[u8], o: &mut [f32], from: usize| {
        let mut v = from;
        if let Some(dot_x4) = dot_x4 {
            while v + 4 <= n_vecs {
                let out = dot_x4(wr, [act(v), act(v + 1), act(v + 2), act(v + 3)]);
                o[v..v + 4].copy_from_slice(&out);
                v += 4;
            }
        }
        for (v, ov) in o.iter_mut().enumerate().skip(v) {
            *ov = dot(wr, act(v));
        }
    };
    let task = |(ci, out): (usize, &mut [f32])| {
        let r0 = ci * chunk_rows;
        let n_rows = out.len() / n_vecs;
        let wrow = |r: usize| &w[r * w_row..(r + 1) * w_row];
        let mut i = 0;
        if let Some((t, pb)) = tile {
            let pact = |v: usize| &prepared[v * pb..(v + 1) * pb];
            let v4 = n_vecs / 4 * 4;
            let mut pw = vec![0u8; (t.prepared_w_bytes)(w_row)];
            while i + 4 <= n_rows {
                let r = r0 + i;
                let wr = [wrow(r), wrow(r + 1), wrow(r + 2), wrow(r + 3)];
                (t.prepare_w)(wr, &mut pw);
                for v in (0..v4).step_by(4) {
                    let res = (t.tile)(&pw, [pact(v), pact(v + 1), pact(v + 2), pact(v + 3)]);
                    for (d, vals) in res.iter().enumerate() {
                        out[(i + d) * n_vecs + v..][..4].copy_from_slice(vals);
                    }
                }
                for (d, &wr) in wr.iter().enumerate() {
                    row_dots(wr, &mut out[(i + d) * n_vecs..][..n_vecs], v4);
                }
                i += 4;
            }
        }
        for (i, o) in out.chunks_exact_mut(n_vecs).enumerate().skip(i) {
            row_dots(wrow(r0 + i), o, 0);
        }
    };
    if parallel {
        yt.par_chunks_mut(chunk_rows * n_vecs)
            .enumerate()
            .for_each(task);
    } else {
        yt.chunks_mut(chunk_rows * n_vecs)
            .enumerate()
            .for_each(task);
    }
    // The transpose, in parallel over groups of 16 vectors: each step reads one cache line of
    // `yt` and appends to 16 sequential output streams (it was 7 % of prefill, single-threaded
    // and strided).
    const TV: usize = 16;
    let transpose = |(g, out): (usize, &mut [f32])| {
        let v0 = g * TV;
        let nv = out.len() / rows;
        for (r, row) in yt.chunks_exact(n_vecs).enumerate() {
            for (j, &val) in row[v0..v0 + nv].iter().enumerate() {
                out[j * rows + r] = val;
            }
        }
    };
    if parallel {
        y.par_chunks_mut(TV * rows).enumerate().for_each(transpose);
    } else {
        y.chunks_mut(TV * rows).enumerate().for_each(transpose);
    }
}
