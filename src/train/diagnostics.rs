//! Sampler diagnostics, measured on what actually trained during an epoch: every drawn negative counts
//! with the weight it has in the loss (its loss weight, 0 where the validity mask drops it), so a
//! filtering or masking sampler shows its filtering.
//! - `fn_rate`: weighted share of negatives that are held-out positives of the query (validation or test);
//! - `fn_rate_train`: weighted share that are training positives of the query (a sampler that does not
//!   exclude them; for a knowledge graph, corruptions that are training triples);
//! - `fn_rate_known`: weighted share that are known positives from any split (train ∪ valid ∪ test: for a
//!   knowledge graph, corruptions that are known triples);
//! - `fn_rate_true` (synthetic data only): weighted share that the generating model deems relevant to
//!   the query but that are not training positives, i.e. exact false negatives;
//! - `hardness`: weighted mean percentile of the negatives among the query's non-positives in the current
//!   model's ranking (0 = scored below every other non-positive, 1 = above all), on the epoch's first
//!   batch (at most `HARDNESS_ROWS` rows) so it costs little;
//! - `coverage`: share of the pool that entered the loss at least once in the epoch, and
//!   `coverage_vs_uniform`: that share divided by the share a uniform sampler drawing as many negatives
//!   would cover, 1 − (1 − 1/N)^D (raw coverage grows with the number of draws whatever the sampler; the
//!   ratio does not: 1 is as spread as uniform, below 1 concentrated);
//! - `gini`: Gini coefficient of the weighted per-item counts, and `gini_vs_uniform`: `gini` minus the
//!   Gini of a uniform draw of the same size (0 = as even as uniform, above 0 concentrated);
//! - `ns_per_negative`: sampler time per drawn negative (masked slots included: they cost the sampler);
//! - `negatives_per_positive`: negatives that entered the loss per training row (weight > 0), what the
//!   row actually trained on: k for most samplers, up to 2k for PinSage's curriculum, k plus MoCHi's
//!   mixes, B − 1 less the masked ones for in-batch under softmax (the budget tables read it).
//!
//! The time spent here is measured and kept out of the training time.

use std::sync::Arc;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use tch::{Device, Kind, Tensor};

use crate::data::Dataset;
use crate::model::ContrastiveModel;
use crate::sampler::{KnownPositives, Negatives, WideRows};

const HARDNESS_ROWS: i64 = 256;
/// Entries per row from which a row's sets are looked up in marks rather than by binary search.
const WIDE_ROW: usize = 64;
const TRAIN: u8 = 1;
const HELD_OUT: u8 = 2;
const RELEVANT: u8 = 4;

/// Running counts over one epoch.
pub struct Diagnostics {
    /// Loss weight each item received as a negative.
    weight_of_item: Vec<f64>,
    /// Slots drawn (for the time per negative).
    drawn: u64,
    /// Slots that entered the loss (weight > 0).
    effective: u64,
    /// Rows (positives) recorded.
    rows: u64,
    total_weight: f64,
    held_out: f64,
    in_train: f64,
    known: f64,
    true_false: f64,
    hardness: Option<f64>,
    /// Gini of a uniform draw, by (pool, draws): the same every epoch for a fixed-k sampler.
    uniform_gini: Option<((usize, u64), f64)>,
    /// Per-item marks of the current row's query (see `WIDE_ROW`), all zero between rows.
    marks: Vec<u8>,
    /// The pair sets as bitsets where they fit, built on first use.
    bits: Option<Arc<PairBits>>,
}

/// The training, held-out (valid ∪ test) and relevant pairs as bitsets where they fit: one memory access
/// per narrow-row lookup instead of a binary search in each set (text's co-occurrence lists are long).
struct PairBits {
    train: Option<KnownPositives>,
    /// Where the training bitset does not fit: bitsets of its long rows.
    train_wide: WideRows,
    held_out: Option<KnownPositives>,
    relevant: Option<KnownPositives>,
}

impl PairBits {
    fn new(data: &Dataset) -> PairBits {
        let (q, n) = (data.n_queries, data.n_items);
        let train = KnownPositives::bitset(data);
        PairBits {
            train_wide: match train {
                Some(_) => WideRows::default(),
                None => WideRows::of(&data.train_by_query, n),
            },
            train,
            held_out: KnownPositives::bitset_of(&[&data.valid_by_query, &data.test_by_query], q, n),
            relevant: data
                .relevant
                .as_ref()
                .and_then(|r| KnownPositives::bitset_of(&[r], q, n)),
        }
    }

    /// Whether (q, item) is held out, a training pair, and relevant (synthetic data), by the bitsets or
    /// else the data's lists.
    fn lookup(&self, data: &Dataset, q: usize, item: u32) -> (bool, bool, bool) {
        let held_out = match &self.held_out {
            Some(bits) => bits.contains(q, item),
            None => data.valid_by_query.contains(q, item) || data.test_by_query.contains(q, item),
        };
        let in_train = match &self.train {
            Some(bits) => bits.contains(q, item),
            None => self
                .train_wide
                .get(q, item)
                .unwrap_or_else(|| data.train_by_query.contains(q, item)),
        };
        let relevant = match (&self.relevant, &data.relevant) {
            (Some(bits), _) => bits.contains(q, item),
            (None, Some(lists)) => lists.contains(q, item),
            (None, None) => false,
        };
        (held_out, in_train, relevant)
    }
}

impl Diagnostics {
    pub fn new(n_items: usize) -> Diagnostics {
        Diagnostics {
            weight_of_item: vec![0.0; n_items],
            drawn: 0,
            effective: 0,
            rows: 0,
            total_weight: 0.0,
            held_out: 0.0,
            in_train: 0.0,
            known: 0.0,
            true_false: 0.0,
            hardness: None,
            uniform_gini: None,
            marks: vec![0; n_items],
            bits: None,
        }
    }

    /// Counts one batch of negatives for `queries` (B; also on the device as `queries_t`), and measures
    /// hardness on the epoch's first batch. Negatives that are not drawn ids (`full`) are not counted.
    pub fn record(
        &mut self,
        data: &Dataset,
        queries: &[i64],
        negatives: &Negatives,
        model: &dyn ContrastiveModel,
        queries_t: &Tensor,
    ) -> Result<()> {
        let Some(ids) = negatives.drawn_ids() else {
            return Ok(());
        };
        let ids = &ids;
        let weights = loss_weights(negatives, ids)?;
        let flat = Vec::<i64>::try_from(ids.reshape([-1]).to_device(Device::Cpu))?;
        let w = Vec::<f32>::try_from(weights.reshape([-1]).to_device(Device::Cpu))?;
        let k = flat.len() / queries.len().max(1);
        // Wide rows (in-batch or a queue under softmax: thousands of entries) look their query's sets
        // up in a scratch table of marks, set and cleared per row; narrow rows binary-search.
        let wide = k >= WIDE_ROW;
        let bits = Arc::clone(
            self.bits
                .get_or_insert_with(|| Arc::new(PairBits::new(data))),
        );
        for (row, &q) in queries.iter().enumerate() {
            let q = q as usize;
            if wide {
                self.mark(data, q, true);
            }
            for (&i, &wi) in flat[row * k..(row + 1) * k]
                .iter()
                .zip(&w[row * k..(row + 1) * k])
            {
                if wi <= 0.0 {
                    continue;
                }
                let (item, wi) = (i as u32, wi as f64);
                self.weight_of_item[i as usize] += wi;
                self.effective += 1;
                self.total_weight += wi;
                let (held_out, in_train, relevant) = if wide {
                    let m = self.marks[i as usize];
                    (m & HELD_OUT != 0, m & TRAIN != 0, m & RELEVANT != 0)
                } else {
                    bits.lookup(data, q, item)
                };
                if held_out {
                    self.held_out += wi;
                }
                if in_train {
                    self.in_train += wi;
                }
                if held_out || in_train {
                    self.known += wi;
                }
                if relevant && !in_train {
                    self.true_false += wi;
                }
            }
            if wide {
                self.mark(data, q, false);
            }
        }
        self.drawn += flat.len() as u64;
        self.rows += queries.len() as u64;
        if self.hardness.is_none() {
            self.hardness = hardness(data, model, queries, queries_t, ids, &weights)?;
        }
        Ok(())
    }

    /// Sets (or clears) the marks of query `q`'s training, held-out and relevant items.
    fn mark(&mut self, data: &Dataset, q: usize, set: bool) {
        let sets = [
            (&data.train_by_query, TRAIN),
            (&data.valid_by_query, HELD_OUT),
            (&data.test_by_query, HELD_OUT),
        ];
        let relevant = data.relevant.as_ref().map(|r| (r, RELEVANT));
        for (items, bit) in sets.into_iter().chain(relevant) {
            for &i in items.items(q) {
                let m = &mut self.marks[i as usize];
                *m = if set { *m | bit } else { 0 };
            }
        }
    }

    /// The epoch's diagnostics as (metric, value), then counts reset for the next epoch.
    pub fn finish_epoch(
        &mut self,
        data: &Dataset,
        sampling_seconds: f64,
    ) -> Vec<(&'static str, f64)> {
        let n = self.weight_of_item.len();
        let out = if self.drawn == 0 {
            // Nothing was drawn (the non-sampling `full` reference): no draw diagnostics to report.
            Vec::new()
        } else if self.total_weight == 0.0 {
            // Everything drawn was masked out: only the cost is known.
            vec![
                (
                    "ns_per_negative",
                    sampling_seconds * 1e9 / self.drawn as f64,
                ),
                ("negatives_per_positive", 0.0),
            ]
        } else {
            let covered = self.weight_of_item.iter().filter(|&&c| c > 0.0).count() as f64;
            let coverage = covered / n.max(1) as f64;
            let key = (n, self.effective);
            let uniform = match self.uniform_gini {
                Some((k, g)) if k == key => g,
                _ => uniform_draw_gini(n, self.effective),
            };
            self.uniform_gini = Some((key, uniform));
            let gini = gini(&self.weight_of_item);
            let mut out = vec![
                ("fn_rate", self.held_out / self.total_weight),
                ("fn_rate_train", self.in_train / self.total_weight),
                ("fn_rate_known", self.known / self.total_weight),
                ("coverage", coverage),
                (
                    "coverage_vs_uniform",
                    coverage / expected_uniform_coverage(n, self.effective),
                ),
                ("gini", gini),
                ("gini_vs_uniform", gini - uniform),
                (
                    "ns_per_negative",
                    sampling_seconds * 1e9 / self.drawn as f64,
                ),
                (
                    "negatives_per_positive",
                    self.effective as f64 / self.rows.max(1) as f64,
                ),
            ];
            if data.relevant.is_some() {
                out.push(("fn_rate_true", self.true_false / self.total_weight));
            }
            if let Some(h) = self.hardness {
                out.push(("hardness", h));
            }
            out
        };
        let reference = self.uniform_gini.take();
        *self = Diagnostics::new(n);
        self.uniform_gini = reference;
        out
    }
}

/// Each slot's weight in the loss, (B, k) f32: its loss weight (1 when the sampler gives none), 0 where
/// the validity mask drops it.
fn loss_weights(negatives: &Negatives, ids: &Tensor) -> Result<Tensor> {
    let mut w = match &negatives.weights {
        Some(w) => w.to_kind(Kind::Float),
        None => Tensor::ones(ids.size(), (Kind::Float, ids.device())),
    };
    if let Some(valid) = &negatives.valid {
        w *= valid.to_kind(Kind::Float);
    }
    // An attracted slot is trained as a positive: not a negative the sampler gave.
    if let Some(attract) = &negatives.attract {
        w *= attract.logical_not().to_kind(Kind::Float);
    }
    Ok(w.f_clamp_min(0.0)?)
}

/// Weighted mean percentile of the negatives among the query's non-positives, on the first rows.
fn hardness(
    data: &Dataset,
    model: &dyn ContrastiveModel,
    queries: &[i64],
    queries_t: &Tensor,
    ids: &Tensor,
    weights: &Tensor,
) -> Result<Option<f64>> {
    let _no_grad = tch::no_grad_guard();
    let (k, pool) = (ids.size()[1], model.n_items());
    // Compare every negative with the whole pool, on as many rows as keep that to 16M pairs.
    let rows = queries_t.size()[0]
        .min(HARDNESS_ROWS)
        .min((16_000_000 / (k * pool).max(1)).max(1));
    let (q, ids, w) = (
        queries_t.narrow(0, 0, rows),
        ids.narrow(0, 0, rows),
        weights.narrow(0, 0, rows),
    );
    let mut all = model.score_all(&q)?; // (r, N)
    let neg = all.f_gather(1, &ids, false)?; // (r, k)
                                             // The query's training positives are never "below" a negative: they are not in its pool.
    let (mut r_idx, mut c_idx, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for (row, &query) in queries[..rows as usize].iter().enumerate() {
        let known = data.train_by_query.items(query as usize);
        for &i in known {
            r_idx.push(row as i64);
            c_idx.push(i as i64);
        }
        others.push((pool as usize - known.len()).saturating_sub(1).max(1) as f32);
    }
    if !r_idx.is_empty() {
        let device = all.device();
        let index = [
            Some(Tensor::from_slice(&r_idx).to_device(device)),
            Some(Tensor::from_slice(&c_idx).to_device(device)),
        ];
        let inf = Tensor::from(f32::INFINITY).to_device(device);
        let _ = all.f_index_put_(&index, &inf, false)?;
    }
    let below = scored_below(&all, &neg); // (r, k)
    let others = Tensor::from_slice(&others)
        .to_device(below.device())
        .unsqueeze(1);
    let percentile = (below / others).clamp(0.0, 1.0);
    let total = w.sum(Kind::Float).f_double_value(&[])?;
    if total <= 0.0 {
        return Ok(None);
    }
    Ok(Some(
        (percentile * &w).sum(Kind::Float).f_double_value(&[])? / total,
    ))
}

/// For each negative score (r, k), how many of its row's scores `all` (r, N) are strictly below it, as
/// f32 (ties are never below; +inf never is). Wide rows (in-batch or a queue under softmax: k in the
/// hundreds) binary-search each sorted row, O(r (N + k) log N); narrow ones compare all (r, k, N), which
/// is cheaper below about 64 negatives. The counts are the same either way.
fn scored_below(all: &Tensor, neg: &Tensor) -> Tensor {
    if neg.size()[1] < 64 {
        return all
            .unsqueeze(1)
            .lt_tensor(&neg.unsqueeze(2))
            .sum_dim_intlist(2, false, Kind::Float);
    }
    if all.device() == Device::Cpu && all.kind() == Kind::Float && neg.kind() == Kind::Float {
        scored_below_on_host(all, neg)
    } else {
        scored_below_on_device(all, neg)
    }
}

/// `scored_below`'s sorted search in libtorch (an accelerator's path): each row sorted, then searched.
fn scored_below_on_device(all: &Tensor, neg: &Tensor) -> Tensor {
    let (sorted, _) = all.sort(1, false);
    neg.contiguous()
        .searchsorted(&sorted, false, false, "left", None::<Tensor>)
        .to_kind(Kind::Float)
}

/// `scored_below`'s sorted search on the host: each row's scores as integer keys in their order, sorted
/// alone (libtorch's sort carries each value's index along), then a binary search per negative.
fn scored_below_on_host(all: &Tensor, neg: &Tensor) -> Tensor {
    let (rows, n, k) = (
        all.size()[0],
        all.size()[1] as usize,
        neg.size()[1] as usize,
    );
    let all = Vec::<f32>::try_from(all.reshape([-1])).expect("f32 scores");
    let neg = Vec::<f32>::try_from(neg.reshape([-1])).expect("f32 scores");
    let mut keys = vec![0u32; n];
    let mut below = Vec::with_capacity(neg.len());
    for (row, negatives) in all.chunks(n.max(1)).zip(neg.chunks(k.max(1))) {
        for (key, &s) in keys.iter_mut().zip(row) {
            *key = order_key(s);
        }
        keys.sort_unstable();
        for &s in negatives {
            let key = order_key(s);
            below.push(keys.partition_point(|&x| x < key) as f32);
        }
    }
    Tensor::from_slice(&below).view([rows, k as i64])
}

/// A u32 in the order of the f32 `s` (−0 and +0 equal, as they compare; NaN above +∞).
fn order_key(s: f32) -> u32 {
    let bits = (s + 0.0).to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 1 << 31
    }
}

/// Expected share of a pool of `n` items a uniform sampler covers with `draws` draws.
pub fn expected_uniform_coverage(n: usize, draws: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    1.0 - (1.0 - 1.0 / n as f64).powf(draws as f64)
}

/// Gini of the counts of `draws` uniform draws over `n` items, from a fixed stream (a reference, not a
/// result: it does not touch the cell's random streams).
pub fn uniform_draw_gini(n: usize, draws: u64) -> f64 {
    if n < 2 || draws == 0 {
        return 0.0;
    }
    let per_item = draws as f64 / n as f64;
    if per_item > 20.0 {
        // Counts ≈ Poisson(λ), nearly normal: mean absolute difference 2√(λ/π), Gini 1/√(πλ).
        return 1.0 / (std::f64::consts::PI * per_item).sqrt();
    }
    let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(0x6e73_6265_6e63_6800 ^ draws);
    let mut counts = vec![0f64; n];
    for _ in 0..draws {
        counts[rng.random_range(0..n)] += 1.0;
    }
    gini(&counts)
}

/// Gini coefficient of non-negative counts: 0 when all are equal.
pub fn gini(counts: &[f64]) -> f64 {
    let total: f64 = counts.iter().sum();
    let n = counts.len() as f64;
    if total == 0.0 || counts.len() < 2 {
        return 0.0;
    }
    let mut sorted = counts.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let weighted: f64 = sorted
        .iter()
        .enumerate()
        .map(|(i, &c)| (i as f64 + 1.0) * c)
        .sum();
    2.0 * weighted / (n * total) - (n + 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Dataset, Interactions};
    use crate::model::{Mf, MfConfig};

    fn model(users: usize, items: usize) -> (tch::nn::VarStore, Mf) {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let m = Mf::new(
            &vs.root(),
            &MfConfig {
                dim: 8,
                init_std: 1.0,
            },
            users,
            items,
            1,
        );
        (vs, m)
    }

    #[test]
    fn gini_of_equal_and_concentrated_counts() {
        assert_eq!(gini(&[5.0, 5.0, 5.0, 5.0]), 0.0);
        assert!(
            (gini(&[0.0, 0.0, 0.0, 8.0]) - 0.75).abs() < 1e-12,
            "one of n items takes all: (n-1)/n"
        );
    }

    /// One user with training item 0 and test item 1, over 4 items.
    fn one_user() -> Dataset {
        let mut train = Interactions::default();
        train.push(0, 0);
        let mut test = Interactions::default();
        test.push(0, 1);
        Dataset::new("t".into(), 1, 4, train, Interactions::default(), test, None)
    }

    fn diagnose(
        data: &Dataset,
        negatives: &Negatives,
        queries: &[i64],
    ) -> Vec<(&'static str, f64)> {
        let (_vs, m) = model(data.n_queries, data.n_items);
        let mut d = Diagnostics::new(data.n_items);
        d.record(data, queries, negatives, &m, &Tensor::from_slice(queries))
            .unwrap();
        d.finish_epoch(data, 4e-9)
    }

    #[test]
    fn counts_held_out_positives_and_coverage() {
        let data = one_user();
        let ids = Tensor::from_slice(&[1i64, 2, 1, 1]).view([2, 2]);
        let m: std::collections::HashMap<_, _> = diagnose(&data, &Negatives::ids(ids), &[0, 0])
            .into_iter()
            .collect();
        assert_eq!(m["fn_rate"], 0.75);
        assert_eq!(m["coverage"], 0.5);
        assert!((m["ns_per_negative"] - 1.0).abs() < 1e-9);
        let uniform = expected_uniform_coverage(4, 4);
        assert!((m["coverage_vs_uniform"] - 0.5 / uniform).abs() < 1e-12);
    }

    #[test]
    fn wide_rows_count_exactly_as_narrow_ones() {
        // Two users over 6 items; user 0: train 0, test 1, relevant {1, 2}; user 1: train 3.
        let (mut train, mut test, mut rel) = (
            Interactions::default(),
            Interactions::default(),
            Interactions::default(),
        );
        train.push(0, 0);
        train.push(1, 3);
        test.push(0, 1);
        for i in [0, 1, 2] {
            rel.push(0, i);
        }
        let relevant = crate::data::QueryItems::from_interactions(2, &rel);
        let data = Dataset::new(
            "t".into(),
            2,
            6,
            train,
            Interactions::default(),
            test,
            Some(relevant),
        );
        // The same pattern of ids repeated to a narrow (k = 6) and a wide (k = 6 × 16) row.
        let pattern = [0i64, 1, 2, 3, 4, 5];
        let rows = |reps: usize| {
            let row: Vec<i64> = pattern.iter().copied().cycle().take(6 * reps).collect();
            Tensor::from_slice(&[row.clone(), row].concat()).view([2, (6 * reps) as i64])
        };
        const { assert!(6 * 16 >= WIDE_ROW && 6 < WIDE_ROW) };
        let narrow: std::collections::HashMap<_, _> =
            diagnose(&data, &Negatives::ids(rows(1)), &[0, 1])
                .into_iter()
                .collect();
        let wide: std::collections::HashMap<_, _> =
            diagnose(&data, &Negatives::ids(rows(16)), &[0, 1])
                .into_iter()
                .collect();
        // Over the 12 slots: held-out 1 (user 0, item 1); training 2 (0/0, 1/3); relevant and not
        // training 2 (0/1, 0/2).
        for (metric, value) in [
            ("fn_rate", 1.0 / 12.0),
            ("fn_rate_train", 2.0 / 12.0),
            ("fn_rate_known", 3.0 / 12.0),
            ("fn_rate_true", 2.0 / 12.0),
        ] {
            assert!((narrow[metric] - value).abs() < 1e-12, "narrow {metric}");
            assert!((wide[metric] - value).abs() < 1e-12, "wide {metric}");
        }
    }

    #[test]
    fn ids_that_cannot_be_read_are_an_error_not_an_empty_count() {
        let data = one_user();
        let (_vs, m) = model(1, 4);
        let floats = Negatives::ids(Tensor::from_slice(&[1.5f32, 2.0]).view([1, 2]));
        let mut d = Diagnostics::new(4);
        let q = Tensor::from_slice(&[0i64]);
        assert!(d.record(&data, &[0], &floats, &m, &q).is_err());
    }

    #[test]
    fn masked_and_downweighted_negatives_count_as_they_enter_the_loss() {
        // Item 1 is the held-out positive. Masking it out (as fn-filter does) must show as a zero
        // false-negative rate; weighting it by ¼ as a quarter of a negative.
        let data = one_user();
        let ids = || Tensor::from_slice(&[1i64, 2, 1, 3]).view([2, 2]);
        let keep = Tensor::from_slice(&[false, true, false, true]).view([2, 2]);
        let masked = Negatives::ids(ids()).with_valid(keep);
        let m: std::collections::HashMap<_, _> =
            diagnose(&data, &masked, &[0, 0]).into_iter().collect();
        assert_eq!(
            m["fn_rate"], 0.0,
            "the masked false negatives did not train"
        );
        assert_eq!(m["coverage"], 0.5, "items 2 and 3 entered the loss");
        assert_eq!(m["negatives_per_positive"], 1.0, "one of each row's two");
        let w = Tensor::from_slice(&[0.25f32, 1.0, 0.25, 1.0]).view([2, 2]);
        let weighted = Negatives::ids(ids()).with_weights(w);
        let m: std::collections::HashMap<_, _> =
            diagnose(&data, &weighted, &[0, 0]).into_iter().collect();
        assert!((m["fn_rate"] - 0.5 / 2.5).abs() < 1e-9);
    }

    #[test]
    fn relative_spread_does_not_grow_with_the_number_of_draws() {
        // A uniform sampler is "as spread as uniform" with few draws and with many; raw coverage is not.
        let n = 1000;
        let mut rng = rand_pcg::Pcg64Mcg::seed_from_u64(5);
        let mut summary = |draws: u64| {
            let mut counts = vec![0f64; n];
            for _ in 0..draws {
                counts[rng.random_range(0..n)] += 1.0;
            }
            let covered = counts.iter().filter(|&&c| c > 0.0).count() as f64 / n as f64;
            (
                covered,
                covered / expected_uniform_coverage(n, draws),
                gini(&counts) - uniform_draw_gini(n, draws),
            )
        };
        let (few, many) = (summary(500), summary(20_000));
        assert!(many.0 > few.0 + 0.3, "raw coverage grows: {few:?} {many:?}");
        for (_, cov, gini) in [few, many] {
            assert!((cov - 1.0).abs() < 0.05, "coverage vs uniform {cov}");
            assert!(gini.abs() < 0.05, "gini vs uniform {gini}");
        }
    }

    #[test]
    fn scores_below_are_counted_as_the_whole_comparison_counts_them() {
        tch::manual_seed(5);
        // Rounded scores: many ties; an infinite score (a masked positive) is never below.
        let all = (Tensor::randn([6, 40], (Kind::Float, Device::Cpu)) * 3.0).round();
        let _ = all.get(0).get(3).fill_(f64::INFINITY);
        let _ = all.get(1).get(5).fill_(f64::NEG_INFINITY);
        // −0 and +0 compare equal: neither is below the other.
        let _ = all.get(2).get(0).fill_(-0.0);
        let _ = all.get(2).get(1).fill_(0.0);
        // 70 negatives per row (the sorted search), drawn from the row's own scores.
        let neg = all.gather(
            1,
            &Tensor::randint(40, [6, 70], (Kind::Int64, Device::Cpu)),
            false,
        );
        let brute = all
            .unsqueeze(1)
            .lt_tensor(&neg.unsqueeze(2))
            .sum_dim_intlist(2, false, Kind::Float);
        assert!(scored_below(&all, &neg).equal(&brute));
        assert!(scored_below_on_device(&all, &neg).equal(&brute));
        assert!(scored_below(&all, &neg.narrow(1, 0, 7)).equal(&brute.narrow(1, 0, 7)));
    }

    #[test]
    fn hardness_is_the_percentile_among_the_non_positives() {
        let (_vs, m) = model(2, 50);
        // Each user's training positives are its 5 top-scored items: the hardest non-positive is the
        // 6th, which must score 1 (above every other non-positive), not 45/49.
        let queries = Tensor::from_slice(&[0i64, 1]);
        let scores = m.queries(&queries).matmul(&m.all_items().tr());
        let order = Vec::<Vec<i64>>::try_from(scores.argsort(1, true)).unwrap();
        let mut train = Interactions::default();
        for (u, row) in order.iter().enumerate() {
            for &i in &row[..5] {
                train.push(u as u32, i as u32);
            }
        }
        let data = Dataset::new(
            "t".into(),
            2,
            50,
            train,
            Interactions::default(),
            Interactions::default(),
            None,
        );
        let pick = |rank: usize| {
            let ids: Vec<i64> = order.iter().map(|r| r[rank]).collect();
            let ids = Tensor::from_slice(&ids).view([2, 1]);
            let w = Tensor::ones([2, 1], (Kind::Float, Device::Cpu));
            hardness(&data, &m, &[0, 1], &queries, &ids, &w)
                .unwrap()
                .unwrap()
        };
        assert_eq!(pick(5), 1.0, "the hardest non-positive");
        assert_eq!(pick(49), 0.0, "the easiest");
    }
}
