//! AMX int8 tiles for the resident Q4_0 / Q8_0 kernels at batch sizes of 16 vectors and more
//! (prefill, long verifications): the path `avx512-amx` (`OURO_SIMD=amx`) is the AVX-512 table
//! plus [`gemm`] as `Kernels::resident_tiles`.
//!
//! Per block of 32 weights, up to four tile products: C (tmm0–3, 16 vectors × a panel's 16
//! rows, i32) = A (tmm4–5, 16 vectors × the block's 32 activations, 512 contiguous bytes of
//! `PanelActs::tiles`) · B (tmm6–7, the block's 8 lines of one panel: 16 rows × 4 weights each
//! — the resident line *is* AMX's B layout), two tiles of vectors × two panels, so each A and
//! B load serves two products. B holds the signed weights `w = u − c`, made once per call from
//! the panel's unsigned lines (Q8_0: the sign bit flipped; Q4_0: the nibbles split, minus 8),
//! so `tdpbssd` gives each (vector, row) the block's exact `Σ w·a`, which is the contract's
//! `isum = corr + Σ u·a` without the correction term. The contract's epilogue follows on
//! AVX-512 per vector (a row of C): `acc = fma(f32(isum), d · da, acc)` — so the tiles give
//! the bits of [`crate::resident::gemm_scalar`] and of every other path, and a token decoded
//! alone equals it inside a prefill. The C tiles are stored into one of two buffers, so a
//! block's epilogue reads stores long done while the next block's products run; what bounds
//! the loop is the tile side (zero, product, store per 16 × 16 block at K = 32, half a tile's
//! depth), not the epilogue.
//!
//! Linux hands out the tile registers' state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`, once per process; without it the first tile instruction is SIGILL):
//! [`missing_amx`] asks once and the path is unavailable when the kernel refuses. Each call
//! loads its tile configuration and releases the tiles when it returns.

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;
use std::sync::OnceLock;

use crate::panel::{PanelActs, PanelFormat, PANEL_ROWS, TILE_VECS};
use crate::resident::{check_any, Line, Resident};

/// `ldtilecfg`'s 64-byte operand (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// C in tmm0–3 (16 × 16 i32: tmm0 = A0·B0, tmm1 = A0·B1, tmm2 = A1·B0, tmm3 = A1·B1), A in
/// tmm4–5 (16 vectors × 32 bytes), B in tmm6–7 (8 × 64 bytes: one panel's block).
static CONFIG: TileConfig = {
    let mut colsb = [0u16; 16];
    let mut rows = [0u8; 16];
    let mut t = 0;
    while t < 8 {
        (colsb[t], rows[t]) = match t {
            0..=3 => (64, 16),
            4 | 5 => (32, 16),
            _ => (64, 8),
        };
        t += 1;
    }
    TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb,
        rows,
    }
};

/// Why this machine cannot run the tiles (`None`: it can). Asks Linux for the tile state the
/// first time (the grant is for the whole process, threads started later included).
pub(crate) fn missing_amx() -> Option<&'static str> {
    static MISSING: OnceLock<Option<&'static str>> = OnceLock::new();
    *MISSING.get_or_init(|| {
        // SAFETY: CPUID leaf 7 exists on every CPU with the AVX-512 features this path also
        // requires (checked first by dispatch); reading it has no other effect.
        #[allow(unused_unsafe)]
        let edx = unsafe { __cpuid_count(7, 0) }.edx;
        if edx & (1 << 24) == 0 {
            Some("amx-tile")
        } else if edx & (1 << 25) == 0 {
            Some("amx-int8")
        } else if !request_tile_data() {
            Some("the AMX tile state (the OS refused it)")
        } else {
            None
        }
    })
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0`.
#[cfg(target_os = "linux")]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with an integer request and no pointers; it only
    // changes which extended states this process may use. `syscall` clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

/// Elsewhere the tile state's permission is not ours to ask for.
#[cfg(not(target_os = "linux"))]
fn request_tile_data() -> bool {
    false
}

/// The tile registers, configured for one call and released when it ends (also on unwind).
struct Tiles;

impl Tiles {
    fn load() -> Tiles {
        // SAFETY: `missing_amx()` returned `None` before this path's table was built (the
        // only way here), so the CPU has AMX and the process holds the tile state; CONFIG is
        // a valid palette-1 configuration, 64-byte aligned.
        unsafe { asm!("ldtilecfg [{}]", in(reg) &CONFIG, options(nostack, readonly)) };
        Tiles
    }

    /// Load A tile `T` (4 or 5): 16 activation rows of 32 bytes, `stride` bytes apart from
    /// the start of `a`.
    fn load_a<const T: u8>(&self, a: &[i8], stride: usize) {
        assert!(a.len() >= 15 * stride + 32);
        let (a, s) = (a.as_ptr(), stride);
        // SAFETY: the tiles are configured (`self`); 16 rows of 32 bytes inside `a`.
        unsafe {
            match T {
                4 => asm!("tileloadd tmm4, [{} + {}*1]", in(reg) a, in(reg) s, options(nostack)),
                _ => asm!("tileloadd tmm5, [{} + {}*1]", in(reg) a, in(reg) s, options(nostack)),
            }
        }
    }

    /// Load B tile `T` (6 or 7): one block's 8 lines.
    fn load_b<const T: u8>(&self, b: &[Line]) {
        assert!(b.len() >= 8);
        let (b, s) = (b.as_ptr(), 64usize);
        // SAFETY: the tiles are configured (`self`); 8 lines of 64 bytes inside `b`.
        unsafe {
            match T {
                6 => asm!("tileloadd tmm6, [{} + {}*1]", in(reg) b, in(reg) s, options(nostack)),
                _ => asm!("tileloadd tmm7, [{} + {}*1]", in(reg) b, in(reg) s, options(nostack)),
            }
        }
    }

    /// C tile `Q` (0–3) = its A · its B (`tdpbssd`, signed × signed, from zero).
    fn product<const Q: u8>(&self) {
        // SAFETY: the tiles are configured (`self`); tile registers only, no memory.
        unsafe {
            match Q {
                0 => asm!(
                    "tilezero tmm0",
                    "tdpbssd tmm0, tmm4, tmm6",
                    options(nostack, nomem)
                ),
                1 => asm!(
                    "tilezero tmm1",
                    "tdpbssd tmm1, tmm4, tmm7",
                    options(nostack, nomem)
                ),
                2 => asm!(
                    "tilezero tmm2",
                    "tdpbssd tmm2, tmm5, tmm6",
                    options(nostack, nomem)
                ),
                _ => asm!(
                    "tilezero tmm3",
                    "tdpbssd tmm3, tmm5, tmm7",
                    options(nostack, nomem)
                ),
            }
        }
    }

    /// Store C tile `Q` (0–3) to `c`.
    fn store<const Q: u8>(&self, c: &mut CTile) {
        let (c, s) = (c.0.as_mut_ptr(), 64usize);
        // SAFETY: the tiles are configured (`self`); writes exactly the 1 KiB of `c`.
        unsafe {
            match Q {
                0 => asm!("tilestored [{} + {}*1], tmm0", in(reg) c, in(reg) s, options(nostack)),
                1 => asm!("tilestored [{} + {}*1], tmm1", in(reg) c, in(reg) s, options(nostack)),
                2 => asm!("tilestored [{} + {}*1], tmm2", in(reg) c, in(reg) s, options(nostack)),
                _ => asm!("tilestored [{} + {}*1], tmm3", in(reg) c, in(reg) s, options(nostack)),
            }
        }
    }
}

/// One C tile in memory: 16 vectors × 16 rows of i32.
#[repr(C, align(64))]
struct CTile([[i32; 16]; 16]);

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: the tiles were configured by `load`; releasing returns them to the init
        // state (no memory access).
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
}

thread_local! {
    /// Two panels' weights as signed bytes, 8 lines per block (see [`signed_lines`]).
    static SIGNED: RefCell<[Vec<Line>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// A Q4_0 / Q8_0 panel's lines as the signed weights `w = u − c` (c = 8, 128), 8 lines per
/// block in the resident line order (Q4_0's 4 lines split into their low then high nibbles).
/// With signed weights the tile product is the exact `Σ w·a = corr + Σ u·a` of the contract
/// (`corr = −c·Σa`), so the epilogue needs no correction term.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn signed_lines(format: PanelFormat, q: &[Line], out: &mut Vec<Line>) {
    // SAFETY (this function): aligned 64-byte loads and stores of whole `Line`s.
    let load = |l: &Line| unsafe { _mm512_load_si512(l.0.as_ptr().cast()) };
    let store = |l: &mut Line, x| unsafe { _mm512_store_si512(l.0.as_mut_ptr().cast(), x) };
    let low = _mm512_set1_epi8(0x0F);
    out.clear();
    if format == PanelFormat::Q8_0 {
        out.resize(q.len(), Line([0; 64]));
        let flip = _mm512_set1_epi8(-128);
        for (src, dst) in q.iter().zip(out.iter_mut()) {
            store(dst, _mm512_xor_si512(load(src), flip));
        }
        return;
    }
    out.resize(2 * q.len(), Line([0; 64]));
    let eight = _mm512_set1_epi8(8);
    for (src, dst) in q.chunks_exact(4).zip(out.chunks_exact_mut(8)) {
        for c in 0..4 {
            let x = load(&src[c]);
            let lo = _mm512_and_si512(x, low);
            let hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), low);
            store(&mut dst[c], _mm512_sub_epi8(lo, eight));
            store(&mut dst[4 + c], _mm512_sub_epi8(hi, eight));
        }
    }
}

/// `acc[j] = fma(f32(c[j]), d · da[j·blocks], acc[j])` for the 16 vectors of one C tile
/// (`da` starts at the tile's first vector's scale of this block).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn epilogue(c: &CTile, d: __m512, da: &[f32], blocks: usize, acc: &mut [__m512; TILE_VECS]) {
    assert!(da.len() > 15 * blocks);
    for (j, acc) in acc.iter_mut().enumerate() {
        // SAFETY: an aligned 64-byte load of exactly the 16 i32 of C's row j.
        let isum = unsafe { _mm512_load_si512(c.0[j].as_ptr().cast()) };
        // SAFETY: j·blocks ≤ 15·blocks < da.len() (asserted).
        let sc = _mm512_mul_ps(d, _mm512_set1_ps(unsafe { *da.get_unchecked(j * blocks) }));
        *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, *acc);
    }
}

/// `TT` (1 or 2) tiles of 16 vectors from `v` × `NP` (1 or 2) panels (`lines[i]`: panel i's
/// signed weights, 8 lines per block; `meta[i]` its scales), into `out[i][j·16 + r]` for
/// vector `v + j`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
fn run_tiles<const TT: usize, const NP: usize>(
    tmm: &Tiles,
    lines: [&[Line]; 2],
    meta: [&[u8]; 2],
    a: &PanelActs,
    v: usize,
    out: [&mut [f32]; 2],
    ahead: [&[Line]; 2],
) {
    let k = a.k;
    let blocks = k / 32;
    let v1 = v + TILE_VECS * TT;
    for i in 0..NP {
        assert!(lines[i].len() == 8 * blocks && meta[i].len() == 32 * blocks);
        assert!(out[i].len() >= TILE_VECS * TT * PANEL_ROWS);
    }
    assert!(v.is_multiple_of(TILE_VECS) && v1 * k <= a.tiles.len() && v1 * blocks <= a.d.len());
    // Tile t's A operand for block s: 16 rows × 32 bytes, contiguous (`PanelActs::tiles`).
    let at = |t: usize, s: usize| &a.tiles[(v + TILE_VECS * t) * k + 512 * s..][..512];
    let mut acc = [[_mm512_setzero_ps(); TILE_VECS]; 4];
    // Two sets of C in memory: block s's products are stored into one while block s − 1's
    // epilogue reads the other (its tile stores long done).
    let mut c = [const { [const { CTile([[0; 16]; 16]) }; 4] }; 2];
    for s in 0..=blocks {
        if s < blocks {
            // The next call's panels into L2, a block's worth of lines per block.
            for l in ahead {
                let per = l.len() / blocks;
                for line in l.iter().skip(s * per).take(per) {
                    _mm_prefetch::<_MM_HINT_T1>(line.0.as_ptr().cast());
                }
            }
            tmm.load_a::<4>(at(0, s), 32);
            if TT == 2 {
                tmm.load_a::<5>(at(1, s), 32);
            }
            tmm.load_b::<6>(&lines[0][8 * s..]);
            if NP == 2 {
                tmm.load_b::<7>(&lines[1][8 * s..]);
            }
            let [c0, c1, c2, c3] = &mut c[s % 2];
            tmm.product::<0>();
            tmm.store::<0>(c0);
            if NP == 2 {
                tmm.product::<1>();
                tmm.store::<1>(c1);
            }
            if TT == 2 {
                tmm.product::<2>();
                tmm.store::<2>(c2);
            }
            if TT == 2 && NP == 2 {
                tmm.product::<3>();
                tmm.store::<3>(c3);
            }
        }
        if s == 0 {
            continue;
        }
        let s = s - 1;
        for i in 0..NP {
            let m = &meta[i][32 * s..32 * s + 32];
            // SAFETY: a 32-byte load of exactly `m` (the block's 16 f16 row scales).
            let d = _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(m.as_ptr().cast()) });
            for t in 0..TT {
                let da = &a.d[(v + TILE_VECS * t) * blocks + s..v1 * blocks];
                epilogue(&c[s % 2][2 * t + i], d, da, blocks, &mut acc[2 * t + i]);
            }
        }
    }
    let [o0, o1] = out;
    for (i, o) in [o0, o1].into_iter().enumerate().take(NP) {
        for t in 0..TT {
            let o = &mut o[t * TILE_VECS * PANEL_ROWS..(t + 1) * TILE_VECS * PANEL_ROWS];
            for (acc, o) in acc[2 * t + i].iter().zip(o.chunks_exact_mut(PANEL_ROWS)) {
                // SAFETY: a 64-byte store into exactly the 16 floats of `o`.
                unsafe { _mm512_storeu_ps(o.as_mut_ptr(), *acc) }
            }
        }
    }
}

/// The table entry (a [`crate::resident::ResidentTilesFn`]): Q4_0 and Q8_0 panels take 16
/// vectors at a time in tiles, two tiles × two panels per block where there are; the vectors
/// left over and the other formats go to the AVX-512 resident kernel, 8 at a time.
pub(crate) fn gemm(
    w: &Resident,
    p: usize,
    np: usize,
    a: &PanelActs,
    v0: usize,
    nv: usize,
    out: &mut [f32],
) {
    assert!(np == 1 || np == 2, "{np} panels per call");
    let per = nv * PANEL_ROWS;
    assert!(out.len() >= np * per);
    for i in 0..np {
        check_any(w, p + i, a, v0, nv, &out[i * per..]);
    }
    let f = w.format();
    // Whole tiles whose activations `PanelActs::pack_tiles` laid out (all of them, as
    // `matmul_resident` calls this).
    let tiles = match f {
        PanelFormat::Q4_0 | PanelFormat::Q8_0 if v0.is_multiple_of(TILE_VECS) => {
            (nv / TILE_VECS).min((a.tiles.len() / a.k / TILE_VECS).saturating_sub(v0 / TILE_VECS))
        }
        _ => 0,
    };
    if tiles > 0 {
        let mut run = |l: &mut [Vec<Line>; 2]| {
            let mut meta = [w.panel(p).1; 2];
            for (i, l) in l.iter_mut().enumerate().take(np) {
                let (q, m) = w.panel(p + i);
                // SAFETY: this entry is only in the table `detected_amx_kernels` builds, which
                // it builds only on a CPU with AVX-512 F/BW/VL/VNNI, F16C, FMA and AMX (whose
                // tile state `missing_amx` obtained).
                unsafe { signed_lines(f, q, l) };
                meta[i] = m;
            }
            let (o0, o1) = out.split_at_mut(per);
            let tmm = Tiles::load();
            let mut t = 0;
            while t < tiles {
                let tt = if tiles - t >= 2 { 2 } else { 1 };
                let at = t * TILE_VECS * PANEL_ROWS;
                let outs: [&mut [f32]; 2] =
                    [&mut o0[at..], if np == 2 { &mut o1[at..] } else { &mut [] }];
                let lines = [&l[0][..], &l[1][..]];
                let v = v0 + t * TILE_VECS;
                // While the first tiles run, the panels the next call takes load into L2.
                let next = |i: usize| {
                    let q = p + np + i;
                    if t == 0 && q < w.panels() && i < np {
                        w.panel(q).0
                    } else {
                        &[]
                    }
                };
                let ahead = [next(0), next(1)];
                // SAFETY: as for `signed_lines` above.
                unsafe {
                    match (tt, np) {
                        (2, 2) => run_tiles::<2, 2>(&tmm, lines, meta, a, v, outs, ahead),
                        (2, _) => run_tiles::<2, 1>(&tmm, lines, meta, a, v, outs, ahead),
                        (_, 2) => run_tiles::<1, 2>(&tmm, lines, meta, a, v, outs, ahead),
                        _ => run_tiles::<1, 1>(&tmm, lines, meta, a, v, outs, ahead),
                    }
                }
                t += tt;
            }
        };
        SIGNED.with(|l| match l.try_borrow_mut() {
            Ok(mut l) => run(&mut l),
            Err(_) => run(&mut [Vec::new(), Vec::new()]),
        });
    }
    for i in 0..np {
        for j in (tiles * TILE_VECS..nv).step_by(8) {
            let n = 8.min(nv - j);
            let o = &mut out[i * per + j * PANEL_ROWS..];
            super::resident512::gemm(w, p + i, a, v0 + j, n, o);
        }
    }
}
