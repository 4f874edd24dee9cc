//! Bernoulli corruption (Wang et al., "Knowledge Graph Embedding by Translating on Hyperplanes", AAAI
//! 2014, TransH): uniform entities as negatives, but the side of each training triple that is corrupted
//! is the head with probability tph / (tph + hpt) of its relation (tails per head, heads per tail over the
//! training triples), so a 1-N relation mostly gets corrupted heads and fewer false negatives. Knowledge
//! graphs only: the other samplers corrupt both sides equally.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape};
use serde::{Deserialize, Serialize};

use super::{Batch, Corruption, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BernoulliConfig {
    /// Redraw entities that are training answers of the query.
    pub exclude_positives: bool,
}

impl Default for BernoulliConfig {
    fn default() -> Self {
        BernoulliConfig {
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for BernoulliConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "bernoulli",
            family: "static",
            needs: "relation statistics of the graph (tails per head, heads per tail)",
            description: "uniform entities, the head corrupted with probability tph / (tph + hpt) of the triple's relation, else the tail (TransH, Wang et al. 2014); exclude_positives = true",
            version: 1,
            same_at_k1: None,
            ratio_free: false,
            domains: &["kg"],
            own_loss: None,
            per_pair: false,
            cost: Cost {
                at_k1: 1.0,
                per_extra_negative: 0.15,
            },
    };

    fn tag(&self) -> String {
        if self.exclude_positives {
            "bernoulli".into()
        } else {
            "bernoulli-all".into()
        }
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Bernoulli::new(self, data)?))
    }

    /// Nothing beyond the per-batch part every sampler has: per-relation head/tail rates only.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

pub struct Bernoulli {
    uniform: Uniform,
}

impl Bernoulli {
    pub fn new(c: &BernoulliConfig, data: &Dataset) -> Result<Bernoulli, SamplerError> {
        if data.kg.is_none() {
            return Err(SamplerError::Invalid {
                sampler: "bernoulli",
                message:
                    "corrupts the head or the tail of a triple: it needs a domain of kind \"kg\""
                        .into(),
            });
        }
        let uniform = UniformConfig {
            exclude_positives: c.exclude_positives,
        };
        Ok(Bernoulli {
            uniform: Uniform::new(&uniform, data),
        })
    }
}

impl Sampler for Bernoulli {
    fn name(&self) -> &'static str {
        "bernoulli"
    }

    fn corruption(&self) -> Corruption {
        Corruption::Bernoulli
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        Ok(Negatives::ids(self.uniform.draw(batch, k, cx)))
    }
}
