//! Bernoulli corruption (Wang et al., "Knowledge Graph Embedding by Translating on Hyperplanes", AAAI
//! 2014, TransH): uniform entities as negatives, but the side of each training triple that is corrupted
//! is the head with probability tph / (tph + hpt) of its relation (tails per head, heads per tail over the
//! training triples), so a 1-N relation mostly gets corrupted heads and fewer false negatives. Knowledge
//! graphs only: the other samplers corrupt both sides equally.

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

impl BernoulliConfig {
    pub fn tag(&self) -> String {
        if self.exclude_positives {
            "bernoulli".into()
        } else {
            "bernoulli-all".into()
        }
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
