//! The seeded sample of buyers that training (`--sample-buyers`) and the promise check
//! draw: by a hash of the buyer id, so a buyer is in or out whatever way the history
//! is split into parts.

/// A seeded 64-bit mix of a buyer id (SplitMix64's finaliser): uniform, and the same
/// for a buyer however the history is split.
pub fn sample_key(buyer: u64, seed: u64) -> u64 {
    let mut z = buyer ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
