//! Walker's alias method (Vose's construction): O(n) set-up, O(1) draws from any discrete distribution.

use rand::Rng;

#[derive(Debug, Clone)]
pub struct AliasTable {
    /// Probability of keeping column i rather than taking its alias, in [0, 1].
    keep: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// A table for P(i) ∝ weights[i]. Weights must be finite, non-negative and not all zero.
    pub fn new(weights: &[f64]) -> Option<AliasTable> {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        if n == 0
            || n > u32::MAX as usize
            || !(total > 0.0 && total.is_finite())
            || weights.iter().any(|w| *w < 0.0)
        {
            return None;
        }
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        let mut keep = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            keep[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers are 1 up to rounding.
        Some(AliasTable { keep, alias })
    }

    pub fn len(&self) -> usize {
        self.keep.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keep.is_empty()
    }

    /// One draw: a column uniformly, then the column or its alias.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let i = rng.random_range(0..self.keep.len() as u32);
        if rng.random::<f64>() < self.keep[i as usize] {
            i
        } else {
            self.alias[i as usize]
        }
    }

    /// The probability the table draws `i` with (for tests and logQ corrections).
    pub fn probability(&self, i: usize) -> f64 {
        let n = self.keep.len() as f64;
        let mut p = self.keep[i] / n;
        for (j, &a) in self.alias.iter().enumerate() {
            if a as usize == i && j != i {
                p += (1.0 - self.keep[j]) / n;
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn probabilities_match_the_weights() {
        let w = [1.0, 0.0, 3.0, 6.0];
        let t = AliasTable::new(&w).unwrap();
        for (i, wi) in w.iter().enumerate() {
            assert!((t.probability(i) - wi / 10.0).abs() < 1e-12, "item {i}");
        }
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(1);
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            counts[t.sample(&mut rng) as usize] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!(
            (counts[3] as f64 / 100_000.0 - 0.6).abs() < 0.01,
            "{counts:?}"
        );
    }

    #[test]
    fn rejects_bad_weights() {
        assert!(AliasTable::new(&[]).is_none());
        assert!(AliasTable::new(&[0.0, 0.0]).is_none());
        assert!(AliasTable::new(&[1.0, f64::INFINITY]).is_none());
        assert!(AliasTable::new(&[1.0, -1.0]).is_none());
    }
}
