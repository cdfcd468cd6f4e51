//! Event codes to their enums by index. tracer-common's `Probe::from_u8` and
//! `OpKind::from_u32` search `ALL` and, without LTO, are calls across crates: the diff asks
//! several times per event (its profile showed them). Both `ALL`s are in code order from 1.
use tracer_common::{OpKind, Probe};

/// The probe with code `code`, as `Probe::from_u8`.
#[inline]
pub(crate) fn probe_of(code: u8) -> Option<Probe> {
    Probe::ALL
        .get((code as usize).wrapping_sub(1))
        .copied()
        .filter(|p| *p as u8 == code)
}

/// The operation kind with code `code`, as `OpKind::from_u32`.
#[inline]
pub(crate) fn op_of(code: u32) -> Option<OpKind> {
    OpKind::ALL
        .get((code as usize).wrapping_sub(1))
        .copied()
        .filter(|k| *k as u32 == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_as_tracer_common_does() {
        for c in 0..=u8::MAX {
            assert_eq!(probe_of(c), Probe::from_u8(c), "probe code {c}");
        }
        for c in (0..=1024).chain([u32::MAX - 1, u32::MAX]) {
            assert_eq!(op_of(c), OpKind::from_u32(c), "operation code {c}");
        }
        // The test means something only if codes decode at all.
        assert_eq!(probe_of(Probe::Op as u8), Some(Probe::Op));
        assert_eq!(op_of(OpKind::Exchange as u32), Some(OpKind::Exchange));
    }
}
