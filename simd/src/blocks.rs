//! ggml's block layouts, byte for byte (`ggml-common.h`), as `#[repr(C)]` structs whose
//! fields are all byte arrays: alignment 1, no padding, every bit pattern valid
//! (`bytemuck::Pod`, checked by its derive). A block can therefore be viewed in place from a
//! `&[u8]` at any offset (GGUF data is only 32-byte aligned per tensor and rows of odd-sized
//! blocks start anywhere) with [`as_blocks`]. Multi-byte fields are little-endian and decoded
//! with accessors; a `u16`/`f16` field would raise the alignment to 2 and make views of
//! odd offsets fail, which is why there is none (alignment 1 is asserted at compile time).

use bytemuck::{Pod, Zeroable};

/// Elements in a K-quant super-block.
pub const QK_K: usize = 256;
/// Elements in a Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0 / Q8_1 block.
pub const QK: usize = 32;

/// An IEEE half stored as two little-endian bytes (ggml's `ggml_half`).
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct Half(pub [u8; 2]);

impl Half {
    pub fn to_f32(self) -> f32 {
        half::f16::from_bits(u16::from_le_bytes(self.0)).to_f32()
    }

    /// Round to nearest even, as ggml's `GGML_FP32_TO_FP16` and numpy's `astype(float16)`.
    pub fn from_f32(x: f32) -> Half {
        Half(half::f16::from_f32(x).to_bits().to_le_bytes())
    }

    pub fn bits(self) -> u16 {
        u16::from_le_bytes(self.0)
    }
}

/// Q4_0: 32 weights = d · (q − 8), q in 0..16; element j is the low nibble of `qs[j]`,
/// element j + 16 its high nibble.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_0 {
    pub d: Half,
    pub qs: [u8; 16],
}

/// Q4_1: 32 weights = d · q + m, q in 0..16, nibbles as in Q4_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_1 {
    pub d: Half,
    pub m: Half,
    pub qs: [u8; 16],
}

/// Q5_0: 32 weights = d · (q − 16), q in 0..32; low 4 bits as in Q4_0, bit 4 of element j
/// is bit j of the little-endian u32 `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_0 {
    pub d: Half,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// Q5_1: 32 weights = d · q + m, q in 0..32, bits as in Q5_0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_1 {
    pub d: Half,
    pub m: Half,
    pub qh: [u8; 4],
    pub qs: [u8; 16],
}

/// Q8_0: 32 weights = d · q.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_0 {
    pub d: Half,
    pub qs: [i8; 32],
}

/// Q8_1 (activations for Q4_1 / Q5_1): 32 values = d · q, and s = d · Σq.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_1 {
    pub d: Half,
    pub s: Half,
    pub qs: [i8; 32],
}

/// Q4_K: 256 weights in 8 sub-blocks of 32; sub-block j has a 6-bit scale and a 6-bit min
/// packed in `scales` (see [`get_scale_min_k4`]); weight = d·sc·q − dmin·m, q in 0..16.
/// Nibbles: 32 bytes per 64 weights, low nibbles first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ4_K {
    pub d: Half,
    pub dmin: Half,
    pub scales: [u8; 12],
    pub qs: [u8; 128],
}

/// Q5_K: as Q4_K plus a fifth bit: bit (2·(j/64) + (j%64)/32) of `qh[j % 32]`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ5_K {
    pub d: Half,
    pub dmin: Half,
    pub scales: [u8; 12],
    pub qh: [u8; 32],
    pub qs: [u8; 128],
}

/// Q6_K: 256 weights in 16 sub-blocks of 16 with int8 scales; weight = d·sc·(q − 32),
/// q in 0..64 from 4 low bits in `ql` and 2 high bits in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ6_K {
    pub ql: [u8; 128],
    pub qh: [u8; 64],
    pub scales: [i8; 16],
    pub d: Half,
}

/// Q8_K (activations for K-quants): f32 scale, 256 int8, and the sums of each 16 int8.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct BlockQ8_K {
    pub d: [u8; 4],
    pub qs: [i8; 256],
    pub bsums: [[u8; 2]; 16],
}

impl BlockQ8_K {
    pub fn d(&self) -> f32 {
        f32::from_le_bytes(self.d)
    }

    pub fn bsum(&self, j: usize) -> i16 {
        i16::from_le_bytes(self.bsums[j])
    }
}

const _: () = {
    assert!(std::mem::size_of::<BlockQ4_0>() == 18);
    assert!(std::mem::size_of::<BlockQ4_1>() == 20);
    assert!(std::mem::size_of::<BlockQ5_0>() == 22);
    assert!(std::mem::size_of::<BlockQ5_1>() == 24);
    assert!(std::mem::size_of::<BlockQ8_0>() == 34);
    assert!(std::mem::size_of::<BlockQ8_1>() == 36);
    assert!(std::mem::size_of::<BlockQ4_K>() == 144);
    assert!(std::mem::size_of::<BlockQ5_K>() == 176);
    assert!(std::mem::size_of::<BlockQ6_K>() == 210);
    assert!(std::mem::size_of::<BlockQ8_K>() == 292);
    assert!(std::mem::align_of::<BlockQ4_0>() == 1);
    assert!(std::mem::align_of::<BlockQ4_1>() == 1);
    assert!(std::mem::align_of::<BlockQ5_0>() == 1);
    assert!(std::mem::align_of::<BlockQ5_1>() == 1);
    assert!(std::mem::align_of::<BlockQ8_0>() == 1);
    assert!(std::mem::align_of::<BlockQ8_1>() == 1);
    assert!(std::mem::align_of::<BlockQ4_K>() == 1);
    assert!(std::mem::align_of::<BlockQ5_K>() == 1);
    assert!(std::mem::align_of::<BlockQ6_K>() == 1);
    assert!(std::mem::align_of::<BlockQ8_K>() == 1);
};

/// A ggml block: a [`Pod`] struct of alignment 1 (asserted above for every implementor, and
/// again at compile time by [`as_blocks`] for any `B`).
pub trait Block: Pod {
    /// Elements per block.
    const N: usize;
}

impl Block for BlockQ4_0 {
    const N: usize = QK;
}
impl Block for BlockQ4_1 {
    const N: usize = QK;
}
impl Block for BlockQ5_0 {
    const N: usize = QK;
}
impl Block for BlockQ5_1 {
    const N: usize = QK;
}
impl Block for BlockQ8_0 {
    const N: usize = QK;
}
impl Block for BlockQ8_1 {
    const N: usize = QK;
}
impl Block for BlockQ4_K {
    const N: usize = QK_K;
}
impl Block for BlockQ5_K {
    const N: usize = QK_K;
}
impl Block for BlockQ6_K {
    const N: usize = QK_K;
}
impl Block for BlockQ8_K {
    const N: usize = QK_K;
}

/// Panics unless `len` bytes are a whole number of `B` blocks; `B`'s alignment must be 1 (a
/// compile-time error otherwise), so a view never depends on where `bytes` starts.
fn check_len<B: Block>(len: usize) {
    const { assert!(align_of::<B>() == 1, "a Block must have alignment 1") };
    let size = std::mem::size_of::<B>();
    assert!(
        len.is_multiple_of(size),
        "{len} bytes is not a whole number of {size}-byte blocks"
    );
}

/// View `bytes` (at any address) as blocks. Panics if the length is not a whole number of
/// blocks.
pub fn as_blocks<B: Block>(bytes: &[u8]) -> &[B] {
    check_len::<B>(bytes.len());
    bytemuck::cast_slice(bytes)
}

/// Mutable view of `bytes` (at any address) as blocks. Panics if the length is not a whole
/// number of blocks.
pub fn as_blocks_mut<B: Block>(bytes: &mut [u8]) -> &mut [B] {
    check_len::<B>(bytes.len());
    bytemuck::cast_slice_mut(bytes)
}

/// The 6-bit scale and min of sub-block `j` (0..8) of a Q4_K / Q5_K block (ggml's
/// `get_scale_min_k4`): bytes 0..4 hold scales 0..4, bytes 4..8 mins 0..4 (low 6 bits each);
/// scales/mins 4..8 take their low 4 bits from bytes 8..12 and their top 2 bits from the
/// top bits of bytes 0..8.
#[inline]
pub fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// All 8 scales and 8 mins of a Q4_K / Q5_K block at once (same values as
/// [`get_scale_min_k4`] for j = 0..8), with 32-bit word operations.
#[inline]
pub fn unpack_scales_mins_k4(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3f3f_3f3f;
    const LOW4: u32 = 0x0f0f_0f0f;
    const LOW2: u32 = 0x0303_0303;
    let w0 = u32::from_le_bytes([q[0], q[1], q[2], q[3]]);
    let w1 = u32::from_le_bytes([q[4], q[5], q[6], q[7]]);
    let w2 = u32::from_le_bytes([q[8], q[9], q[10], q[11]]);
    let sc_lo = w0 & LOW6;
    let sc_hi = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
    let m_lo = w1 & LOW6;
    let m_hi = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
    let mut sc = [0u8; 8];
    let mut m = [0u8; 8];
    sc[..4].copy_from_slice(&sc_lo.to_le_bytes());
    sc[4..].copy_from_slice(&sc_hi.to_le_bytes());
    m[..4].copy_from_slice(&m_lo.to_le_bytes());
    m[4..].copy_from_slice(&m_hi.to_le_bytes());
    (sc, m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every block type viewed from slices starting at offsets 0..4 of a buffer: the view
    /// aliases the bytes in place, block i being bytes i·size..(i+1)·size.
    fn view_at_offsets<B: Block>() {
        let size = std::mem::size_of::<B>();
        let buf: Vec<u8> = (0..5 * size + 4).map(|i| (i * 37 + 11) as u8).collect();
        for off in 0..4 {
            let bytes = &buf[off..off + 5 * size];
            let view = as_blocks::<B>(bytes);
            assert_eq!(view.len(), 5);
            assert_eq!(view.as_ptr().cast::<u8>(), bytes.as_ptr());
            for (b, chunk) in view.iter().zip(bytes.chunks_exact(size)) {
                assert_eq!(bytemuck::bytes_of(b), chunk, "offset {off}");
            }
        }
    }

    #[test]
    fn views_at_any_offset() {
        view_at_offsets::<BlockQ4_0>();
        view_at_offsets::<BlockQ4_1>();
        view_at_offsets::<BlockQ5_0>();
        view_at_offsets::<BlockQ5_1>();
        view_at_offsets::<BlockQ8_0>();
        view_at_offsets::<BlockQ8_1>();
        view_at_offsets::<BlockQ4_K>();
        view_at_offsets::<BlockQ5_K>();
        view_at_offsets::<BlockQ6_K>();
        view_at_offsets::<BlockQ8_K>();
    }

    #[test]
    fn fields_decode_at_an_odd_offset() {
        let buf: Vec<u8> = (0..1 + 2 * 292).map(|i| (i * 7 + 3) as u8).collect();
        let bytes = &buf[1..];
        let q8k = &as_blocks::<BlockQ8_K>(bytes)[1];
        let at = |i: usize| bytes[292 + i];
        assert_eq!(q8k.d(), f32::from_le_bytes([at(0), at(1), at(2), at(3)]));
        assert_eq!(q8k.qs[255], at(4 + 255) as i8);
        assert_eq!(q8k.bsum(15), i16::from_le_bytes([at(290), at(291)]));
        let q4 = &as_blocks::<BlockQ4_0>(&bytes[..2 * 18])[1];
        assert_eq!(q4.d.bits(), u16::from_le_bytes([bytes[18], bytes[19]]));
    }

    #[test]
    fn mutable_view_at_an_odd_offset_writes_in_place() {
        let mut buf = vec![0u8; 1 + 2 * 34];
        let blocks = as_blocks_mut::<BlockQ8_0>(&mut buf[1..]);
        blocks[1].d = Half::from_f32(1.0);
        blocks[1].qs[31] = -1;
        let mut expected = vec![0u8; 1 + 2 * 34];
        expected[1 + 34..1 + 36].copy_from_slice(&Half::from_f32(1.0).0);
        expected[1 + 67] = 0xff;
        assert_eq!(buf, expected);
    }

    #[test]
    #[should_panic(expected = "35 bytes is not a whole number of 34-byte blocks")]
    fn partial_block_panics() {
        as_blocks::<BlockQ8_0>(&[0u8; 35]);
    }

    #[test]
    fn unpacked_scales_match_get_scale_min_k4() {
        let mut q = [0u8; 12];
        for seed in 0u32..500 {
            for (i, b) in q.iter_mut().enumerate() {
                *b = (seed.wrapping_mul(2_654_435_761).rotate_left(i as u32 * 3) >> 7) as u8;
            }
            let (sc, m) = unpack_scales_mins_k4(&q);
            for j in 0..8 {
                assert_eq!((sc[j], m[j]), get_scale_min_k4(j, &q), "j={j} q={q:?}");
            }
        }
    }
}
