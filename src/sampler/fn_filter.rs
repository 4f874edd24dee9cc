//! False-negative filtering (after Chen et al., "Incremental False Negative Detection for Contrastive
//! Learning", 2021, and Huynh et al., "Boosting Contrastive Self-Supervised Learning with False Negative
//! Cancellation", WACV 2022): draw k uniform negatives, then drop the ones that look like false
//! negatives — scored above the positive's score minus `margin` (`by = "score"`), or whose embedding's
//! cosine similarity to the positive's is at least `similarity` (`by = "similarity"`, the positive's
//! nearest neighbours). Both detection rules are nsbench's own, and every place that shows the sampler
//! says so: the score rule is in neither paper (under BPR it drops exactly the negatives that violate
//! the ranking, the ones BPR learns from), and the similarity rule simplifies FNC's detection (the mean
//! similarity to several support views of the anchor, its top-k flagged) to one view, the positive, and
//! a threshold. Dropped slots are masked out of the loss (`downweight = 0`, elimination) or
//! kept at `downweight` times an ordinary slot's weight (not renormalised, so it holds at k = 1 too);
//! with `attract = true` they become further positives of the row instead (Huynh et al.'s attraction:
//! under `softmax` the row's loss is the mean of −log p over the positive and the attracted slots, every
//! slot staying in the partition; under `bce` an attracted slot takes the label 1; other losses have no
//! second positive and refuse it).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::{Batch, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FalseNegativeRule {
    /// s(q, c) > s(q, p) − margin.
    Score,
    /// cos(e_c, e_p) ≥ similarity.
    Similarity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FnFilterConfig {
    pub by: FalseNegativeRule,
    /// For `by = "score"`: a negative scored above s(q, p) − margin is a suspected false negative.
    pub margin: f64,
    /// For `by = "similarity"`: a negative this similar (cosine) to the positive is suspected.
    pub similarity: f64,
    /// Weight of a suspected slot relative to the others: 0 drops it (elimination).
    pub downweight: f64,
    /// Train suspected slots as positives (attraction) instead of dropping or downweighting them.
    pub attract: bool,
    pub exclude_positives: bool,
}

impl Default for FnFilterConfig {
    fn default() -> Self {
        FnFilterConfig {
            by: FalseNegativeRule::Score,
            margin: 0.0,
            similarity: 0.9,
            downweight: 0.0,
            attract: false,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for FnFilterConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "fn-filter",
            family: "debiased",
            needs: "model scores (to flag likely false negatives)",
            description: "uniform negatives minus suspected false negatives, dropped (elimination) or kept at downweight × an ordinary weight, or trained as further positives (attraction, Huynh et al. 2022; softmax and bce). The detection rules are nsbench's own: by = score flags s(q, c) > s(q, p) − margin (in neither paper; under bpr it drops exactly the negatives that violate the ranking), by = similarity flags cos(e_c, e_p) ≥ similarity (FNC's support-view detection simplified to one view, the positive, and a threshold instead of its top-k); by = score|similarity, margin = 0, similarity = 0.9, downweight = 0 (drop), attract = false, exclude_positives = true",
            version: 2,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: true,
            cost: Cost {
                at_k1: 1.05,
                per_extra_negative: 0.2,
            },
    };

    fn tag(&self) -> String {
        let rule = match self.by {
            FalseNegativeRule::Score => format!("fn-filter-score{}", self.margin),
            FalseNegativeRule::Similarity => format!("fn-filter-cos{}", self.similarity),
        };
        if self.attract {
            format!("{rule}-attract")
        } else {
            rule
        }
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if !self.margin.is_finite() {
            p.push(("margin", format!("must be finite (got {})", self.margin)));
        }
        if !(-1.0..=1.0).contains(&self.similarity) {
            p.push((
                "similarity",
                format!("must be in [-1, 1] (got {})", self.similarity),
            ));
        }
        if !(0.0..=1.0).contains(&self.downweight) {
            p.push((
                "downweight",
                format!("must be in [0, 1] (got {})", self.downweight),
            ));
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(FnFilter::new(self, data)))
    }

    /// Nothing beyond the negatives' ids and embeddings that every sampler has per batch.
    fn memory(&self, _: &Shape) -> Vec<(String, f64)> {
        Vec::new()
    }
}

pub struct FnFilter {
    config: FnFilterConfig,
    uniform: Uniform,
}

impl FnFilter {
    pub fn new(c: &FnFilterConfig, data: &Dataset) -> FnFilter {
        FnFilter {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
        }
    }

    /// (B, k) bool: which drawn negatives look like false negatives.
    fn suspected(
        &self,
        batch: &Batch,
        ids: &Tensor,
        cx: &SampleContext,
    ) -> Result<Tensor, SamplerError> {
        let _no_grad = tch::no_grad_guard();
        Ok(match self.config.by {
            FalseNegativeRule::Score => {
                let neg = cx.model.score_candidates(batch.queries_t, ids)?;
                let pos = cx
                    .model
                    .score_candidates(batch.queries_t, &batch.positives_t.unsqueeze(1))?;
                neg.gt_tensor(&(pos - self.config.margin))
            }
            FalseNegativeRule::Similarity => {
                let unit = |t: Tensor| {
                    let norm = t.norm_scalaropt_dim(2, [-1], true).clamp_min(1e-12);
                    t / norm
                };
                let neg = unit(cx.model.items(ids)); // (B, k, D)
                let pos = unit(cx.model.items(batch.positives_t)).unsqueeze(1);
                (neg * pos)
                    .sum_dim_intlist(-1, false, Kind::Float)
                    .ge(self.config.similarity)
            }
        })
    }
}

impl Sampler for FnFilter {
    fn name(&self) -> &'static str {
        "fn-filter"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let ids = self.uniform.draw(batch, k, cx);
        let suspected = self.suspected(batch, &ids, cx)?;
        let negatives = Negatives::ids(ids);
        if self.config.attract {
            if !cx.loss.attracts() {
                return Err(SamplerError::Invalid {
                    sampler: "fn-filter",
                    message: format!(
                        "attract = true makes suspected negatives positives, which the {} loss has no \
                         place for: use softmax or bce, or attract = false",
                        cx.loss.kind()
                    ),
                });
            }
            return Ok(Negatives {
                attract: Some(suspected),
                ..negatives
            });
        }
        if self.config.downweight == 0.0 {
            return Ok(negatives.with_valid(suspected.logical_not()));
        }
        // Suspected slots count `downweight` of an ordinary one. Not renormalised: a row of suspects
        // weighs less in the loss (at k = 1 a suspect's whole term is scaled down).
        let w = suspected.to_kind(Kind::Float) * (self.config.downweight - 1.0) + 1.0;
        Ok(negatives.with_weights(w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{sample_with_model, tiny_data};

    #[test]
    fn masks_exactly_the_negatives_scored_above_the_positive() {
        let data = tiny_data();
        let mut s = FnFilter::new(
            &FnFilterConfig {
                exclude_positives: false,
                ..Default::default()
            },
            &data,
        );
        let queries = [0i64, 1, 2];
        let (negatives, scores) = sample_with_model(&mut s, &data, &queries, 40, 3);
        let ids = Vec::<Vec<i64>>::try_from(negatives.drawn_ids().unwrap()).unwrap();
        let valid = Vec::<Vec<bool>>::try_from(negatives.valid.unwrap()).unwrap();
        let (mut kept, mut dropped) = (0, 0);
        for (row, &q) in queries.iter().enumerate() {
            let p = *data.train_by_query.items(q as usize).last().unwrap() as usize;
            for (&i, &ok) in ids[row].iter().zip(&valid[row]) {
                assert_eq!(
                    ok,
                    scores[row][i as usize] <= scores[row][p],
                    "q {q} item {i}"
                );
                if ok {
                    kept += 1
                } else {
                    dropped += 1
                }
            }
        }
        assert!(
            kept > 0 && dropped > 0,
            "the random model puts items on both sides"
        );
    }

    #[test]
    fn attraction_marks_the_suspects_as_positives_and_refuses_a_loss_without_room_for_them() {
        let data = tiny_data();
        let c = FnFilterConfig {
            attract: true,
            exclude_positives: false,
            ..Default::default()
        };
        let mut h = crate::sampler::tests::Harness::new(&data, 3);
        h.loss = crate::loss::LossConfig::Softmax { temperature: 1.0 };
        let negatives = h.sample(&mut FnFilter::new(&c, &data), &data, &[0, 1, 2], None, 40);
        let attract = Vec::<Vec<bool>>::try_from(negatives.attract.as_ref().unwrap()).unwrap();
        assert!(
            negatives.valid.is_none() && negatives.weights.is_none(),
            "nothing dropped"
        );
        let n: usize = attract.iter().flatten().filter(|&&a| a).count();
        assert!(n > 0 && n < 120, "some, not all, are attracted ({n})");
        h.loss = crate::loss::LossConfig::Bpr;
        let Err(e) = h.try_sample(&mut FnFilter::new(&c, &data), &data, &[0, 1], None, 4) else {
            panic!("bpr has no room for a second positive")
        };
        let e = e.to_string();
        assert!(e.contains("attract") && e.contains("bpr"), "{e}");
    }

    #[test]
    fn downweights_instead_of_dropping() {
        let data = tiny_data();
        let c = FnFilterConfig {
            by: FalseNegativeRule::Similarity,
            similarity: 0.0,
            downweight: 0.5,
            exclude_positives: false,
            ..Default::default()
        };
        let (negatives, _) = sample_with_model(&mut FnFilter::new(&c, &data), &data, &[2], 40, 3);
        let w = Vec::<Vec<f32>>::try_from(negatives.weights.unwrap()).unwrap();
        let (lo, hi) = w[0]
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        assert_eq!(
            (lo, hi),
            (0.5, 1.0),
            "suspected slots weigh half an ordinary one"
        );
    }

    #[test]
    fn downweighting_survives_a_single_negative() {
        // At k = 1 a suspected negative must still weigh `downweight`, not be renormalised back to 1.
        let data = tiny_data();
        let c = FnFilterConfig {
            by: FalseNegativeRule::Similarity,
            similarity: -1.0,
            downweight: 0.25,
            exclude_positives: false,
            ..Default::default()
        };
        let (negatives, _) =
            sample_with_model(&mut FnFilter::new(&c, &data), &data, &[0, 1, 2], 1, 3);
        let w = Vec::<Vec<f32>>::try_from(negatives.weights.unwrap()).unwrap();
        assert_eq!(
            w,
            vec![vec![0.25]; 3],
            "every negative is suspected at similarity -1"
        );
    }
}
