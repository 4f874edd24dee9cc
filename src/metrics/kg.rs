//! Filtered link-prediction evaluation (Bordes et al. 2013), both sides: every held-out triple is ranked
//! once as a tail query (h, r, ?) and once as a head query (?, r, t) against every entity, with every
//! other known answer of the query (from train, valid and test) removed from the ranking. Ties count as
//! PyKEEN's "realistic" rank, the mean of the optimistic rank (1 + candidates scored strictly above the
//! answer) and the pessimistic rank (1 + candidates scored at least as high, other than the answer):
//! never the optimistic rank alone, which rewards a model that scores everything equal.
//! MRR = mean of 1 / realistic rank; Hits@k = share of realistic ranks ≤ k; MR = mean realistic rank.

use tch::{Device, Kind, Tensor};

use super::{block_users, MetricValues, NonFiniteScores, PerQuery};
use crate::data::{Interactions, QueryItems};
use crate::model::ContrastiveModel;

/// Cut-offs of Hits@k.
pub const HITS_AT: [usize; 3] = [1, 3, 10];

/// Names of the metrics `KgEvaluator` reports, in order.
pub fn metric_names() -> Vec<String> {
    let mut names = vec!["mrr".to_string()];
    names.extend(HITS_AT.iter().map(|k| format!("hits@{k}")));
    names.push("mr".into());
    names
}

/// The realistic rank of an answer scored `answer` among `scores` of candidates that are not filtered
/// (the answer's own score among them once): (optimistic + pessimistic) / 2.
pub fn realistic_rank(answer: f32, others: impl IntoIterator<Item = f32>) -> f64 {
    let (mut above, mut tied) = (0usize, 0usize);
    for s in others {
        if s > answer {
            above += 1;
        } else if s == answer {
            tied += 1;
        }
    }
    let optimistic = 1 + above;
    let pessimistic = 1 + above + tied;
    (optimistic + pessimistic) as f64 / 2.0
}

/// The realistic rank of entity `answer` in `row` with the other `known` answers (sorted, distinct)
/// filtered out, in one pass over the row; None when a score is not finite.
fn realistic_filtered_rank(row: &[f32], answer: usize, known: &[u32]) -> Option<f64> {
    let a = row[answer];
    // Eight lanes so the compiler keeps the counts in vector registers.
    let (mut above, mut tied, mut bad) = ([0u32; 8], [0u32; 8], [0u32; 8]);
    let eights = row.chunks_exact(8);
    let tail = eights.remainder();
    for eight in eights {
        for l in 0..8 {
            let x = eight[l];
            above[l] += u32::from(x > a);
            tied[l] += u32::from(x == a);
            // Exponent all ones: NaN or ±inf.
            bad[l] += u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
        }
    }
    let (mut above, mut tied, mut bad) = (
        above.iter().sum::<u32>() as i64,
        tied.iter().sum::<u32>() as i64,
        bad.iter().sum::<u32>(),
    );
    for &x in tail {
        above += i64::from(x > a);
        tied += i64::from(x == a);
        bad += u32::from(x.to_bits() & 0x7f80_0000 == 0x7f80_0000);
    }
    if bad > 0 {
        return None;
    }
    for &e in known {
        if e as usize == answer {
            continue;
        }
        let x = row[e as usize];
        if x > a {
            above -= 1;
        } else if x == a {
            tied -= 1;
        }
    }
    // The answer ties with itself.
    tied -= 1;
    Some((2 * above + tied + 2) as f64 / 2.0)
}

/// Ranks every (query, answer) pair of one split.
pub struct KgEvaluator {
    queries: Vec<i64>,
    answers: Vec<i64>,
    known: QueryItems,
    n_entities: usize,
    device: Device,
    /// Count each row of scores on the host (the CPU path) rather than with tensor operations.
    host_scan: bool,
}

impl KgEvaluator {
    /// `pairs`: the split's (query, answer) pairs; `known`: every known answer of each query (filtered out
    /// of its ranking except the answer being ranked).
    pub fn new(
        pairs: &Interactions,
        known: &QueryItems,
        n_entities: usize,
        device: Device,
    ) -> Self {
        KgEvaluator {
            queries: pairs.queries.iter().map(|&q| q as i64).collect(),
            answers: pairs.items.iter().map(|&i| i as i64).collect(),
            known: known.clone(),
            n_entities,
            device,
            host_scan: device == Device::Cpu,
        }
    }

    /// The same evaluator ranking with tensor operations even on the CPU (for comparisons of the two
    /// paths).
    pub fn on_device_path(mut self) -> KgEvaluator {
        self.host_scan = false;
        self
    }

    /// Realistic filtered ranks of every pair, in order: on the CPU each row of scores is counted once
    /// on the host (no filtered copy, no comparison matrices); on an accelerator by tensor operations.
    pub fn ranks(&self, model: &dyn ContrastiveModel) -> Result<Vec<f64>, NonFiniteScores> {
        if self.host_scan {
            self.ranks_on_host(model)
        } else {
            self.ranks_on_device(model)
        }
    }

    fn ranks_on_host(&self, model: &dyn ContrastiveModel) -> Result<Vec<f64>, NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let block = block_users(self.n_entities);
        let n = self.n_entities;
        let mut ranks = Vec::with_capacity(self.queries.len());
        for (queries, answers) in self.queries.chunks(block).zip(self.answers.chunks(block)) {
            let scores = model
                .score_all(&Tensor::from_slice(queries))
                .expect("query and entity embeddings of one model fit together")
                .to_kind(Kind::Float)
                .contiguous();
            // SAFETY: a contiguous CPU f32 tensor of queries.len() × n values, alive for the borrow.
            let values = unsafe {
                std::slice::from_raw_parts(scores.data_ptr() as *const f32, queries.len() * n)
            };
            let rows = values.chunks_exact(n);
            let mut bad = 0;
            for ((row, &query), &answer) in rows.zip(queries).zip(answers) {
                let Some(rank) =
                    realistic_filtered_rank(row, answer as usize, self.known.items(query as usize))
                else {
                    bad += 1;
                    continue;
                };
                ranks.push(rank);
            }
            if bad > 0 {
                return Err(NonFiniteScores {
                    bad,
                    users: self.queries.len(),
                });
            }
        }
        Ok(ranks)
    }

    fn ranks_on_device(&self, model: &dyn ContrastiveModel) -> Result<Vec<f64>, NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let block = block_users(self.n_entities);
        let mut ranks = Vec::with_capacity(self.queries.len());
        for (queries, answers) in self.queries.chunks(block).zip(self.answers.chunks(block)) {
            let q = Tensor::from_slice(queries).to_device(self.device);
            let a = Tensor::from_slice(answers)
                .to_device(self.device)
                .unsqueeze(1);
            let mut scores = model
                .score_all(&q)
                .expect("query and entity embeddings of one model fit together");
            NonFiniteScores::check(&scores, self.queries.len())?;
            let answer = scores.gather(1, &a, false); // (b, 1)
                                                      // Filter: every other known answer of the query leaves the ranking.
            let (mut rows, mut cols) = (Vec::new(), Vec::new());
            for (row, (&query, &ans)) in queries.iter().zip(answers).enumerate() {
                for &e in self.known.items(query as usize) {
                    if e as i64 != ans {
                        rows.push(row as i64);
                        cols.push(e as i64);
                    }
                }
            }
            if !rows.is_empty() {
                let index = [
                    Some(Tensor::from_slice(&rows).to_device(self.device)),
                    Some(Tensor::from_slice(&cols).to_device(self.device)),
                ];
                let neg_inf = Tensor::from(f32::NEG_INFINITY).to_device(self.device);
                let _ = scores.index_put_(&index, &neg_inf, false);
            }
            let above = scores
                .gt_tensor(&answer)
                .sum_dim_intlist(1, false, Kind::Int64);
            // The answer ties with itself: the others tied with it are the count minus one.
            let tied = scores
                .eq_tensor(&answer)
                .sum_dim_intlist(1, false, Kind::Int64)
                - 1;
            let realistic =
                (above.to_kind(Kind::Double) * 2.0 + tied.to_kind(Kind::Double) + 2.0) / 2.0;
            ranks.extend(
                Vec::<f64>::try_from(realistic.to_device(Device::Cpu))
                    .expect("the evaluator's own f64 tensor"),
            );
        }
        Ok(ranks)
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(means, _)| means)
    }

    /// The means and, per ranked pair (numbered by its place in the split, so cells of one data set
    /// pair up), the reciprocal rank and Hits@10.
    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let ranks = self.ranks(model)?;
        let per_query = PerQuery {
            queries: (0..ranks.len() as u32).collect(),
            columns: vec![
                (
                    "mrr".into(),
                    ranks.iter().map(|r| (1.0 / r) as f32).collect(),
                ),
                (
                    "hits@10".into(),
                    ranks
                        .iter()
                        .map(|&r| f32::from(u8::from(r <= 10.0)))
                        .collect(),
                ),
            ],
        };
        let n = ranks.len().max(1) as f64;
        let mut out = vec![(
            "mrr".to_string(),
            ranks.iter().map(|r| 1.0 / r).sum::<f64>() / n,
        )];
        for k in HITS_AT {
            let hits = ranks.iter().filter(|&&r| r <= k as f64).count();
            out.push((format!("hits@{k}"), hits as f64 / n));
        }
        out.push(("mr".into(), ranks.iter().sum::<f64>() / n));
        Ok((out, per_query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::KgQueryIndex;
    use crate::model::{KgModel, KgModelConfig, KgScore};

    #[test]
    fn realistic_rank_is_the_mean_of_optimistic_and_pessimistic() {
        // The answer (0.5) among 0.9 above, two others tied, 0.1 below: optimistic 2, pessimistic 4.
        assert_eq!(realistic_rank(0.5, [0.9, 0.5, 0.5, 0.1]), 3.0);
        assert_eq!(realistic_rank(1.0, [0.0, 0.2]), 1.0);
        // Everything tied over 5 candidates: rank 3, never 1.
        assert_eq!(realistic_rank(0.0, [0.0; 4]), 3.0);
    }

    /// DistMult with 1-d embeddings: s(h, r, t) = h · r · t, so scores are easy to hand-compute.
    fn distmult(entities: &[f32]) -> (tch::nn::VarStore, KgModel, KgQueryIndex) {
        let vs = tch::nn::VarStore::new(Device::Cpu);
        // Query 0: (e0, r0, ?) tail side; query 1: (?, r0, e1) head side.
        let index = KgQueryIndex {
            entity: vec![0, 1],
            relation: vec![0, 0],
            head_side: vec![false, true],
            n_relations: 1,
        };
        let config = KgModelConfig { dim: 1, norm: None };
        let m = KgModel::new(
            &vs.root(),
            KgScore::DistMult,
            &config,
            &index,
            entities.len(),
            0,
        );
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                let values: Vec<f32> = if name == "entity" {
                    entities.to_vec()
                } else {
                    vec![1.0]
                };
                v.copy_(&Tensor::from_slice(&values).view([-1, 1]));
            }
        });
        (vs, m, index)
    }

    #[test]
    fn filtered_realistic_ranks_on_both_sides_match_hand_computed_values() {
        // Entities 0..5 with 1-d embeddings; r0 = 1: s = h · t.
        let (_vs, model, _) = distmult(&[1.0, 0.5, 0.9, 0.5, 0.2]);
        // Tail query (e0, r0, ?): scores e·1 = [1.0, 0.5, 0.9, 0.5, 0.2]. Answer e1 (0.5); e2 (0.9) is a
        // known answer (filtered), e0 (1.0) is above, e3 ties, e4 below: optimistic 2, pessimistic 3 → 2.5.
        // Head query (?, r0, e1): scores e·0.5 = [0.5, 0.25, 0.45, 0.25, 0.1]. Answer e0 (0.5): first → 1.
        let mut pairs = Interactions::default();
        pairs.push(0, 1);
        pairs.push(1, 0);
        let mut known = Interactions::default();
        for (q, e) in [(0, 1), (0, 2), (1, 0)] {
            known.push(q, e);
        }
        let known = QueryItems::from_interactions(2, &known);
        let eval = KgEvaluator::new(&pairs, &known, 5, Device::Cpu);
        let ranks = eval.ranks(&model).unwrap();
        assert_eq!(ranks, vec![2.5, 1.0]);
        // Without the filter, e2 (0.9) also outranks e1: 3.5.
        let none = QueryItems::from_interactions(2, &Interactions::default());
        let unfiltered = KgEvaluator::new(&pairs, &none, 5, Device::Cpu)
            .ranks(&model)
            .unwrap();
        assert_eq!(unfiltered, vec![3.5, 1.0]);
        let metrics = eval.evaluate(&model).unwrap();
        let get = |n: &str| metrics.iter().find(|(m, _)| m == n).unwrap().1;
        assert!((get("mrr") - (1.0 / 2.5 + 1.0) / 2.0).abs() < 1e-12);
        assert_eq!(get("hits@1"), 0.5);
        assert_eq!(get("hits@3"), 1.0);
        assert_eq!(get("mr"), 1.75);
    }

    #[test]
    fn the_host_count_and_the_device_path_give_the_same_ranks() {
        // 21 entities (two runs of eight and a tail), repeated values (ties), several known answers.
        let values: Vec<f32> = (0..21).map(|i| ((i * 7) % 5) as f32 * 0.25 - 0.4).collect();
        let (_vs, model, _) = distmult(&values);
        let mut pairs = Interactions::default();
        let mut known = Interactions::default();
        for (q, e) in [(0, 3), (0, 9), (0, 20), (1, 0), (1, 14), (1, 5)] {
            pairs.push(q, e);
            known.push(q, e);
        }
        for (q, e) in [(0, 1), (0, 16), (1, 2), (1, 11)] {
            known.push(q, e);
        }
        let known = QueryItems::from_interactions(2, &known);
        let eval = KgEvaluator::new(&pairs, &known, 21, Device::Cpu);
        let host = eval.ranks_on_host(&model).unwrap();
        assert_eq!(host, eval.ranks_on_device(&model).unwrap());
        assert!(host.iter().any(|r| r.fract() != 0.0), "ties are exercised");
    }

    #[test]
    fn a_model_that_scores_everything_equal_gets_the_middle_rank() {
        let (_vs, model, _) = distmult(&[0.0; 5]);
        let mut pairs = Interactions::default();
        pairs.push(0, 3);
        let none = QueryItems::from_interactions(2, &Interactions::default());
        let ranks = KgEvaluator::new(&pairs, &none, 5, Device::Cpu)
            .ranks(&model)
            .unwrap();
        assert_eq!(ranks, vec![3.0]);
    }
}
