//! Markov chain Monte Carlo negative sampling (Yang et al., "Understanding Negative Sampling in Graph
//! Representation Learning" (MCNS), KDD 2020): the negative distribution should be positively but
//! sub-linearly correlated with the positive one, p_n(c|q) ∝ p_d(c|q)^α. With the model's softmax as
//! p_d, the target is π(c|q) ∝ exp(α·s(q, c)) over the non-positives. Each query keeps a Metropolis–
//! Hastings chain across batches (MCNS walks one chain in DFS order); each negative is one MH step whose
//! proposal mixes a uniform jump (probability `uniform_mix`) with a graph move to a neighbouring item
//! (item → one of its users → one of that user's items; on a node graph, as in MCNS, a neighbour of the
//! current node). The acceptance ratio uses the exact proposal probabilities of both moves, so the
//! chain's stationary distribution is π whatever the graph. MCNS walks the queries in depth-first order
//! and hands the chain from one node to the next; here batches are shuffled and their rows advance
//! together, so on a node graph a query's chain starts where its depth-first predecessor's chain is
//! (when that one has started), else at a uniform non-positive.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, WITH_INTERACTIONS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McnsConfig {
    /// Exponent α of the target p_d^α (sub-linear: 0 < α < 1; MCNS's theory asks for this range).
    pub alpha: f64,
    /// Probability that a proposal is a uniform jump rather than a graph move.
    pub uniform_mix: f64,
    pub exclude_positives: bool,
}

impl Default for McnsConfig {
    fn default() -> Self {
        McnsConfig {
            alpha: 0.75,
            uniform_mix: 0.5,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for McnsConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "mcns",
            family: "graph",
            needs: "the interaction graph and model scores (Metropolis–Hastings chain)",
            description: "Metropolis-Hastings chain per query targeting exp(alpha · score), uniform and graph proposals (MCNS, Yang et al. 2020); alpha = 0.75, uniform_mix = 0.5, exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: WITH_INTERACTIONS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 2.0,
                per_extra_negative: 1.0,
            },
    };

    fn tag(&self) -> String {
        format!("mcns-a{}", self.alpha)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            p.push(("alpha", format!("must be >= 0 (got {})", self.alpha)));
        }
        if !(self.uniform_mix > 0.0 && self.uniform_mix <= 1.0) {
            p.push((
                "uniform_mix",
                format!(
                    "must be in (0, 1] so the chain can reach every item (got {})",
                    self.uniform_mix
                ),
            ));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Mcns::new(self, data)))
    }

    /// Nothing beyond the per-batch part every sampler has: the proposal chain's state: one id per query.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

pub struct Mcns {
    config: McnsConfig,
    by_user: QueryItems,
    by_item: QueryItems,
    n_items: u32,
    /// Per query, the chain's current item, if started.
    state: Vec<Option<u32>>,
    /// Node graphs: queries and candidates are the same nodes; moves go to a neighbour, and each node's
    /// depth-first predecessor lends its chain's state as a start.
    dfs_predecessor: Option<Vec<Option<u32>>>,
}

impl Mcns {
    pub fn new(c: &McnsConfig, data: &Dataset) -> Mcns {
        Mcns {
            config: c.clone(),
            by_user: data.train_by_query.clone(),
            by_item: data.train_by_item(),
            n_items: data.n_items as u32,
            state: vec![None; data.n_queries],
            dfs_predecessor: data
                .graph
                .is_some()
                .then(|| dfs_predecessors(&data.train_by_item())),
        }
    }

    fn excluded(&self, q: usize, c: u32) -> bool {
        self.config.exclude_positives && self.by_user.contains(q, c)
    }

    /// Proposal: a uniform jump, or item → user → item along the graph (a neighbour on a node graph).
    fn propose(&self, x: u32, rng: &mut impl Rng) -> u32 {
        let users = self.by_item.items(x as usize);
        if users.is_empty() || rng.random_bool(self.config.uniform_mix) {
            return rng.random_range(0..self.n_items);
        }
        if self.dfs_predecessor.is_some() {
            return users[rng.random_range(0..users.len())];
        }
        let u = users[rng.random_range(0..users.len())] as usize;
        let items = self.by_user.items(u);
        items[rng.random_range(0..items.len())]
    }

    /// q(y | x), the exact probability of proposing y from x.
    pub fn proposal_probability(&self, x: u32, y: u32) -> f64 {
        let uniform = 1.0 / self.n_items as f64;
        let xs = self.by_item.items(x as usize);
        if xs.is_empty() {
            return uniform;
        }
        let m = self.config.uniform_mix;
        if self.dfs_predecessor.is_some() {
            let neighbour = f64::from(u8::from(xs.binary_search(&y).is_ok()));
            return m * uniform + (1.0 - m) * neighbour / xs.len() as f64;
        }
        let ys = self.by_item.items(y as usize);
        // Σ over users of both x and y of 1/deg(user): a merge of the two sorted user lists.
        let (mut i, mut j, mut walk) = (0, 0, 0.0);
        while i < xs.len() && j < ys.len() {
            match xs[i].cmp(&ys[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    walk += 1.0 / self.by_user.items(xs[i] as usize).len() as f64;
                    (i, j) = (i + 1, j + 1);
                }
            }
        }
        m * uniform + (1.0 - m) * walk / xs.len() as f64
    }

    /// A uniform non-positive start for query `q`.
    fn start(&self, q: usize, rng: &mut impl Rng) -> u32 {
        for _ in 0..64 {
            let c = rng.random_range(0..self.n_items);
            if !self.excluded(q, c) {
                return c;
            }
        }
        rng.random_range(0..self.n_items)
    }
}

impl Sampler for Mcns {
    fn name(&self) -> &'static str {
        "mcns"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let b = batch.len();
        let _no_grad = tch::no_grad_guard();
        let score = |items: &[i64], cx: &SampleContext| -> Result<Vec<f32>, SamplerError> {
            let t = Tensor::from_slice(items)
                .view([b as i64, 1])
                .to_device(cx.device);
            let s = cx.model.score_candidates(batch.queries_t, &t)?;
            Ok(Vec::<f32>::try_from(
                s.reshape([-1]).to_device(Device::Cpu),
            )?)
        };
        let mut current: Vec<u32> = batch
            .queries
            .iter()
            .map(|&q| {
                let q = q as usize;
                let lent = self
                    .dfs_predecessor
                    .as_ref()
                    .and_then(|p| p[q])
                    .and_then(|p| self.state[p as usize])
                    .filter(|&x| !self.excluded(q, x));
                match self.state[q].or(lent) {
                    Some(x) => x,
                    None => self.start(q, &mut *cx.rng),
                }
            })
            .collect();
        let as_i64 = |v: &[u32]| v.iter().map(|&i| i as i64).collect::<Vec<_>>();
        let mut current_score = score(&as_i64(&current), cx)?;
        let alpha = self.config.alpha as f32;
        let mut out = vec![0i64; b * k];
        for step in 0..k {
            let proposals: Vec<u32> = current
                .iter()
                .map(|&x| self.propose(x, &mut *cx.rng))
                .collect();
            let proposal_score = score(&as_i64(&proposals), cx)?;
            for (row, &q) in batch.queries.iter().enumerate() {
                let (x, y) = (current[row], proposals[row]);
                let accept = !self.excluded(q as usize, y) && {
                    let log_target = alpha * (proposal_score[row] - current_score[row]);
                    let ratio = (log_target as f64).exp() * self.proposal_probability(y, x)
                        / self.proposal_probability(x, y);
                    cx.rng.random::<f64>() < ratio
                };
                if accept {
                    current[row] = y;
                    current_score[row] = proposal_score[row];
                }
                out[row * k + step] = current[row] as i64;
            }
        }
        // Rows of one query share its chain: the last row's state carries on.
        for (&q, &x) in batch.queries.iter().zip(&current) {
            self.state[q as usize] = Some(x);
        }
        Ok(Negatives::ids(
            Tensor::from_slice(&out)
                .view([b as i64, k as i64])
                .to_device(cx.device),
        ))
    }
}

/// Each node's predecessor in a depth-first traversal of `graph` (components in node order, neighbours
/// in id order); a traversal's first node has none.
fn dfs_predecessors(graph: &QueryItems) -> Vec<Option<u32>> {
    let n = graph.n_queries();
    let (mut seen, mut out) = (vec![false; n], vec![None; n]);
    for root in 0..n {
        if seen[root] {
            continue;
        }
        let mut previous: Option<u32> = None;
        let mut stack = vec![root as u32];
        while let Some(v) = stack.pop() {
            if std::mem::replace(&mut seen[v as usize], true) {
                continue;
            }
            out[v as usize] = previous;
            previous = Some(v);
            stack.extend(
                graph
                    .items(v as usize)
                    .iter()
                    .rev()
                    .filter(|w| !seen[**w as usize]),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    #[test]
    fn depth_first_predecessors_follow_the_traversal() {
        // 0 – 1 – 2, 0 – 3; 4 alone.
        let mut x = crate::data::Interactions::default();
        for (a, b) in [(0, 1), (1, 2), (0, 3)] {
            x.push(a, b);
            x.push(b, a);
        }
        let g = QueryItems::from_interactions(5, &x);
        assert_eq!(
            dfs_predecessors(&g),
            [None, Some(0), Some(1), Some(2), None]
        );
    }

    #[test]
    fn the_chain_reaches_its_target_distribution() {
        // tiny_data's graph: items 8 and 9 have no users (their proposals are uniform), the others do
        // (graph moves make the proposal asymmetric). The chain for user 2 must still follow
        // exp(α·s) over its nine non-positives.
        let data = tiny_data();
        let mut h = Harness::new(&data, 8);
        let c = McnsConfig::default();
        let mut s = Mcns::new(&c, &data);
        let scores = &h.scores(&[2])[0];
        let mut counts = [0f64; 10];
        for call in 0..40 {
            let n = h.sample(&mut s, &data, &[2], None, 2000);
            if call == 0 {
                continue; // burn-in
            }
            for i in Vec::<i64>::try_from(n.drawn_ids().unwrap().reshape([-1])).unwrap() {
                counts[i as usize] += 1.0;
            }
        }
        assert_eq!(counts[5], 0.0, "the positive is never a state");
        let weights: Vec<f64> = (0..10)
            .map(|i| {
                if i == 5 {
                    0.0
                } else {
                    (0.75 * scores[i] as f64).exp()
                }
            })
            .collect();
        let (wt, ct): (f64, f64) = (weights.iter().sum(), counts.iter().sum());
        let tv: f64 = weights
            .iter()
            .zip(&counts)
            .map(|(w, c)| (w / wt - c / ct).abs())
            .sum::<f64>()
            / 2.0;
        assert!(tv < 0.02, "total variation {tv}: {counts:?} vs {weights:?}");
        // The proposal is a distribution from every state.
        for x in 0..10 {
            let total: f64 = (0..10).map(|y| s.proposal_probability(x, y)).sum();
            assert!((total - 1.0).abs() < 1e-9, "q(·|{x}) sums to {total}");
        }
    }
}
