//! Gumbel noise in bulk, for drawing without replacement by Gumbel-top-k: the k largest of
//! log wᵢ + Gᵢ (Gᵢ standard Gumbel) are a draw of k items without replacement with probability ∝ wᵢ.
//! The logarithms are a polynomial written over slices so the compiler vectorises them; library `ln`
//! calls would cost more than everything else in a cache refresh. Keys travel with their ids packed in
//! one u64 that orders like the key, so choosing the k largest compares integers.

use rand::RngCore;

/// Adds a standard Gumbel draw, −ln(−ln u) with u uniform in (0, 1), to each of `keys`; `scratch` is
/// reused between calls.
pub(crate) fn add_gumbel(keys: &mut [f32], rng: &mut impl RngCore, scratch: &mut Vec<f32>) {
    scratch.clear();
    // 24 random bits per draw, centred in their interval: u is never 0 or 1.
    scratch.extend((0..keys.len()).map(|_| ((rng.next_u32() >> 8) as f32 + 0.5) / 16_777_216.0));
    ln_in_place(scratch);
    scratch.iter_mut().for_each(|x| *x = -*x);
    ln_in_place(scratch);
    for (k, g) in keys.iter_mut().zip(scratch.iter()) {
        *k -= g;
    }
}

/// ln x for positive normal floats, to within 1e-6 · max(1, |ln x|).
pub(crate) fn ln_in_place(xs: &mut [f32]) {
    const SQRT_HALF_BITS: i32 = 0x3f35_04f3;
    for x in xs.iter_mut() {
        // x = m · 2^e with m in [√½, √2); then ln m = 2 atanh(t), t = (m − 1) / (m + 1), |t| < 0.172.
        let bits = x.to_bits() as i32;
        let e = bits.wrapping_sub(SQRT_HALF_BITS) >> 23;
        let m = f32::from_bits(bits.wrapping_sub(e << 23) as u32);
        let t = (m - 1.0) / (m + 1.0);
        let t2 = t * t;
        let series =
            2.0 + t2 * (2.0 / 3.0 + t2 * (2.0 / 5.0 + t2 * (2.0 / 7.0 + t2 * (2.0 / 9.0))));
        *x = e as f32 * std::f32::consts::LN_2 + t * series;
    }
}

/// The `n` largest of `keys` (all of them if there are no more than `n`), in no particular order.
pub(crate) fn largest(keys: &mut [u64], n: usize) -> &[u64] {
    if keys.len() <= n {
        return keys;
    }
    let cut = keys.len() - n;
    keys.select_nth_unstable(cut);
    &keys[cut..]
}

/// The bits of `s` as a u32 that sorts like `f32::total_cmp`.
pub(crate) fn ordered_bits(s: f32) -> u32 {
    let b = s.to_bits();
    if b >> 31 == 1 {
        !b
    } else {
        b | 1 << 31
    }
}

/// `key` and `id` in one u64 that sorts like the key.
pub(crate) fn pack(key: f32, id: u32) -> u64 {
    (ordered_bits(key) as u64) << 32 | id as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn ordered_bits_sort_like_the_scores() {
        let scores = [-f32::INFINITY, -3.5, -0.0, 0.0, 1e-30, 2.0, f32::INFINITY];
        for pair in scores.windows(2) {
            assert!(ordered_bits(pair[0]) < ordered_bits(pair[1]), "{pair:?}");
        }
    }

    #[test]
    fn ln_matches_the_library_across_the_range() {
        let mut xs: Vec<f32> = (-120..120).map(|p| 1.37f32 * 2f32.powi(p)).collect();
        xs.extend((1..10_000).map(|i| i as f32 / 10_000.0));
        xs.extend([
            f32::MIN_POSITIVE,
            1.0,
            std::f32::consts::FRAC_1_SQRT_2,
            std::f32::consts::SQRT_2,
            17.3,
            1e30,
        ]);
        let mut ln = xs.clone();
        ln_in_place(&mut ln);
        for (&x, &l) in xs.iter().zip(&ln) {
            let exact = (x as f64).ln();
            assert!(
                (l as f64 - exact).abs() <= 1e-6 * exact.abs().max(1.0),
                "ln {x} = {l}, exact {exact}"
            );
        }
    }

    #[test]
    fn gumbel_noise_has_the_gumbel_mean_and_variance() {
        // Standard Gumbel: mean γ = 0.5772, variance π²/6 = 1.6449.
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(3);
        let mut keys = vec![0f32; 200_000];
        add_gumbel(&mut keys, &mut rng, &mut Vec::new());
        let n = keys.len() as f64;
        let mean = keys.iter().map(|&g| g as f64).sum::<f64>() / n;
        let var = keys.iter().map(|&g| (g as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!((mean - 0.5772).abs() < 0.01, "mean {mean}");
        assert!((var - 1.6449).abs() < 0.03, "variance {var}");
    }
}
