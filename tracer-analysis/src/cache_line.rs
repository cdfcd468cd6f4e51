//! The line of a key in the direct-mapped caches of the diff and the replay.

/// The line of `key` in a table of `1 << bits` lines (Fibonacci hashing): the multiply carries
/// every bit of the key into the top `bits`, which pick the line, so keys that differ only in
/// their low bits (aligned pointers) or high bits (packed ids) spread alike.
#[inline(always)]
pub(crate) fn hash_line(key: u64, bits: u32) -> usize {
    (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}
