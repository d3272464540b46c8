//! Helpers shared by the benches.

use ouro_simd::GgmlType;

/// Random bytes with every f16 scale set to a small finite value (valid blocks).
pub fn weights(ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let n = rows * ty.row_bytes(cols as u64).unwrap() as usize;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut w: Vec<u8> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let scale = 0x2E66u16.to_le_bytes(); // 0.1 in f16
    let fields: &[usize] = match ty {
        GgmlType::Q4_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        _ => unreachable!("benchmarked types only"),
    };
    for blk in w.chunks_exact_mut(ty.type_size()) {
        for &o in fields {
            blk[o..o + 2].copy_from_slice(&scale);
        }
    }
    w
}
