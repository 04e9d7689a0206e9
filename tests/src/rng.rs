//! A tiny seeded PRNG (SplitMix64) for randomised tests: the same seed replays the same
//! choices, so a failure found with one seed can be reproduced with it. Not for cryptography.

/// SplitMix64: one `u64` of state, good enough statistics for picking faults and delays.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0). The modulo bias is irrelevant at test sizes.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo))
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// An index into a slice of length `len` (which must not be empty).
    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "cannot pick from nothing");
        self.below(len as u64) as usize
    }

    /// Fisher–Yates, in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

/// The seeds a randomised test runs with: the one in the environment variable `var` when it
/// is set (to replay a failure), else `defaults` (fixed, so CI runs are reproducible).
pub fn seeds(var: &str, defaults: &[u64]) -> Vec<u64> {
    match std::env::var(var) {
        Ok(text) if !text.trim().is_empty() => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            vec![parsed.unwrap_or_else(|e| panic!("{var}={text:?} is not a u64 seed: {e}"))]
        }
        _ => defaults.to_vec(),
    }
}

/// Prints how to replay a seed when the test using it panics (dropped while unwinding).
#[derive(Debug)]
pub struct SeedGuard {
    var: &'static str,
    seed: u64,
}

impl SeedGuard {
    pub fn new(var: &'static str, seed: u64) -> SeedGuard {
        eprintln!("[e2e] seed {seed} (replay with {var}={seed})");
        SeedGuard { var, seed }
    }
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "[e2e] FAILED with seed {seed}; replay with {var}={seed}",
                seed = self.seed,
                var = self.var
            );
        }
    }
}
