//! aarch64 kernels (NEON, NEON + dotprod).
// placeholder until the NEON kernels land: both tables are the scalar one unchanged.

use crate::dispatch::Kernels;

/// The NEON table: `base` with the kernels NEON speeds up replaced.
pub(crate) fn neon_kernels(base: Kernels) -> Kernels {
    base
}

/// The NEON + dotprod table: `base` (the NEON table) with the SDOT kernels replaced.
pub(crate) fn dotprod_kernels(base: Kernels) -> Kernels {
    base
}
