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
            version: 1,
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
            version: 1,
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
        let valid = super::full::known_mask(&self.ones, batch, self.n_nodes, cx.device);
        // Each node's row weighs 1 / its training edges (it is a row once per edge an epoch).
        let w: Vec<f32> = batch
            .queries
            .iter()
            .map(|&q| 1.0 / (self.ones.items(q as usize).len() - 1).max(1) as f32)
            .collect();
        Ok(Negatives {
            items: NegativeItems::All,
            row_weights: Some(Tensor::from_slice(&w).to_device(cx.device)),
            objective: Objective::KvsAll {
                pos_weight: self.pos_weight,
            },
            ..Negatives::ids(Tensor::new()).with_valid(valid)
        })
    }
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
        // `full`'s mask: false at every training answer of the row's query.
        let mut n = self.full.sample(batch, k, cx)?;
        if self.kvs {
            n.row_weights = Some(inverse_counts(&self.known, batch, cx));
            n.objective = Objective::KvsAll { pos_weight: 1.0 };
        } else {
            n.objective = Objective::OneVsAll;
        }
        debug_assert!(matches!(n.items, NegativeItems::All));
        Ok(n)
    }
}
