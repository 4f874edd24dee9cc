//! The non-sampling reference (as in Chen et al., "Efficient Heterogeneous Collaborative Filtering
//! without Negative Sampling", AAAI 2020; Li et al., "Efficient Non-Sampling Knowledge Graph Embedding",
//! WWW 2021): every candidate of the pool is a negative of every positive, scored in one matrix product,
//! the loss averaged over all of them. Known positives of the query are masked out. The ratio is ignored:
//! this is the quality a sampler would reach with unlimited negatives, where the pool is small enough.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Batch, NegativeItems, Negatives, SampleContext, Sampler};
use crate::data::{Dataset, QueryItems};
use crate::error::SamplerError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FullConfig {}

impl FullConfig {
    pub fn tag(&self) -> String {
        "full".into()
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
        // (row, item) of every known positive of every row's query, set false in an all-true mask.
        let (mut rows, mut cols) = (Vec::new(), Vec::new());
        for (row, &q) in batch.queries.iter().enumerate() {
            for &i in self.known.items(q as usize) {
                rows.push(row as i64);
                cols.push(i as i64);
            }
        }
        let mut valid = Tensor::ones([batch.len() as i64, self.n_items], (Kind::Bool, cx.device));
        if !rows.is_empty() {
            let index = [
                Some(Tensor::from_slice(&rows).to_device(cx.device)),
                Some(Tensor::from_slice(&cols).to_device(cx.device)),
            ];
            let _ = valid.index_put_(&index, &Tensor::zeros([], (Kind::Bool, cx.device)), false);
        }
        Ok(Negatives {
            items: NegativeItems::All,
            ..Negatives::ids(Tensor::new()).with_valid(valid)
        })
    }
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
