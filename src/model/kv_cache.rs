//! The KV cache: one slot per (loop, layer) at index `loop · n_layers + layer`, holding the
//! rotated keys and the values of every cached position. Memory grows with the tokens actually
//! stored; the session bounds it by its context size.

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::tensor::{KvRows, KvView};

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
    /// Positions committed.
    n_tokens: usize,
    /// Last-loop KV sharing (`--kv-share last`): one plane per layer holding, for the decoded
    /// positions `share_start…`, the K/V of the last loop each token computed; every loop
    /// reads them there. The slots hold only positions `…share_start`.
    shared: Option<Vec<Slot>>,
    share_start: usize,
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
            shared: None,
            share_start: 0,
        }
    }

    /// Turn last-loop KV sharing for single decoded tokens on.
    pub fn enable_sharing(&mut self) {
        if self.shared.is_none() {
            let empty = Slot {
                k: Buf::new(self.ty),
                v: Buf::new(self.ty),
            };
            self.shared = Some(vec![empty; self.n_layers]);
            self.share_start = self.n_tokens;
        }
    }

    /// Whether positions `n_tokens…` may go to the shared plane.
    pub fn sharing(&self) -> bool {
        self.shared.is_some()
    }

    /// Positions in the shared plane.
    fn n_shared(&self) -> usize {
        self.n_tokens - self.share_start
    }

    /// Before a batch that needs every loop's slots (a prefill after decoded tokens): copy the
    /// shared rows into every slot (each loop then holds the last loop's K/V, which is what
    /// it read) and empty the plane.
    pub fn unshare(&mut self) {
        let n_shared = self.n_shared();
        let Some(planes) = self.shared.as_mut() else {
            return;
        };
        if n_shared > 0 {
            let mut k = vec![0.0f32; n_shared * self.kv_dim];
            let mut v = vec![0.0f32; n_shared * self.kv_dim];
            for (l, plane) in planes.iter_mut().enumerate() {
                plane.k.read(0, &mut k);
                plane.v.read(0, &mut v);
                for s in self.slots.iter_mut().skip(l).step_by(self.n_layers) {
                    s.k.push(&k);
                    s.v.push(&v);
                }
                plane.k.truncate(0);
                plane.v.truncate(0);
            }
        }
        self.share_start = self.n_tokens;
    }

    /// Write the K/V row of position `pos` (= `n_tokens`, one decoded token) to layer `layer`'s
    /// shared plane, replacing the row an earlier loop of the same token wrote.
    pub fn put_shared(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let start = self.share_start;
        let kv_dim = self.kv_dim;
        let plane = &mut self.shared.as_mut().expect("sharing is on")[layer];
        let row = pos - start;
        debug_assert!(row * kv_dim <= plane.k.len() && plane.k.len() <= (row + 1) * kv_dim);
        plane.k.truncate(row * kv_dim);
        plane.v.truncate(row * kv_dim);
        plane.k.push(k);
        plane.v.push(v);
    }

    /// What attention reads in slot (lp, layer): the slot's rows, then the shared plane's.
    pub fn view_k(&self, lp: usize, layer: usize) -> KvView<'_> {
        self.view(lp, layer, |s| &s.k)
    }

    /// The values counterpart of [`KvCache::view_k`].
    pub fn view_v(&self, lp: usize, layer: usize) -> KvView<'_> {
        self.view(lp, layer, |s| &s.v)
    }

    fn view<'s>(
        &'s self,
        lp: usize,
        layer: usize,
        side: impl Fn(&'s Slot) -> &'s Buf,
    ) -> KvView<'s> {
        let own = side(self.slot(lp, layer)).rows();
        match &self.shared {
            // An empty plane: a batch is reading the rows it appended to the slots.
            Some(planes) if planes[layer].k.len() > 0 => KvView::split(
                own,
                self.share_start * self.kv_dim,
                side(&planes[layer]).rows(),
            ),
            _ => own.into(),
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

    /// Mark the cache as holding `n` positions (after a batch appended to every slot, or one
    /// decoded token written to the shared planes).
    pub fn commit(&mut self, n: usize) {
        if let Some(planes) = &self.shared {
            if planes[0].k.len() == 0 {
                // The batch went to the slots: the shared plane starts after it.
                self.share_start = n;
            }
        }
        let in_slots = if self.shared.is_some() {
            self.share_start
        } else {
            n
        };
        debug_assert!(self
            .slots
            .iter()
            .all(|s| s.k.len() == in_slots * self.kv_dim && s.v.len() == in_slots * self.kv_dim));
        debug_assert!(self
            .shared
            .iter()
            .flatten()
            .all(|s| s.k.len() == (n - self.share_start) * self.kv_dim));
        self.n_tokens = n;
    }

    /// Keep only the first `n` positions.
    pub fn truncate(&mut self, n: usize) {
        let in_slots = if self.shared.is_some() {
            n.min(self.share_start)
        } else {
            n
        };
        for s in &mut self.slots {
            s.k.truncate(in_slots * self.kv_dim);
            s.v.truncate(in_slots * self.kv_dim);
        }
        if let Some(planes) = self.shared.as_mut() {
            let keep = n.saturating_sub(self.share_start) * self.kv_dim;
            for s in planes.iter_mut() {
                s.k.truncate(keep);
                s.v.truncate(keep);
            }
            self.share_start = self.share_start.min(n);
        }
        self.n_tokens = self.n_tokens.min(n);
    }

    /// Bytes of keys and values stored.
    pub fn bytes(&self) -> usize {
        let planes = self.shared.iter().flatten();
        self.slots
            .iter()
            .chain(planes)
            .map(|s| s.k.bytes() + s.v.bytes())
            .sum()
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

    /// Values of position `pos` in a view, as f32 (test helper: one dot with unit vectors).
    fn view_row(view: KvView<'_>, pos: usize, kv_dim: usize) -> Vec<f32> {
        let kern = ouro_simd::kernels();
        (0..kv_dim)
            .map(|i| {
                let mut e = vec![0.0f32; kv_dim];
                e[i] = 1.0;
                view.dot(kern, pos * kv_dim, &e)
            })
            .collect()
    }

    #[test]
    fn shared_plane_keeps_the_last_loop_and_unshares_into_every_slot() {
        let mut c = KvCache::new(KvType::F32, 2, 1, 4);
        let row = |x: f32| vec![x, x + 1.0, x + 2.0, x + 3.0];
        for lp in 0..2 {
            let batch: Vec<f32> = [row(lp as f32 * 10.0), row(lp as f32 * 10.0 + 4.0)].concat();
            c.append(lp, 0, &batch, &batch);
        }
        c.commit(2);
        let prompt_bytes = c.bytes();
        c.enable_sharing();
        // One decoded token: loop 0 writes its row, loop 1 replaces it.
        c.put_shared(0, 2, &row(100.0), &row(100.0));
        c.put_shared(0, 2, &row(200.0), &row(200.0));
        c.commit(3);
        assert_eq!(
            c.bytes(),
            prompt_bytes + 2 * 4 * 4,
            "one row of K and V, not one per loop"
        );
        for lp in 0..2 {
            assert_eq!(
                view_row(c.view_k(lp, 0), 2, 4),
                row(200.0),
                "loop {lp} reads the shared row"
            );
            assert_eq!(view_row(c.view_k(lp, 0), 1, 4), row(lp as f32 * 10.0 + 4.0));
        }
        // A prompt batch next needs every loop's slot: the shared row is copied into each.
        c.unshare();
        for lp in 0..2 {
            assert_eq!(c.slot_len(lp, 0), 3);
            assert_eq!(view_row(c.view_k(lp, 0), 2, 4), row(200.0));
        }
        c.truncate(2);
        assert_eq!(c.bytes(), prompt_bytes);
        // Truncating inside the shared part keeps the slots.
        c.put_shared(0, 2, &row(300.0), &row(300.0));
        c.commit(3);
        c.truncate(2);
        assert_eq!((c.n_tokens(), c.bytes()), (2, prompt_bytes));
    }
}
