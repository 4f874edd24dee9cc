//! The non-sampling reference (as in Chen et al., "Efficient Heterogeneous Collaborative Filtering
//! without Negative Sampling", AAAI 2020; Li et al., "Efficient Non-Sampling Knowledge Graph Embedding",
//! WWW 2021): every candidate of the pool is a negative of every positive, scored in one matrix product,
//! the loss averaged over all of them. Known positives of the query are masked out. The ratio is ignored:
//! this is the quality a sampler would reach with unlimited negatives, where the pool is small enough.

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Batch, NegativeItems, Negatives, SampleContext, Sampler};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FullConfig {}

impl DeclaredSampler for FullConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "full",
            family: "non-sampling",
            needs: "every candidate scored (no sampling)",
            description: "non-sampling reference: every non-positive candidate is a negative (whole-pool loss); ratio ignored; no parameters",
            version: 1,
            same_at_k1: None,
            ratio_free: true,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: false,
            cost: Cost {
                at_k1: 25.0,
                per_extra_negative: 0.0,
            },
    };

    fn tag(&self) -> String {
        "full".into()
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Full::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![s.whole_pool()]
    }
}

pub struct Full {
    n_items: i64,
    known: QueryItems,
}

impl Full {
    pub fn new(_c: &FullConfig, data: &Dataset) -> Full {
        Full {
            n_items: data.n_items as i64,
            known: data.train_by_query.clone(),
        }
    }
}

impl Sampler for Full {
    fn name(&self) -> &'static str {
        "full"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        _k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let valid = known_mask(&self.known, batch.queries, self.n_items, cx.device);
        Ok(Negatives {
            items: NegativeItems::All,
            ..Negatives::ids(Tensor::new()).with_valid(valid)
        })
    }
}

/// (rows, n_items) bool: false at every item `known` holds for the row's query, true elsewhere.
pub(super) fn known_mask(
    known: &QueryItems,
    queries: &[i64],
    n_items: i64,
    device: tch::Device,
) -> Tensor {
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    for (row, &q) in queries.iter().enumerate() {
        for &i in known.items(q as usize) {
            rows.push(row as i64);
            cols.push(i as i64);
        }
    }
    let mut valid = Tensor::ones([queries.len() as i64, n_items], (Kind::Bool, device));
    if !rows.is_empty() {
        let index = [
            Some(Tensor::from_slice(&rows).to_device(device)),
            Some(Tensor::from_slice(&cols).to_device(device)),
        ];
        let _ = valid.index_put_(&index, &Tensor::zeros([], (Kind::Bool, device)), false);
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};

    #[test]
    fn every_item_but_the_known_positives_is_a_negative() {
        let data = tiny_data();
        let mut s = Full::new(&FullConfig::default(), &data);
        let (negatives, _) = sample_with_model(&mut s, &data, &[0, 1, 2], 1, 0);
        assert!(matches!(negatives.items, NegativeItems::All));
        let valid = Vec::<Vec<bool>>::try_from(negatives.valid.unwrap()).unwrap();
        for (q, row) in [0usize, 1, 2].iter().zip(&valid) {
            assert_eq!(row.len(), 10);
            for (i, &ok) in row.iter().enumerate() {
                assert_eq!(
                    ok,
                    !data.train_by_query.contains(*q, i as u32),
                    "user {q} item {i}"
                );
            }
        }
    }
}
