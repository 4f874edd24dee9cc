//! Walker's alias method (Vose's construction): O(n) set-up, O(1) draws from any discrete distribution.

use rand::Rng;

/// One column: draw it when 32 random bits fall below `keep`, else its alias. Kept together so a draw
/// touches one cache line.
#[derive(Debug, Clone, Copy)]
struct Column {
    keep: u32,
    alias: u32,
}

#[derive(Debug, Clone)]
pub struct AliasTable {
    columns: Vec<Column>,
    /// Lemire's rejection bound for an unbiased column from 32 random bits: (2³² − n) mod n.
    reject_below: u32,
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
        // A column kept with probability 1 is its own alias, so rounding its threshold is harmless.
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
        let columns = keep
            .iter()
            .zip(&alias)
            .map(|(&p, &a)| Column {
                keep: (p * 4_294_967_296.0).min(u32::MAX as f64) as u32,
                alias: a,
            })
            .collect();
        Some(AliasTable {
            columns,
            reject_below: (n as u32).wrapping_neg() % n as u32,
        })
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// One draw from one 64-bit random number (almost always): the high 32 bits pick a column without
    /// bias (Lemire's multiply-shift with rejection), the low 32 bits decide column or alias.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let n = self.columns.len() as u64;
        loop {
            let r = rng.next_u64();
            let m = (r >> 32) * n;
            if (m as u32) < self.reject_below {
                continue;
            }
            let column = self.columns[(m >> 32) as usize];
            return if (r as u32) < column.keep {
                (m >> 32) as u32
            } else {
                column.alias
            };
        }
    }

    /// The probability the table draws `i` with (for tests and logQ corrections).
    pub fn probability(&self, i: usize) -> f64 {
        let n = self.columns.len() as f64;
        let keep = |c: &Column| c.keep as f64 / 4_294_967_296.0;
        let mut p = keep(&self.columns[i]) / n;
        for (j, c) in self.columns.iter().enumerate() {
            if c.alias as usize == i && j != i {
                p += (1.0 - keep(c)) / n;
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
            assert!((t.probability(i) - wi / 10.0).abs() < 1e-9, "item {i}");
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
