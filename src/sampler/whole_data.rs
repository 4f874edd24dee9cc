//! Whole-data (non-sampling) losses, the efficient references of the survey's non-sampling family: no
//! negatives are drawn, the loss covers every candidate in closed form.
//! - `enmf` (recommendation; Chen et al., "Efficient Neural Matrix Factorization without Sampling for
//!   Recommendation", TOIS 2020, and EHCF, AAAI 2020): the weighted squared loss over all user–item pairs,
//!   Σ_{(u,i) ∈ R} ((1 − c₀) ŷ²_ui − 2 ŷ_ui) + c₀ Σ_u Σ_i ŷ²_ui, where the second sum is computed as
//!   Σ_{d,d'} (Σ_u p_ud p_ud')(Σ_i q_id q_id'): O((|U| + |I|) d²) per epoch instead of O(|U| |I| d). Batches
//!   are of (user, item) pairs, so each row carries its user's whole-data term with weight 1 / |R_u|:
//!   over an epoch every user's term counts once, as in the paper's user batches. Dot-product models only.
//! - `one-vs-all` (knowledge graphs; LibKGE's 1vsAll, Lacroix et al. 2018): cross-entropy of the answer
//!   against every entity, both sides of every training triple every epoch.
//! - `k-vs-all` (knowledge graphs; LibKGE's KvsAll, Dettmers et al. 2018): binary cross-entropy against
//!   every entity with every known training answer of the query as a 1, each query weighted 1 / its number
//!   of answers so it counts once per epoch.
//! - `gae` (graphs; Kipf & Welling, "Variational Graph Auto-Encoders", 2016): binary cross-entropy of
//!   every node pair against the training adjacency with self-loops (A + I), the ones weighted by
//!   pos_weight = (N² − |A + I|) / |A + I|, as GAE's reference code; rows weighted 1 / (the node's
//!   training edges) so over an epoch every node's row counts once, as in GAE's full-batch loss. GAE's
//!   `norm` factor, a constant multiple of the loss, is left out (Adam is invariant to it).
//!
//! All of them ignore the ratio (one cell per seed, ratio `all`) and the cell's sampled-negative loss.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{
    Batch, Corruption, Full, FullConfig, NegativeItems, Negatives, Objective, SampleContext,
    Sampler,
};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnmfConfig {
    /// c₀, the weight of every unobserved pair (ENMF's uniform negative weight).
    pub negative_weight: f64,
}

impl Default for EnmfConfig {
    fn default() -> Self {
        EnmfConfig {
            negative_weight: 0.1,
        }
    }
}

impl DeclaredSampler for EnmfConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "enmf",
            family: "non-sampling",
            needs: "every candidate through the Gram matrix (no sampling)",
            description: "non-sampling: ENMF/EHCF's weighted squared loss over all user–item pairs in O((|U| + |I|) d²) (Chen et al. 2020); dot-product models; ratio ignored; negative_weight = 0.1",
            version: 1,
            same_at_k1: None,
            ratio_free: true,
            domains: &["rec"],
            own_loss: Some("enmf"),
            per_pair: false,
            cost: Cost {
                at_k1: 1.3,
                per_extra_negative: 0.0,
            },
    };

    fn tag(&self) -> String {
        format!("enmf-c{}", self.negative_weight)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        if !(self.negative_weight > 0.0 && self.negative_weight < 1.0) {
            return vec![(
                "negative_weight",
                format!("must be in (0, 1) (got {})", self.negative_weight),
            )];
        }
        Vec::new()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Enmf::new(self, data)?))
    }

    /// Nothing beyond the per-batch part every sampler has: closed-form sums over the batch's rows (not yet estimated).
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OneVsAllConfig {}

impl DeclaredSampler for OneVsAllConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "one-vs-all",
            family: "non-sampling",
            needs: "every entity scored (no sampling)",
            description: "non-sampling: cross-entropy of the answer against every entity, both sides of every triple (LibKGE 1vsAll); ratio ignored; no parameters",
            version: 1,
            same_at_k1: None,
            ratio_free: true,
            domains: &["kg"],
            own_loss: Some("1vsall-ce"),
            per_pair: false,
            cost: Cost {
                at_k1: 10.0,
                per_extra_negative: 0.0,
            },
    };

    fn tag(&self) -> String {
        "one-vs-all".into()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(AllEntities::new(false, data)?))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.whole_pool()]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KvsAllConfig {}

impl DeclaredSampler for KvsAllConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "k-vs-all",
            family: "non-sampling",
            needs: "every entity scored (no sampling)",
            description: "non-sampling: binary cross-entropy against every entity, every training answer of the query a 1 (LibKGE KvsAll); ratio ignored; no parameters",
            version: 2,
            same_at_k1: None,
            ratio_free: true,
            domains: &["kg"],
            own_loss: Some("kvsall-bce"),
            per_pair: false,
            cost: Cost {
                at_k1: 10.0,
                per_extra_negative: 0.0,
            },
    };

    fn tag(&self) -> String {
        "k-vs-all".into()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(AllEntities::new(true, data)?))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.whole_pool()]
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaeConfig {}

impl DeclaredSampler for GaeConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "gae",
            family: "non-sampling",
            needs: "every node pair scored (no sampling)",
            description: "non-sampling: GAE's weighted binary cross-entropy over the whole adjacency with self-loops, ones weighted by non-edges / edges (Kipf & Welling 2016); ratio ignored; no parameters",
            version: 2,
            same_at_k1: None,
            ratio_free: true,
            domains: &["graph"],
            own_loss: Some("gae-bce"),
            per_pair: false,
            cost: Cost {
                at_k1: 1.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        "gae".into()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(GaeFull::new(self, data)?))
    }

    /// Nothing beyond the per-batch part every sampler has: the whole adjacency's scores (not yet estimated).
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

/// GAE's full-adjacency weighted BCE.
pub struct GaeFull {
    /// Training neighbours and the node itself: the ones of each row.
    ones: QueryItems,
    n_nodes: i64,
    pos_weight: f64,
}

impl GaeFull {
    pub fn new(_c: &GaeConfig, data: &Dataset) -> Result<GaeFull, SamplerError> {
        if data.graph.is_none() {
            return Err(SamplerError::Invalid {
                sampler: "gae",
                message:
                    "reconstructs a node graph's adjacency: it needs a domain of kind \"graph\""
                        .into(),
            });
        }
        let n = data.n_items;
        let mut x = data.train.clone();
        for v in 0..n as u32 {
            x.push(v, v);
        }
        let ones = QueryItems::from_interactions(n, &x);
        let nnz = ones.nnz() as f64;
        Ok(GaeFull {
            pos_weight: ((n * n) as f64 - nnz) / nnz,
            ones,
            n_nodes: n as i64,
        })
    }
}

impl Sampler for GaeFull {
    fn name(&self) -> &'static str {
        "gae"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        _k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        // A row's reconstruction term depends on its node alone: each distinct node is scored once.
        let (nodes, w) = distinct_rows(batch, |q| self.ones.items(q).len() - 1);
        let valid = super::full::known_mask(&self.ones, &nodes, self.n_nodes, cx.device);
        Ok(Negatives {
            items: NegativeItems::All,
            row_weights: Some(w.to_device(cx.device)),
            rows: Some(Tensor::from_slice(&nodes).to_device(cx.device)),
            objective: Objective::KvsAll {
                pos_weight: self.pos_weight,
            },
            ..Negatives::ids(Tensor::new()).with_valid(valid)
        })
    }
}

/// The batch's distinct queries, sorted, and the weight (U) of each: how often it is a row of the batch
/// over `per_epoch(q)`, the times it is a row in an epoch (its training answers), so that an epoch
/// weighs every query 1 whatever its degree; scaled by U / B, so that a mean over the distinct rows is
/// the mean over the batch's rows.
fn distinct_rows(batch: &Batch, per_epoch: impl Fn(usize) -> usize) -> (Vec<i64>, Tensor) {
    let mut count: std::collections::BTreeMap<i64, u32> = Default::default();
    for &q in batch.queries {
        *count.entry(q).or_default() += 1;
    }
    let scale = count.len() as f32 / batch.len() as f32;
    let w: Vec<f32> = count
        .iter()
        .map(|(&q, &c)| c as f32 * scale / per_epoch(q as usize).max(1) as f32)
        .collect();
    (count.into_keys().collect(), Tensor::from_slice(&w))
}

/// `1 / |training answers|` of each row's query, (B) f32.
fn inverse_counts(known: &QueryItems, batch: &Batch, cx: &SampleContext) -> Tensor {
    let w: Vec<f32> = batch
        .queries
        .iter()
        .map(|&q| 1.0 / known.items(q as usize).len().max(1) as f32)
        .collect();
    Tensor::from_slice(&w).to_device(cx.device)
}

pub struct Enmf {
    negative_weight: f64,
    known: QueryItems,
}

impl Enmf {
    pub fn new(c: &EnmfConfig, data: &Dataset) -> Result<Enmf, SamplerError> {
        if data.kg.is_some() {
            return Err(SamplerError::Invalid {
                sampler: "enmf",
                message: "is the recommendation domain's whole-data loss; use one-vs-all or k-vs-all for knowledge graphs".into(),
            });
        }
        Ok(Enmf {
            negative_weight: c.negative_weight,
            known: data.train_by_query.clone(),
        })
    }
}

impl Sampler for Enmf {
    fn name(&self) -> &'static str {
        "enmf"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        _k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        if cx.model.similarity() != crate::model::Similarity::Dot {
            return Err(SamplerError::Invalid {
                sampler: "enmf",
                message: "factorises the whole-data term through dot products: it needs a dot-product model (mf)".into(),
            });
        }
        let none = Tensor::zeros([batch.len() as i64, 0], (Kind::Int64, cx.device));
        Ok(Negatives {
            row_weights: Some(inverse_counts(&self.known, batch, cx)),
            objective: Objective::WholeData {
                negative_weight: self.negative_weight,
            },
            ..Negatives::ids(none)
        })
    }
}

/// 1vsAll and KvsAll: every entity scored for every row, in one product.
pub struct AllEntities {
    kvs: bool,
    full: Full,
    known: QueryItems,
    n_items: i64,
}

impl AllEntities {
    pub fn new(kvs: bool, data: &Dataset) -> Result<AllEntities, SamplerError> {
        if data.kg.is_none() {
            return Err(SamplerError::Invalid {
                sampler: if kvs { "k-vs-all" } else { "one-vs-all" },
                message: "scores triples against every entity: it needs a domain of kind \"kg\" (enmf is rec's whole-data loss)".into(),
            });
        }
        Ok(AllEntities {
            kvs,
            full: Full::new(&FullConfig {}, data),
            known: data.train_by_query.clone(),
            n_items: data.n_items as i64,
        })
    }
}

impl Sampler for AllEntities {
    fn name(&self) -> &'static str {
        if self.kvs {
            "k-vs-all"
        } else {
            "one-vs-all"
        }
    }

    fn corruption(&self) -> Corruption {
        Corruption::BothSides
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        if self.kvs {
            // A row's term depends on its query alone: each distinct query is scored once, against
            // `full`'s mask (false at its training answers).
            let (queries, w) = distinct_rows(batch, |q| self.known.items(q).len());
            let valid = super::full::known_mask(&self.known, &queries, self.n_items, cx.device);
            return Ok(Negatives {
                items: NegativeItems::All,
                row_weights: Some(w.to_device(cx.device)),
                rows: Some(Tensor::from_slice(&queries).to_device(cx.device)),
                objective: Objective::KvsAll { pos_weight: 1.0 },
                ..Negatives::ids(Tensor::new()).with_valid(valid)
            });
        }
        // `full`'s mask: false at every training answer of the row's query.
        let mut n = self.full.sample(batch, k, cx)?;
        {
            n.objective = Objective::OneVsAll;
        }
        debug_assert!(matches!(n.items, NegativeItems::All));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::whole_data_objective;
    use crate::sampler::contract::Harness;
    use crate::sampler::tests::tiny_graph;

    /// GAE's loss on the batch `queries` from the fixed scores `all` (N, N), scoring the batch's
    /// distinct nodes as the sampler asks, or (`every_row`) every row of the batch as before.
    fn gae_loss(queries: &[i64], all: &Tensor, every_row: bool) -> f64 {
        let data = tiny_graph();
        let mut gae = GaeFull::new(&GaeConfig {}, &data).unwrap();
        let positives: Vec<i64> = queries
            .iter()
            .map(|&q| data.train_by_query.items(q as usize)[0] as i64)
            .collect();
        let mut h = Harness::new(&data, 0);
        let n = h.sample(&mut gae, &data, queries, Some(&positives), 1);
        let (neg, valid, weights) = if every_row {
            let w: Vec<f32> = queries
                .iter()
                .map(|&q| 1.0 / (gae.ones.items(q as usize).len() - 1).max(1) as f32)
                .collect();
            let valid = crate::sampler::full::known_mask(&gae.ones, queries, 10, tch::Device::Cpu);
            (
                all.index_select(0, &Tensor::from_slice(queries)),
                valid,
                Tensor::from_slice(&w),
            )
        } else {
            let rows = n.rows.as_ref().unwrap();
            (
                all.index_select(0, rows),
                n.valid.unwrap(),
                n.row_weights.unwrap(),
            )
        };
        whole_data_objective(&n.objective, &neg, &valid, &weights).double_value(&[])
    }

    #[test]
    fn gae_scores_each_distinct_node_once_and_keeps_the_batchs_loss() {
        tch::manual_seed(1);
        let all = Tensor::randn([10, 10], (Kind::Float, tch::Device::Cpu)) * 3.0;
        // Node 0 four times, node 1 twice: as an epoch meets them, once per training edge.
        let queries = [0i64, 1, 0, 9, 0, 1, 0, 2];
        let (once, every) = (
            gae_loss(&queries, &all, false),
            gae_loss(&queries, &all, true),
        );
        assert!(
            (once - every).abs() < 1e-5 * every.abs(),
            "{once} vs {every}"
        );
        let data = tiny_graph();
        let mut gae = GaeFull::new(&GaeConfig {}, &data).unwrap();
        let n = Harness::new(&data, 0).sample(&mut gae, &data, &queries, None, 1);
        assert_eq!(Vec::<i64>::try_from(n.rows.unwrap()).unwrap(), [0, 1, 2, 9]);
        assert_eq!(n.valid.unwrap().size(), [4, 10]);
    }
}
