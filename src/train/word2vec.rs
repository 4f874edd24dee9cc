//! word2vec's own update (`[train] optimizer = "word2vec"`): each (centre, context) pair and its k
//! negatives take one plain SGD step on the summed logistic loss −log σ(s⁺) − Σ log σ(−s⁻), on the host,
//! in the epoch's order, the learning rate falling linearly from `lr` to `FINAL_LR` over the whole run as
//! gensim's `alpha` → `min_alpha` does (Mikolov et al. 2013; word2vec.c and gensim's
//! `fast_sentence_sg_neg`). The sampler still draws the negatives of a whole batch at once, so every
//! sampler whose negatives are ids (one row of k per pair) runs under it unchanged; the tables are the
//! model's own tensors, written in place, so evaluation and score-reading samplers see every update.
//!
//! One thread, in order: the same suite gives the same numbers (word2vec's Hogwild threads do not).

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use crate::model::{dot, ContrastiveModel, HostTablesMut};
use crate::sampler::{NegativeItems, Negatives, Objective};

/// Whether its per-pair update takes `kind`'s negatives: ids, one row of k per pair, under the domain's
/// loss (the sampler's declared `per_pair`, which the sampler contract test checks).
pub fn takes(kind: &str) -> bool {
    crate::sampler::info(kind).is_some_and(|i| i.per_pair)
}

/// The samplers it takes, in the registry's order.
pub fn samplers() -> Vec<&'static str> {
    crate::sampler::REGISTRY
        .iter()
        .filter(|i| i.per_pair)
        .map(|i| i.kind)
        .collect()
}

/// gensim's `min_alpha`: where the learning rate ends (or `lr`, if that is lower).
pub const FINAL_LR: f64 = 1e-4;

/// The learning-rate schedule and the host tables of one cell's training.
pub struct PerPairSgd {
    start_lr: f64,
    epochs: u32,
    l2: f32,
    /// The context gradient accumulated for the centre row (word2vec's `neu1e`).
    work: Vec<f32>,
    /// Scratch: one batch's negatives and their weights (1 when the sampler gives none), and scores.
    ids: Vec<i64>,
    weights: Vec<f32>,
    valid: Vec<bool>,
    attract: Vec<bool>,
    scores: Vec<f32>,
}

impl PerPairSgd {
    pub fn new(start_lr: f64, l2: f64, epochs: u32) -> PerPairSgd {
        PerPairSgd {
            start_lr,
            epochs,
            l2: l2 as f32,
            work: Vec::new(),
            ids: Vec::new(),
            weights: Vec::new(),
            valid: Vec::new(),
            attract: Vec::new(),
            scores: Vec::new(),
        }
    }

    /// The learning rate at `progress` ∈ [0, 1] of the whole run (epochs done + the share of this one).
    pub fn lr_at(&self, progress: f64) -> f32 {
        let end = FINAL_LR.min(self.start_lr);
        (self.start_lr - (self.start_lr - end) * progress.clamp(0.0, 1.0)) as f32
    }

    /// One SGD step per pair of the batch (`queries`, `positives`, the sampler's `negatives`), at the
    /// learning rate of `epoch` (1-based) at the share `within` of it. Returns the batch's summed
    /// loss and the negatives' scores before their update (B, k), for the sampler's `observe`.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        model: &dyn ContrastiveModel,
        queries: &[i64],
        positives: &[i64],
        negatives: &Negatives,
        epoch: u32,
        within: f64,
    ) -> Result<(f64, Tensor)> {
        let NegativeItems::Ids(ids) = &negatives.items else {
            bail!(
                "optimizer \"word2vec\" updates pair by pair and takes negatives drawn as ids, one row per \
                 pair; this sampler gives {}: train it with adam or sgd",
                negatives.items.describe()
            );
        };
        if !matches!(negatives.objective, Objective::Domain) {
            bail!(
                "optimizer \"word2vec\" trains the logistic loss; this sampler brings an objective of its \
                 own: train it with adam or sgd"
            );
        }
        let b = queries.len();
        let k = if b == 0 { 0 } else { ids.size()[1] as usize };
        let host = |t: &Tensor, kind: Kind| t.to_device(Device::Cpu).to_kind(kind).contiguous();
        self.ids.resize(b * k, 0);
        host(ids, Kind::Int64).copy_data(&mut self.ids, b * k);
        self.weights.clear();
        self.weights.resize(b * k, 1.0);
        if let Some(w) = &negatives.weights {
            host(w, Kind::Float).copy_data(&mut self.weights, b * k);
        }
        self.valid.clear();
        self.valid.resize(b * k, true);
        if let Some(v) = &negatives.valid {
            host(v, Kind::Bool).copy_data(&mut self.valid, b * k);
        }
        self.attract.clear();
        self.attract.resize(b * k, false);
        if let Some(a) = &negatives.attract {
            host(a, Kind::Bool).copy_data(&mut self.attract, b * k);
        }
        self.scores.clear();
        self.scores.resize(b * k, 0.0);
        let Some(mut tables) = model.host_tables_mut() else {
            bail!(
                "optimizer \"word2vec\" updates the model's tables in host memory: it needs a skip-gram \
                 (`sgns`) model on the CPU"
            );
        };
        self.work.resize(tables.dim, 0.0);
        let epoch_share = 1.0 / self.epochs.max(1) as f64;
        let progress = (epoch.saturating_sub(1) as f64 + within) * epoch_share;
        let lr = self.lr_at(progress);
        let rows = Rows {
            queries,
            positives,
            k,
            ids: &self.ids,
            weights: &self.weights,
            valid: &self.valid,
            attract: &self.attract,
        };
        #[cfg(target_arch = "x86_64")]
        let loss = if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU features the function is compiled for were just detected.
            unsafe { rows.update_avx2(&mut tables, &mut self.work, &mut self.scores, lr, self.l2) }
        } else {
            rows.update::<false>(&mut tables, &mut self.work, &mut self.scores, lr, self.l2)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let loss = rows.update::<false>(&mut tables, &mut self.work, &mut self.scores, lr, self.l2);
        let scores = Tensor::from_slice(&self.scores).view([b as i64, k as i64]);
        Ok((loss, scores))
    }
}

/// A batch's pairs and their negatives, flat (k per pair).
struct Rows<'a> {
    queries: &'a [i64],
    positives: &'a [i64],
    k: usize,
    ids: &'a [i64],
    weights: &'a [f32],
    valid: &'a [bool],
    attract: &'a [bool],
}

impl Rows<'_> {
    /// Every pair's step in order; returns the summed loss. `FMA`: fused multiply-adds (only where the
    /// CPU has them: elsewhere `mul_add` is a slow library call).
    #[inline(always)]
    fn update<const FMA: bool>(
        &self,
        tables: &mut HostTablesMut<'_>,
        work: &mut [f32],
        scores: &mut [f32],
        lr: f32,
        l2: f32,
    ) -> f64 {
        let k = self.k;
        let mut loss = 0.0f64;
        for (row, (&q, &p)) in self.queries.iter().zip(self.positives).enumerate() {
            let slots = row * k..(row + 1) * k;
            loss += pair_step::<FMA>(
                tables,
                work,
                q as usize,
                p as usize,
                Slots {
                    ids: &self.ids[slots.clone()],
                    weights: &self.weights[slots.clone()],
                    valid: &self.valid[slots.clone()],
                    attract: &self.attract[slots.clone()],
                    scores: &mut scores[slots],
                },
                lr,
                l2,
            );
        }
        loss
    }

    /// `update` compiled for 256-bit vectors with fused multiply-adds (the dot products and row updates
    /// are its whole cost).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn update_avx2(
        &self,
        tables: &mut HostTablesMut<'_>,
        work: &mut [f32],
        scores: &mut [f32],
        lr: f32,
        l2: f32,
    ) -> f64 {
        self.update::<true>(tables, work, scores, lr, l2)
    }
}

/// One pair's negatives: their ids, weights and validity, and where their scores go.
struct Slots<'a> {
    ids: &'a [i64],
    weights: &'a [f32],
    valid: &'a [bool],
    /// Slots trained as further positives (label 1: false-negative attraction).
    attract: &'a [bool],
    scores: &'a mut [f32],
}

/// word2vec's update of one pair: for the positive (label 1) and each negative (label 0) g = lr (label −
/// σ(s)); the context row moves by g·h and the centre row h, after all of them, by Σ g·context (the
/// contexts as they were before their own update, as word2vec). A negative equal to the positive is
/// skipped, as word2vec does. With an L2 penalty each row used also decays by lr·l2 (its gradient,
/// the negatives' share 1/k as the batched loss weighs them). Returns the pair's loss.
#[inline(always)]
fn pair_step<const FMA: bool>(
    t: &mut HostTablesMut<'_>,
    neu1e: &mut [f32],
    q: usize,
    p: usize,
    slots: Slots<'_>,
    lr: f32,
    l2: f32,
) -> f64 {
    let d = t.dim;
    let k = slots.ids.len();
    neu1e.fill(0.0);
    let h = q * d..(q + 1) * d;
    let centre = &t.queries[h.clone()];
    let positive = &mut t.items[p * d..(p + 1) * d];
    let mut loss = PairLoss::default();
    let (s, e) = target_step::<FMA>(centre, positive, neu1e, true, 1.0, lr, l2);
    loss.add(s, e, true, 1.0);
    let negative_decay = if k > 0 { l2 / k as f32 } else { 0.0 };
    for j in 0..k {
        let c = slots.ids[j] as usize;
        if !slots.valid[j] || c == p {
            slots.scores[j] = f32::NAN;
            continue;
        }
        let context = &mut t.items[c * d..(c + 1) * d];
        let (w, positive) = (slots.weights[j], slots.attract[j]);
        let (s, e) = target_step::<FMA>(centre, context, neu1e, positive, w, lr, negative_decay);
        slots.scores[j] = s;
        loss.add(s, e, positive, w);
    }
    let centre = &mut t.queries[h];
    if l2 > 0.0 {
        scale(1.0 - lr * l2, centre);
    }
    axpy::<FMA>(1.0, neu1e, centre);
    loss.value()
}

/// One target of a pair (the positive, or a negative): g = lr · weight · (label − σ(s)); the centre's
/// gradient g·context is gathered into `neu1e`, the context moves by g·centre (after its L2 decay).
/// Returns the score s and e^−s.
#[inline(always)]
fn target_step<const FMA: bool>(
    centre: &[f32],
    context: &mut [f32],
    neu1e: &mut [f32],
    positive: bool,
    weight: f32,
    lr: f32,
    decay: f32,
) -> (f32, f32) {
    let s = dot::<FMA>(centre, context);
    let e = (-s).exp();
    let label = if positive { 1.0 } else { 0.0 };
    let g = (label - 1.0 / (1.0 + e)) * lr * weight;
    axpy::<FMA>(g, context, neu1e);
    if decay > 0.0 {
        scale(1.0 - lr * decay, context);
    }
    axpy::<FMA>(g, centre, context);
    (s, e)
}

/// A pair's loss Σ weight · −log σ(±s), with one logarithm per pair: −log σ(s) = log(1 + e^−s) and
/// −log σ(−s) = s + log(1 + e^−s), so the unit-weight terms' logarithms are one logarithm of the
/// product of their (1 + e^−s) (at most six factors of at most e^30: no overflow in f64).
#[derive(Default)]
struct PairLoss {
    sum: f64,
    product: Option<f64>,
}

impl PairLoss {
    #[inline(always)]
    fn add(&mut self, s: f32, e: f32, positive: bool, weight: f32) {
        let sign = if positive { 0.0 } else { s as f64 };
        if s < -30.0 {
            // log(1 + e^−s) = −s to f64 precision.
            self.sum += weight as f64 * (sign - s as f64);
        } else if weight == 1.0 {
            self.sum += sign;
            *self.product.get_or_insert(1.0) *= 1.0 + e as f64;
        } else {
            self.sum += weight as f64 * (sign + (e as f64).ln_1p());
        }
    }

    #[inline(always)]
    fn value(&self) -> f64 {
        self.sum + self.product.map_or(0.0, f64::ln)
    }
}

/// y += a·x.
#[inline(always)]
fn axpy<const FMA: bool>(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y = if FMA { x.mul_add(a, *y) } else { *y + a * x };
    }
}

#[inline(always)]
fn scale(a: f32, x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v *= a);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mf, MfConfig};
    use tch::nn;

    /// A 6-word model whose two tables are random (word2vec starts its contexts at zero, which would
    /// hide a wrong centre update).
    fn model(vs: &nn::VarStore) -> Mf {
        let c = MfConfig {
            dim: 12,
            init_std: 0.3,
        };
        Mf::new(&vs.root(), &c, 6, 6, 3)
    }

    /// The summed logistic loss of one pair, + l2/2 (‖h‖² + ‖c⁺‖² + mean ‖c⁻‖²), through libtorch.
    fn torch_loss(m: &Mf, q: i64, p: i64, negs: &[i64], l2: f64) -> Tensor {
        let h = m.queries(&Tensor::from_slice(&[q]));
        let pos = m.items(&Tensor::from_slice(&[p]));
        let neg = m.items(&Tensor::from_slice(negs));
        let s_pos = (&h * &pos).sum(Kind::Float);
        let s_neg = (&h * &neg).sum_dim_intlist(1, false, Kind::Float);
        let loss = -s_pos.log_sigmoid() - (-s_neg).log_sigmoid().sum(Kind::Float);
        let penalty = h.square().sum(Kind::Float)
            + pos.square().sum(Kind::Float)
            + neg.square().sum(Kind::Float) / negs.len() as f64;
        loss + penalty * (l2 / 2.0)
    }

    #[test]
    fn one_pair_takes_exactly_one_gradient_step_of_the_summed_logistic_loss_and_its_penalty() {
        let (q, p, negs, lr, l2) = (1i64, 2i64, [0i64, 4, 5], 0.05f64, 0.1f64);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(&vs);
        let before: Vec<Vec<f32>> = vs
            .trainable_variables()
            .iter()
            .map(|t| Vec::try_from(t.reshape([-1])).unwrap())
            .collect();
        // `step` reports the logistic loss; the penalty enters only the gradient.
        let logistic = f64::try_from(torch_loss(&m, q, p, &negs, 0.0)).unwrap();
        let loss = torch_loss(&m, q, p, &negs, l2);
        loss.backward();
        let grads: Vec<Vec<f32>> = vs
            .trainable_variables()
            .iter()
            .map(|t| Vec::try_from(t.grad().reshape([-1])).unwrap())
            .collect();

        // lr_at(0) is the start rate: the first pair of the first epoch.
        let mut sgd = PerPairSgd::new(lr, l2, 1);
        let negatives = Negatives::ids(Tensor::from_slice(&negs).view([1, 3]));
        let (sum, scores) = tch::no_grad(|| sgd.step(&m, &[q], &[p], &negatives, 1, 0.0)).unwrap();
        assert!((sum - logistic).abs() < 1e-5, "loss {sum}, want {logistic}");
        assert_eq!(scores.size(), [1, 3]);
        let after: Vec<Vec<f32>> = vs
            .trainable_variables()
            .iter()
            .map(|t| Vec::try_from(t.reshape([-1])).unwrap())
            .collect();
        for ((b, a), g) in before.iter().zip(&after).zip(&grads) {
            for ((b, a), g) in b.iter().zip(a).zip(g) {
                let want = b - lr as f32 * g;
                assert!(
                    (a - want).abs() < 1e-5,
                    "updated {a}, want {want} (before {b}, gradient {g})"
                );
            }
        }
    }

    #[test]
    fn the_rate_falls_linearly_to_gensims_min_alpha_and_shared_negatives_are_refused() {
        let sgd = PerPairSgd::new(0.025, 0.0, 4);
        assert!((sgd.lr_at(0.0) - 0.025).abs() < 1e-9);
        assert!((sgd.lr_at(0.5) - (0.025 + 1e-4) / 2.0).abs() < 1e-7);
        assert!((sgd.lr_at(1.0) - 1e-4).abs() < 1e-9);
        assert!(
            (PerPairSgd::new(1e-5, 0.0, 1).lr_at(1.0) - 1e-5).abs() < 1e-12,
            "never rises"
        );

        let vs = nn::VarStore::new(Device::Cpu);
        let m = model(&vs);
        let shared = Negatives {
            items: NegativeItems::Shared {
                ids: Tensor::from_slice(&[0i64, 1]),
                embeddings: None,
            },
            ..Negatives::ids(Tensor::from_slice(&[0i64]))
        };
        let e = PerPairSgd::new(0.025, 0.0, 1)
            .step(&m, &[1], &[2], &shared, 1, 0.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shared by the whole batch"), "{e}");
    }
}
