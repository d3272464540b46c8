//! The KV cache: one slot per (loop, layer) at index `loop · n_layers + layer`, holding the
//! rotated keys and the values of every cached position. Memory grows with the tokens actually
//! stored; the session bounds it by its context size.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::tensor::KvRows;

/// Element type of the cached keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvType {
    F32,
    #[default]
    F16,
    /// ggml Q8_0 blocks (32 values, one f16 scale): 1.06 bytes per value, rows of a multiple
    /// of 32 values.
    Q8_0,
}

#[derive(Clone, Debug)]
enum Buf {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Q8_0 blocks, 34 bytes per 32 values.
    Q8_0(Vec<u8>),
}

/// Bytes of one Q8_0 block of 32 values.
const Q8_0_BLOCK: usize = 34;

impl Buf {
    fn new(ty: KvType) -> Buf {
        match ty {
            KvType::F32 => Buf::F32(Vec::new()),
            KvType::F16 => Buf::F16(Vec::new()),
            KvType::Q8_0 => Buf::Q8_0(Vec::new()),
        }
    }

    /// Values stored.
    fn len(&self) -> usize {
        match self {
            Buf::F32(v) => v.len(),
            Buf::F16(v) => v.len(),
            Buf::Q8_0(v) => v.len() / Q8_0_BLOCK * 32,
        }
    }

    fn push(&mut self, x: &[f32]) {
        match self {
            Buf::F32(v) => v.extend_from_slice(x),
            Buf::F16(v) => {
                // Bulk conversion: F16C eight lanes at a time where the CPU has it (half
                // detects it at run time); same rounding as the element-wise conversion.
                let start = v.len();
                v.resize(start + x.len(), f16::ZERO);
                v[start..].convert_from_f32_slice(x);
            }
            Buf::Q8_0(v) => {
                // Rows are whole blocks (checked when the session starts).
                debug_assert_eq!(x.len() % 32, 0);
                let start = v.len();
                v.resize(start + x.len() / 32 * Q8_0_BLOCK, 0);
                ouro_simd::quantize_row(ouro_simd::GgmlType::Q8_0, x, &mut v[start..]);
            }
        }
    }

    /// Values `start…start + out.len()` as f32 (`start` and the length whole blocks for Q8_0).
    fn read(&self, start: usize, out: &mut [f32]) {
        match self {
            Buf::F32(v) => out.copy_from_slice(&v[start..start + out.len()]),
            Buf::F16(v) => v[start..start + out.len()].convert_to_f32_slice(out),
            Buf::Q8_0(v) => {
                let (b0, nb) = (start / 32, out.len() / 32);
                let bytes = &v[b0 * Q8_0_BLOCK..(b0 + nb) * Q8_0_BLOCK];
                ouro_simd::dequantize_row(ouro_simd::GgmlType::Q8_0, bytes, out);
            }
        }
    }

    fn rows(&self) -> KvRows<'_> {
        match self {
            Buf::F32(v) => KvRows::F32(v),
            Buf::F16(v) => KvRows::F16(v),
            Buf::Q8_0(v) => KvRows::Q8_0(v),
        }
    }

    /// Keep the first `n` values.
    fn truncate(&mut self, n: usize) {
        match self {
            Buf::F32(v) => v.truncate(n),
            Buf::F16(v) => v.truncate(n),
            Buf::Q8_0(v) => v.truncate(n / 32 * Q8_0_BLOCK),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Buf::F32(v) => v.len() * 4,
            Buf::F16(v) => v.len() * 2,
            Buf::Q8_0(v) => v.len(),
        }
    }
}

/// Keys and values of one (loop, layer) slot, `[positions × kv_dim]` each.
#[derive(Clone, Debug)]
struct Slot {
    k: Buf,
    v: Buf,
}

/// The per-(loop, layer) cache of a session.
#[derive(Debug)]
pub struct KvCache {
    ty: KvType,
    n_layers: usize,
    kv_dim: usize,
    /// `n_loop_slots × n_layers` slots.
    slots: Vec<Slot>,
    /// Positions committed in every slot.
    n_tokens: usize,
}

impl KvCache {
    pub fn new(ty: KvType, n_loop_slots: usize, n_layers: usize, kv_dim: usize) -> Self {
        let slot = Slot {
            k: Buf::new(ty),
            v: Buf::new(ty),
        };
        KvCache {
            ty,
            n_layers,
            kv_dim,
            slots: vec![slot; n_loop_slots * n_layers],
            n_tokens: 0,
        }
    }

    pub fn kv_type(&self) -> KvType {
        self.ty
    }

    /// Positions stored (committed) in every slot.
    pub fn n_tokens(&self) -> usize {
        self.n_tokens
    }

    /// Loops that have their own slots.
    pub fn n_loop_slots(&self) -> usize {
        self.slots.len() / self.n_layers
    }

    /// Grow to `n` loop slots; new loops start as copies of the last existing loop, the same
    /// policy as for skipped loops.
    pub fn ensure_loop_slots(&mut self, n: usize) {
        let have = self.n_loop_slots();
        if n <= have {
            return;
        }
        let last: Vec<Slot> = self.slots[(have - 1) * self.n_layers..].to_vec();
        for _ in have..n {
            self.slots.extend(last.iter().cloned());
        }
    }

    fn slot(&self, lp: usize, layer: usize) -> &Slot {
        &self.slots[lp * self.n_layers + layer]
    }

    /// Append `k` and `v` rows (`[n × kv_dim]`) to slot (lp, layer).
    pub fn append(&mut self, lp: usize, layer: usize, k: &[f32], v: &[f32]) {
        debug_assert_eq!(k.len() % self.kv_dim, 0);
        let s = &mut self.slots[lp * self.n_layers + layer];
        s.k.push(k);
        s.v.push(v);
    }

    /// Read position `pos` of slot (lp, layer) into `k` and `v` (`[kv_dim]` each).
    pub fn read(&self, lp: usize, layer: usize, pos: usize, k: &mut [f32], v: &mut [f32]) {
        let s = self.slot(lp, layer);
        s.k.read(pos * self.kv_dim, k);
        s.v.read(pos * self.kv_dim, v);
    }

    /// Positions currently stored in slot (lp, layer), committed or not.
    pub fn slot_len(&self, lp: usize, layer: usize) -> usize {
        self.slot(lp, layer).k.len() / self.kv_dim
    }

    /// Every cached key of slot (lp, layer), `[positions × kv_dim]`, in the cache's element type.
    pub fn rows_k(&self, lp: usize, layer: usize) -> KvRows<'_> {
        self.slot(lp, layer).k.rows()
    }

    /// Every cached value of slot (lp, layer).
    pub fn rows_v(&self, lp: usize, layer: usize) -> KvRows<'_> {
        self.slot(lp, layer).v.rows()
    }

    /// Mark every slot as holding `n` positions (after a batch appended to all of them).
    pub fn commit(&mut self, n: usize) {
        debug_assert!(self
            .slots
            .iter()
            .all(|s| s.k.len() == n * self.kv_dim && s.v.len() == n * self.kv_dim));
        self.n_tokens = n;
    }

    /// Keep only the first `n` positions.
    pub fn truncate(&mut self, n: usize) {
        let keep = n * self.kv_dim;
        for s in &mut self.slots {
            s.k.truncate(keep);
            s.v.truncate(keep);
        }
        self.n_tokens = self.n_tokens.min(n);
    }

    /// Bytes of keys and values stored.
    pub fn bytes(&self) -> usize {
        self.slots.iter().map(|s| s.k.bytes() + s.v.bytes()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_grow_truncate_and_copy() {
        let mut c = KvCache::new(KvType::F16, 2, 3, 4);
        assert_eq!(c.bytes(), 0);
        for lp in 0..2 {
            for l in 0..3 {
                let x: Vec<f32> = (0..8).map(|i| (lp * 100 + l * 10 + i) as f32).collect();
                c.append(lp, l, &x, &x);
            }
        }
        c.commit(2);
        assert_eq!(c.n_tokens(), 2);
        assert_eq!(c.bytes(), 2 * 3 * 2 * 8 * 2);
        let (mut k, mut v) = (vec![0.0; 4], vec![0.0; 4]);
        c.read(1, 2, 1, &mut k, &mut v);
        assert_eq!(k, vec![124.0, 125.0, 126.0, 127.0]);
        c.ensure_loop_slots(3);
        c.read(2, 2, 1, &mut k, &mut v);
        assert_eq!(v, vec![124.0, 125.0, 126.0, 127.0]);
        c.truncate(1);
        assert_eq!(c.slot_len(2, 0), 1);
        assert_eq!(c.n_tokens(), 1);
    }
}
