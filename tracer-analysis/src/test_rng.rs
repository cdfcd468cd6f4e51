//! The unit tests' random numbers: one xorshift64 generator, so a test's sequence is fixed by
//! its seed and the same on every machine.

/// A generator from `state` (non-zero): each call steps it and returns it modulo `n`.
pub(crate) fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}
