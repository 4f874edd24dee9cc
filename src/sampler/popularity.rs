//! Popularity-biased negatives (Mikolov et al., "Distributed Representations of Words and Phrases",
//! NIPS 2013, α = 0.75; Caselles-Dupré et al., "Word2vec applied to recommendation", RecSys 2018, who
//! tune α, including negative values). P(c) ∝ (count(c) + smoothing)^α over training counts, drawn in
//! O(1) from an alias table. α = 0 is uniform; α < 0 favours rare items. The smoothing keeps items never
//! seen in training drawable and α < 0 finite.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, WITH_INTERACTIONS};
use serde::{Deserialize, Serialize};

use super::{draw_ids, AliasTable, Batch, KnownPositives, Negatives, SampleContext, Sampler};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PopularityConfig {
    pub alpha: f64,
    pub smoothing: f64,
    pub exclude_positives: bool,
}

impl Default for PopularityConfig {
    fn default() -> Self {
        PopularityConfig {
            alpha: 0.75,
            smoothing: 1.0,
            exclude_positives: true,
        }
    }
}

impl PopularityConfig {
    /// The sampling weight of every item.
    pub fn weights(&self, counts: &[u64]) -> Vec<f64> {
        counts
            .iter()
            .map(|&c| (c as f64 + self.smoothing).powf(self.alpha))
            .collect()
    }
}

impl DeclaredSampler for PopularityConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "popularity",
            family: "static",
            needs: "item counts of the training data",
            description: "P(c) ∝ (count(c) + smoothing)^alpha by an alias table (word2vec); alpha = 0.75, smoothing = 1, \
             exclude_positives = true",
            version: 1,
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
        format!("popularity-a{}", self.alpha)
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if !self.alpha.is_finite() {
            p.push((
                "alpha",
                format!("must be a finite number (got {})", self.alpha),
            ));
        }
        if !(self.smoothing > 0.0 && self.smoothing.is_finite()) {
            p.push(("smoothing", format!("must be > 0 (got {})", self.smoothing)));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Popularity::new(self, data)?))
    }

    /// Nothing beyond the per-batch part every sampler has: the alias table: two numbers per item, below the estimate's resolution.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

pub struct Popularity {
    table: AliasTable,
    known: Option<KnownPositives>,
}

impl Popularity {
    pub fn new(c: &PopularityConfig, data: &Dataset) -> Result<Popularity, SamplerError> {
        let table = AliasTable::new(&c.weights(&data.item_counts())).ok_or_else(|| {
            SamplerError::Invalid {
                sampler: "popularity",
                message: format!(
                    "alpha = {} gives weights that cannot be normalised",
                    c.alpha
                ),
            }
        })?;
        Ok(Popularity {
            table,
            known: c.exclude_positives.then(|| KnownPositives::new(data)),
        })
    }
}

impl Sampler for Popularity {
    fn name(&self) -> &'static str {
        "popularity"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let (table, rng) = (&self.table, &mut *cx.rng);
        let ids = draw_ids(batch, k, self.known.as_ref(), cx.device, || {
            table.sample(rng)
        });
        Ok(Negatives::ids(ids))
    }
}
