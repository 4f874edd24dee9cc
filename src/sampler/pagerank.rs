//! Graph-based hard negatives by personalised PageRank (Ying et al., "Graph Convolutional Neural Networks
//! for Web-Scale Recommender Systems" (PinSage), KDD 2018): items are ranked by their visit counts in
//! random walks with restart from the query over the training user–item graph, and negatives are drawn
//! uniformly from a middle band of that ranking (PinSage takes ranks 2000–5000 of billions: related
//! enough to be hard, far enough not to be positives). Known positives are left out of the ranking; items
//! no walk reached rank after the visited ones, in a random order. On a node graph the walk goes from
//! node to neighbour and every node it reaches is ranked. The graph does not change during training, so
//! each query's band is computed once, the first time the query is seen.
//!
//! PinSage's curriculum: at epoch n, n − 1 hard negatives are *added* to each positive's random ones.
//! Here each row has its k uniform negatives and min(n − 1, k) negatives from its band (so at most 2k).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, WITH_INTERACTIONS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagerankConfig {
    /// Walk steps per query.
    pub steps: usize,
    /// Probability of jumping back to the query at each step.
    pub restart: f64,
    /// The band of ranks (from 0, positives excluded) negatives are drawn from: [rank_from, rank_to).
    pub rank_from: usize,
    pub rank_to: usize,
    pub exclude_positives: bool,
}

impl Default for PagerankConfig {
    fn default() -> Self {
        PagerankConfig {
            steps: 5000,
            restart: 0.3,
            rank_from: 10,
            rank_to: 100,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for PagerankConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "pagerank",
            family: "graph",
            needs: "the interaction graph (personalised PageRank)",
            description: "PinSage's curriculum: k uniform negatives plus, at epoch n, min(n − 1, k) hard ones (so up to 2k a row) from a middle band of personalised PageRank (random walks with restart from the query over the training graph; node to neighbour on a node graph); steps = 5000, restart = 0.3, rank_from = 10, rank_to = 100, exclude_positives = true",
            version: 2,
            same_at_k1: None,
            ratio_free: false,
            domains: WITH_INTERACTIONS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        format!("pagerank-{}-{}", self.rank_from, self.rank_to)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.steps == 0 {
            p.push(("steps", "must be >= 1".into()));
        }
        if !(self.restart > 0.0 && self.restart < 1.0) {
            p.push((
                "restart",
                format!("must be in (0, 1) (got {})", self.restart),
            ));
        }
        if self.rank_to <= self.rank_from {
            p.push((
                "rank_to",
                format!(
                    "must be above rank_from ({}) (got {})",
                    self.rank_from, self.rank_to
                ),
            ));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Pagerank::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![(
            "per-query PageRank bands".into(),
            s.queries * self.rank_to as f64 * 8.0 + (s.queries + s.items) * 16.0,
        )]
    }
}

pub struct Pagerank {
    config: PagerankConfig,
    by_user: QueryItems,
    by_item: QueryItems,
    n_items: usize,
    exclude: bool,
    /// Per query, its band of items (empty until first seen).
    bands: Vec<Vec<u32>>,
    /// Queries and candidates are the same nodes of one graph.
    node_graph: bool,
    uniform: Uniform,
}

impl Pagerank {
    pub fn new(c: &PagerankConfig, data: &Dataset) -> Pagerank {
        Pagerank {
            config: c.clone(),
            by_user: data.train_by_query.clone(),
            by_item: data.train_by_item(),
            n_items: data.n_items,
            exclude: c.exclude_positives,
            bands: vec![Vec::new(); data.n_queries],
            node_graph: data.graph.is_some(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
        }
    }

    /// Visit counts of every item in `steps` walk steps with restart from user `q`.
    pub fn visits(&self, q: usize, rng: &mut impl Rng) -> Vec<u32> {
        let mut visits = vec![0u32; self.n_items];
        if self.node_graph {
            // `by_item` is the node graph without self-loops.
            let mut node = q;
            for _ in 0..self.config.steps {
                let next = self.by_item.items(node);
                if next.is_empty() {
                    break;
                }
                let v = next[rng.random_range(0..next.len())] as usize;
                visits[v] += 1;
                node = if rng.random_bool(self.config.restart) {
                    q
                } else {
                    v
                };
            }
            return visits;
        }
        let mut user = q;
        for _ in 0..self.config.steps {
            let items = self.by_user.items(user);
            if items.is_empty() {
                break; // a query with no training items has no neighbourhood
            }
            let item = items[rng.random_range(0..items.len())];
            visits[item as usize] += 1;
            let users = self.by_item.items(item as usize);
            user = if rng.random_bool(self.config.restart) || users.is_empty() {
                q
            } else {
                users[rng.random_range(0..users.len())] as usize
            };
        }
        visits
    }

    /// The items of query `q` ranked by PageRank (visits, ties and unvisited items in random order),
    /// known positives left out.
    pub fn ranking(&self, q: usize, rng: &mut impl Rng) -> Vec<u32> {
        let visits = self.visits(q, rng);
        let known = self.by_user.items(q);
        let mut keyed: Vec<(u32, u32, u32)> = (0..self.n_items as u32)
            .filter(|i| !self.exclude || known.binary_search(i).is_err())
            .map(|i| (visits[i as usize], rng.random::<u32>(), i))
            .collect();
        keyed.sort_unstable_by_key(|&(visits, tie, _)| std::cmp::Reverse((visits, tie)));
        keyed.into_iter().map(|(_, _, i)| i).collect()
    }

    fn band(&mut self, q: usize, rng: &mut impl Rng) -> &[u32] {
        if self.bands[q].is_empty() {
            let ranking = self.ranking(q, rng);
            let to = self.config.rank_to.min(ranking.len());
            // A pool smaller than the band keeps its lowest-ranked items.
            let from = self.config.rank_from.min(to.saturating_sub(1));
            self.bands[q] = ranking[from..to].to_vec();
            if self.bands[q].is_empty() {
                self.bands[q] = (0..self.n_items as u32).collect();
            }
        }
        &self.bands[q]
    }
}

impl Sampler for Pagerank {
    fn name(&self) -> &'static str {
        "pagerank"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let hard = (cx.epoch.saturating_sub(1) as usize).min(k);
        let random = self.uniform.draw(batch, k, cx);
        if hard == 0 {
            return Ok(Negatives::ids(random));
        }
        let mut ids = Vec::with_capacity(batch.len() * hard);
        for &q in batch.queries {
            let rng = &mut *cx.rng;
            let band = self.band(q as usize, rng);
            let len = band.len();
            for _ in 0..hard {
                ids.push(band[rng.random_range(0..len)] as i64);
            }
        }
        let hard = Tensor::from_slice(&ids)
            .view([batch.len() as i64, hard as i64])
            .to_device(cx.device);
        Ok(Negatives::ids(Tensor::cat(&[random, hard], 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;
    use crate::sampler::tests::Harness;

    #[test]
    fn on_a_node_graph_the_walk_goes_from_neighbour_to_neighbour() {
        // A path of nodes 0 – 1 – 2 – … – 9: from 0, near nodes are visited more than far ones, and
        // both odd and even distances are reached.
        let mut train = Interactions::default();
        for v in 0..9u32 {
            train.push(v, v + 1);
            train.push(v + 1, v);
        }
        let mut data = crate::sampler::tests::tiny_graph();
        data.train_by_query = crate::data::QueryItems::from_interactions(10, &train);
        data.train = train;
        let c = PagerankConfig {
            steps: 100_000,
            ..Default::default()
        };
        let s = Pagerank::new(&c, &data);
        let mut h = Harness::new(&data, 3);
        let v = s.visits(0, &mut h.rng);
        assert!(
            v[1] > v[2] && v[2] > v[3] && v[3] > v[4] && v[4] > 0,
            "{v:?}"
        );
    }

    #[test]
    fn draws_from_the_middle_band_of_the_personalised_pagerank() {
        // A path u0 – i0 – u1 – i1 – u2 – i2 – … – u7 – i7: PageRank from u0 falls along the path, so
        // without u0's own item i0 the ranking is i1, i2, i3, …
        let mut train = Interactions::default();
        for u in 0..8u32 {
            train.push(u, u);
            if u > 0 {
                train.push(u, u - 1);
            }
        }
        let data = Dataset::new(
            "path".into(),
            8,
            8,
            train,
            Interactions::default(),
            Interactions::default(),
            None,
        );
        let c = PagerankConfig {
            steps: 200_000,
            rank_from: 1,
            rank_to: 3,
            ..Default::default()
        };
        let mut s = Pagerank::new(&c, &data);
        let mut h = Harness::new(&data, 7);
        assert_eq!(s.ranking(0, &mut h.rng)[..5], [1, 2, 3, 4, 5]);
        // The curriculum: no hard negatives in the first epoch, n − 1 (at most k) after the k uniform
        // ones in epoch n.
        assert_eq!(
            h.sample(&mut s, &data, &[0], Some(&[0]), 200).per_row(),
            200
        );
        h.epoch = 4;
        assert_eq!(
            h.sample(&mut s, &data, &[0], Some(&[0]), 200).per_row(),
            203
        );
        h.epoch = 500;
        let n = h.sample(&mut s, &data, &[0], Some(&[0]), 200);
        let ids = n.drawn_ids().unwrap();
        assert_eq!(ids.size(), [1, 400]);
        let drawn = Vec::<i64>::try_from(ids.narrow(1, 200, 200).reshape([-1])).unwrap();
        assert!(
            drawn.iter().all(|i| [2, 3].contains(i)),
            "ranks 1 and 2 only"
        );
        assert!(drawn.contains(&2) && drawn.contains(&3));
    }
}
