//! Uniform negatives (Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback", UAI
//! 2009): every item of the pool equally likely; with `exclude_positives` (the paper's j ∉ I⁺_u, and the
//! default) an item the user interacted with in training is redrawn.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{draw_ids, Batch, KnownPositives, Negatives, SampleContext, Sampler};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UniformConfig {
    /// Redraw items the query has among its training positives.
    pub exclude_positives: bool,
}

impl Default for UniformConfig {
    fn default() -> Self {
        UniformConfig {
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for UniformConfig {
    const INFO: SamplerInfo = SamplerInfo {
        kind: "uniform",
        family: "static",
        needs: "nothing",
        description:
            "uniform over the item pool (BPR); exclude_positives = true|false (default true)",
        version: 1,
        same_at_k1: None,
        ratio_free: false,
        domains: ALL_DOMAINS,
        own_loss: None,
        per_pair: true,
        cost: Cost {
            at_k1: 1.0,
            per_extra_negative: 0.15,
        },
    };

    fn tag(&self) -> String {
        if self.exclude_positives {
            "uniform".into()
        } else {
            "uniform-all".into()
        }
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Uniform::new(self, data)))
    }

    /// Nothing beyond the negatives' ids and embeddings that every sampler has per batch.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

pub struct Uniform {
    n_items: u32,
    known: Option<KnownPositives>,
}

impl Uniform {
    pub fn new(c: &UniformConfig, data: &Dataset) -> Uniform {
        Uniform {
            n_items: data.n_items as u32,
            known: c.exclude_positives.then(|| KnownPositives::new(data)),
        }
    }

    /// `count` uniform candidates for every positive of `batch`, (B, count) i64: the draw every
    /// candidate-scoring sampler (dns, bounded, self-adversarial) starts from.
    pub fn draw(&self, batch: &Batch, count: usize, cx: &mut SampleContext) -> Tensor {
        let n = self.n_items;
        let rng = &mut *cx.rng;
        draw_ids(batch, count, self.known.as_ref(), cx.device, || {
            rng.random_range(0..n)
        })
    }

    /// The known positives it redraws, when it excludes them.
    pub fn known(&self) -> Option<&KnownPositives> {
        self.known.as_ref()
    }

    /// One candidate for query `q`, known positives redrawn as in `draw_ids`.
    #[inline]
    pub fn draw_one(&self, q: usize, rng: &mut impl Rng) -> u32 {
        let n = self.n_items;
        match &self.known {
            Some(known) => known.redraw_known(q, || rng.random_range(0..n)),
            None => rng.random_range(0..n),
        }
    }

    /// `count` candidates for each of `queries`, flat, on the host (samplers that keep per-query state).
    pub fn draw_for(&self, queries: &[i64], count: usize, rng: &mut impl Rng) -> Vec<u32> {
        let mut out = Vec::with_capacity(queries.len() * count);
        for &q in queries {
            out.extend((0..count).map(|_| self.draw_one(q as usize, rng)));
        }
        out
    }
}

impl Sampler for Uniform {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        Ok(Negatives::ids(self.draw(batch, k, cx)))
    }
}
