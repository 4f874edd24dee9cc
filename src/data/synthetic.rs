//! The embedded synthetic implicit-feedback generator, with ground truth.
//!
//! Users and items get latent factors u, v ~ N(0, I_d) and every item a popularity prior b_i that falls
//! with its (random) Zipf rank: b_i = −skew · (ln(1 + rank_i) − mean). The true affinity is
//! a(u, i) = u·v / √d + b_i. A user's *relevant* items are the top `relevant_fraction` of the pool by
//! affinity; the user interacts with n_u ~ Poisson(`interactions_per_user`) of them (at least 3), drawn
//! without replacement with probability ∝ exp(a(u, i)) (Gumbel top-k), so popular relevant items are
//! observed more often. The relevant sets are kept: every relevant item that is not a training item is
//! an exact false negative.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gumbel, Poisson, StandardNormal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use super::loaders::{RawData, RawSplit, Record};
use super::{split, Dataset, Interactions, QueryItems, SplitConfig};
use crate::error::DataError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    pub users: usize,
    pub items: usize,
    /// Dimension of the generating latent factors.
    pub dim: usize,
    /// Mean number of observed interactions per user (Poisson).
    pub interactions_per_user: f64,
    /// Share of the item pool relevant to each user (the ground truth).
    pub relevant_fraction: f64,
    /// Strength of the popularity prior; 0 = no popularity effect.
    pub popularity_skew: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            users: 1000,
            items: 1000,
            dim: 16,
            interactions_per_user: 30.0,
            relevant_fraction: 0.1,
            popularity_skew: 0.5,
        }
    }
}

impl SyntheticConfig {
    /// Problems with the parameters, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.users < 1 || self.items < 2 {
            p.push((
                "users",
                format!(
                    "need users >= 1 and items >= 2 (got {} and {})",
                    self.users, self.items
                ),
            ));
        }
        if self.dim < 1 {
            p.push(("dim", "must be >= 1".into()));
        }
        if !(self.relevant_fraction > 0.0 && self.relevant_fraction <= 1.0) {
            p.push((
                "relevant_fraction",
                format!("must be in (0, 1] (got {})", self.relevant_fraction),
            ));
        }
        if !(self.interactions_per_user >= 1.0 && self.interactions_per_user.is_finite()) {
            p.push((
                "interactions_per_user",
                format!("must be >= 1 (got {})", self.interactions_per_user),
            ));
        }
        if !self.popularity_skew.is_finite() {
            p.push(("popularity_skew", "must be a finite number".into()));
        }
        p
    }
}

/// Generates the data set and splits it with `split` (default: random 80/20).
pub fn generate(
    name: &str,
    c: &SyntheticConfig,
    split_config: Option<&SplitConfig>,
    seed: u64,
) -> Result<Dataset, DataError> {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let mut normal =
        |n: usize| -> Vec<f32> { (0..n).map(|_| StandardNormal.sample(&mut rng)).collect() };
    let user_f = normal(c.users * c.dim);
    let item_f = normal(c.items * c.dim);

    let mut rank: Vec<usize> = (0..c.items).collect();
    rand::seq::SliceRandom::shuffle(rank.as_mut_slice(), &mut rng);
    let log_rank: Vec<f64> = rank.iter().map(|&r| (1.0 + r as f64).ln()).collect();
    let mean = log_rank.iter().sum::<f64>() / c.items as f64;
    let prior: Vec<f32> = log_rank
        .iter()
        .map(|l| (-c.popularity_skew * (l - mean)) as f32)
        .collect();

    let n_relevant = ((c.relevant_fraction * c.items as f64).ceil() as usize).clamp(1, c.items);
    let scale = 1.0 / (c.dim as f32).sqrt();
    let poisson = Poisson::new(c.interactions_per_user).map_err(|e| DataError::Invalid {
        what: "synthetic data".into(),
        message: e.to_string(),
    })?;
    let gumbel = Gumbel::new(0.0f32, 1.0).expect("valid Gumbel");

    let mut relevant = Interactions::default();
    let mut records = Vec::new();
    let mut affinity = vec![0f32; c.items];
    let mut order: Vec<u32> = Vec::with_capacity(c.items);
    for u in 0..c.users {
        let uf = &user_f[u * c.dim..(u + 1) * c.dim];
        for (i, a) in affinity.iter_mut().enumerate() {
            let vf = &item_f[i * c.dim..(i + 1) * c.dim];
            *a = uf.iter().zip(vf).map(|(x, y)| x * y).sum::<f32>() * scale + prior[i];
        }
        order.clear();
        order.extend(0..c.items as u32);
        order.select_nth_unstable_by(n_relevant - 1, |&a, &b| {
            affinity[b as usize].total_cmp(&affinity[a as usize])
        });
        let rel = &order[..n_relevant];
        for &i in rel {
            relevant.push(u as u32, i);
        }
        let n_u = (poisson.sample(&mut rng) as usize)
            .clamp(3, n_relevant.max(3))
            .min(n_relevant);
        let mut keyed: Vec<(f32, u32)> = rel
            .iter()
            .map(|&i| (affinity[i as usize] + gumbel.sample(&mut rng), i))
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        for &(_, i) in &keyed[..n_u] {
            records.push(Record {
                user: u as u32,
                item: i,
                timestamp: Some(rng.random_range(0..1_000_000)),
            });
        }
    }
    let raw = RawData {
        n_queries: c.users,
        n_items: c.items,
        split: RawSplit::Single(records),
    };
    // The split draws from its own stream, so changing the split leaves the generated data unchanged.
    let mut data = split::apply(
        name,
        raw,
        split_config,
        seed.wrapping_add(0x9E37_79B9_7F4A_7C15),
    )?;
    data.relevant = Some(QueryItems::from_interactions(c.users, &relevant));
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SyntheticConfig {
        SyntheticConfig {
            users: 50,
            items: 200,
            ..Default::default()
        }
    }

    #[test]
    fn observed_items_are_relevant_and_the_ground_truth_is_kept() {
        let d = generate("s", &small(), None, 3).unwrap();
        let rel = d.relevant.as_ref().unwrap();
        assert_eq!(rel.nnz(), 50 * 20, "top 10% of 200 items per user");
        for (u, i) in d
            .train
            .queries
            .iter()
            .zip(&d.train.items)
            .chain(d.test.queries.iter().zip(&d.test.items))
        {
            assert!(rel.contains(*u as usize, *i));
        }
        assert!(!d.test.is_empty() && d.train.len() > 3 * d.test.len());
    }

    #[test]
    fn same_seed_same_data_and_popularity_is_skewed() {
        let a = generate("s", &small(), None, 3).unwrap();
        let b = generate("s", &small(), None, 3).unwrap();
        assert_eq!(a.train, b.train);
        assert_ne!(a.train, generate("s", &small(), None, 4).unwrap().train);
        let skewed = SyntheticConfig {
            popularity_skew: 2.0,
            ..small()
        };
        let mut counts = generate("s", &skewed, None, 3).unwrap().item_counts();
        counts.sort_unstable_by(|x, y| y.cmp(x));
        let top_decile: u64 = counts[..20].iter().sum();
        let total: u64 = counts.iter().sum();
        assert!(
            top_decile as f64 > 0.25 * total as f64,
            "top 10% of items hold {top_decile}/{total}"
        );
    }
}
