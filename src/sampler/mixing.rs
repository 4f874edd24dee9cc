//! Synthesised hard negatives in embedding space.
//! - `mode = "mixgcf"` (Huang et al., "MixGCF: An Improved Training Method for Graph Neural
//!   Network-based Recommender Systems", KDD 2021, positive mixing + hop mixing): for each negative draw M
//!   uniform candidates, mix each with the positive, e'_c = α e_p + (1 − α) e_c with α ~ U(0, 1) (one α per
//!   negative, shared by its candidates, as in the authors' code), and keep the best-scored mix (which,
//!   with a shared α and a dot-product score, is the mix of the best-scored candidate: only that one is
//!   built; under a distance score every mix is scored). With a
//!   one-layer model hop mixing is this one choice. With a graph encoder that has layers (LightGCN), hop
//!   mixing as in the authors' code: one α per negative and layer, at every layer l the candidate whose
//!   layer-l mix scores highest against the query's final embedding is chosen, and the negative is the
//!   mean over layers of the chosen layer-l mixes (the encoder's own layer pooling). Gradients flow
//!   into both embeddings, as in MixGCF.
//! - `mode = "mochi"` (Kalantidis et al., "Hard Negative Mixing for Contrastive Learning", NeurIPS 2020):
//!   the k real negatives (uniform draws) are kept, and synthetic ones are *added*: among the real
//!   negatives' `hardest` N best-scored, s = round(synthetic_share · k) mixes α e_i + (1 − α) e_j of two
//!   of them (α ~ U(0, 1)) and s' = round(query_share · k) mixes β e_q + (1 − β) e_j of the query with
//!   one of them (β ~ U(0, ½)), all synthetic ones detached as in MoCHi: each row has k + s + s'
//!   negatives. Two distinct hard negatives make a pair: with N < 2 (k = 1) there is none and s = 0, so
//!   at k = 1 MoCHi is uniform (s' = round(0.25) = 0 at the default query share). Where the model's embeddings are unit vectors (an image encoder's projection) the mixes
//!   are normalised back onto the sphere, as MoCHi does; with unnormalised dot products (MF) they are
//!   left as mixed. Adaptation: MoCHi ranks the whole queue of keys for the hardest; here the k uniform
//!   draws (and an augmenting encoder embeds each call's images through fresh views).
//!
//! The negatives are embeddings; `origin` carries the candidate each was mixed from (for diagnostics).

use super::declare::{Cost, DeclaredSampler, SamplerInfo, Shape, ALL_DOMAINS};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::{Batch, NegativeItems, Negatives, SampleContext, Sampler, Uniform, UniformConfig};
use crate::data::Dataset;
use crate::error::SamplerError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MixingMode {
    Mixgcf,
    Mochi,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MixingConfig {
    pub mode: MixingMode,
    /// mixgcf: candidates M drawn per negative.
    pub candidates: usize,
    /// mochi: the N hardest real negatives that are mixed (at most k).
    pub hardest: usize,
    /// mochi: synthetic mixes of two hard negatives added, as a share of k.
    pub synthetic_share: f64,
    /// mochi: mixes of the query with a hard negative added, as a share of k.
    pub query_share: f64,
    pub exclude_positives: bool,
}

impl Default for MixingConfig {
    fn default() -> Self {
        MixingConfig {
            mode: MixingMode::Mixgcf,
            candidates: 10,
            hardest: 5,
            synthetic_share: 1.0,
            query_share: 0.25,
            exclude_positives: true,
        }
    }
}

impl DeclaredSampler for MixingConfig {
    const INFO: SamplerInfo = SamplerInfo {
            kind: "mixing",
            family: "hard",
            needs: "model embeddings (mixes positives and candidates)",
            description: "synthesised embedding negatives: positive mixing (MixGCF: best of M mixes per negative), or MoCHi: the k real negatives plus mixes of pairs of two distinct ones of their N hardest and of the query with one (normalised where embeddings are unit vectors, as MoCHi; k + round(synthetic_share · k) + round(query_share · k) negatives a row, at k = 1 only the real one); mode = mixgcf|mochi, candidates = 10, hardest = 5, synthetic_share = 1, query_share = 0.25, exclude_positives = true",
            version: 4,
            same_at_k1: None,
            ratio_free: false,
            domains: ALL_DOMAINS,
            own_loss: None,
            per_pair: false,
            cost: Cost {
                at_k1: 2.0,
                per_extra_negative: 1.5,
            },
    };

    fn tag(&self) -> String {
        match self.mode {
            MixingMode::Mixgcf => format!("mixgcf-m{}", self.candidates),
            MixingMode::Mochi => format!("mochi-m{}-n{}", self.candidates, self.hardest),
        }
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        if self.candidates == 0 {
            p.push(("candidates", "must be >= 1".into()));
        }
        if self.hardest == 0 {
            p.push(("hardest", "must be >= 1".into()));
        }
        for (key, v) in [
            ("synthetic_share", self.synthetic_share),
            ("query_share", self.query_share),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                p.push((key, format!("must be >= 0 (got {v})")));
            }
        }
        p
    }

    fn build(&self, data: &Dataset) -> Result<Box<dyn Sampler>, SamplerError> {
        Ok(Box::new(Mixing::new(self, data)))
    }

    fn memory(&self, s: &Shape) -> Vec<(String, f64)> {
        vec![
            s.candidates(self.candidates),
            (
                "synthesised negative embeddings".into(),
                s.batch * s.k * s.dim * 4.0 * 3.0,
            ),
        ]
    }
}

pub struct Mixing {
    config: MixingConfig,
    uniform: Uniform,
}

impl Mixing {
    pub fn new(c: &MixingConfig, data: &Dataset) -> Mixing {
        Mixing {
            config: c.clone(),
            uniform: Uniform::new(
                &UniformConfig {
                    exclude_positives: c.exclude_positives,
                },
                data,
            ),
        }
    }

    /// `n` uniform mixing coefficients from the sampler's stream, as a tensor of `shape`.
    fn alphas(n: i64, shape: &[i64], cx: &mut SampleContext) -> Tensor {
        let a: Vec<f32> = (0..n).map(|_| cx.rng.random::<f32>()).collect();
        Tensor::from_slice(&a).view(shape).to_device(cx.device)
    }

    fn mixgcf(
        &self,
        batch: &Batch,
        k: i64,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let (b, m) = (batch.len() as i64, self.config.candidates as i64);
        let candidates = self
            .uniform
            .draw(batch, (k * m) as usize, cx)
            .view([b, k, m]);
        if let Some(layers) = cx
            .model
            .item_layers()
            .filter(|l| l.len() > 1 && cx.model.similarity() == crate::model::Similarity::Dot)
        {
            return Self::hop_mixing(batch, &candidates, &layers, cx);
        }
        let alpha = Self::alphas(b * k, &[b, k, 1], cx);
        // With a dot product and one α per negative, s(q, α e_p + (1 − α) e_c) = α s(q, p) + (1 − α)
        // s(q, c): the best mix is the mix with the best-scored candidate, so only candidates are scored.
        // A distance score (TransE, RotatE) is not linear in the candidate: there every mix is scored.
        let scores = if cx.model.similarity() == crate::model::Similarity::Dot {
            cx.model
                .score_candidates(batch.queries_t, &candidates.view([b, k * m]))?
                .view([b, k, m])
        } else {
            let _no_grad = tch::no_grad_guard();
            let e_p = cx.model.items(batch.positives_t).view([b, 1, 1, -1]);
            let a = alpha.unsqueeze(-1); // (B, k, 1, 1)
            let mixes = &a * e_p + (a.ones_like() - &a) * cx.model.items(&candidates); // (B, k, M, D)
            let q = cx.model.queries(batch.queries_t).view([b, 1, 1, -1]);
            cx.model.similarity().f_pairwise(&q, &mixes)?
        };
        let best = candidates
            .gather(2, &scores.argmax(2, true), false)
            .squeeze_dim(2); // (B, k)
        let e_c = cx.model.items(&best); // (B, k, D)
        let e_p = cx.model.items(batch.positives_t).unsqueeze(1);
        let mixed: Tensor = &alpha * e_p + (alpha.ones_like() - &alpha) * e_c;
        Ok(Negatives {
            items: NegativeItems::Embeddings(mixed),
            origin: Some(best),
            ..Negatives::ids(Tensor::new())
        })
    }

    /// MixGCF with hop mixing over the layer embeddings `layers` (each (N, D), layer 0 first);
    /// `candidates` (B, k, M).
    fn hop_mixing(
        batch: &Batch,
        candidates: &Tensor,
        layers: &[Tensor],
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let (b, k) = (candidates.size()[0], candidates.size()[1]);
        let n_layers = layers.len() as i64;
        let alpha = Self::alphas(b * k * n_layers, &[n_layers, b, k, 1], cx);
        let query = tch::no_grad(|| cx.model.queries(batch.queries_t).view([b, 1, 1, -1]));
        let flat = candidates.reshape([-1]);
        let mut mixes = Vec::with_capacity(layers.len());
        let mut origin = None;
        for (l, layer) in layers.iter().enumerate() {
            // Under a dot product and one α per negative, the best layer-l mix is the mix with the
            // best-scored layer-l candidate.
            let best = tch::no_grad(|| {
                let e = layer
                    .index_select(0, &flat)
                    .view([b, k, -1, layer.size()[1]]);
                let scores = (e * &query).sum_dim_intlist(-1, false, None);
                candidates
                    .gather(2, &scores.argmax(2, true), false)
                    .squeeze_dim(2)
            }); // (B, k)
            let e_c = layer.index_select(0, &best.reshape([-1])).view([b, k, -1]);
            let e_p = layer.index_select(0, batch.positives_t).unsqueeze(1);
            let a = alpha.get(l as i64);
            mixes.push(&a * e_p + (a.ones_like() - &a) * e_c);
            origin.get_or_insert(best);
        }
        let mixed = Tensor::stack(&mixes, 0).mean_dim(0, false, tch::Kind::Float);
        Ok(Negatives {
            items: NegativeItems::Embeddings(mixed),
            origin,
            ..Negatives::ids(Tensor::new())
        })
    }

    fn mochi(
        &self,
        batch: &Batch,
        k: i64,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        let b = batch.len() as i64;
        let n = (self.config.hardest as i64).min(k);
        // A mix needs two distinct hard negatives: with one (k = 1, or hardest = 1) there is no pair,
        // and a negative mixed with itself would only repeat it.
        let synthetic = if n >= 2 {
            (self.config.synthetic_share * k as f64).round() as i64
        } else {
            0
        };
        let query_mixed = (self.config.query_share * k as f64).round() as i64;
        let real = self.uniform.draw(batch, k as usize, cx); // (B, k)
        let hardest = {
            let scores = cx.model.score_candidates(batch.queries_t, &real)?;
            let (_, top) = scores.topk(n, 1, true, true);
            real.gather(1, &top, false) // (B, N)
        };
        // Two distinct hard negatives per synthetic mix, one per query mix.
        let mut pairs = Vec::with_capacity((b * synthetic * 2) as usize);
        for _ in 0..b * synthetic {
            let i = cx.rng.random_range(0..n);
            let j = cx.rng.random_range(0..n - 1);
            pairs.extend([i, j + i64::from(j >= i)]);
        }
        let singles: Vec<i64> = (0..b * query_mixed)
            .map(|_| cx.rng.random_range(0..n))
            .collect();
        let alpha = Self::alphas(b * synthetic, &[b, synthetic, 1], cx);
        let beta = Self::alphas(b * query_mixed, &[b, query_mixed, 1], cx) * 0.5;
        let pair_ids = hardest
            .gather(
                1,
                &Tensor::from_slice(&pairs)
                    .view([b, synthetic * 2])
                    .to_device(cx.device),
                false,
            )
            .view([b, synthetic, 2]);
        let single_ids = hardest.gather(
            1,
            &Tensor::from_slice(&singles)
                .view([b, query_mixed])
                .to_device(cx.device),
            false,
        );
        let (mixed, query_mixes) = tch::no_grad(|| {
            let e = cx.model.items(&pair_ids); // (B, s, 2, D)
            let mixed: Tensor =
                &alpha * e.select(2, 0) + (alpha.ones_like() - &alpha) * e.select(2, 1);
            let q = cx.model.queries(batch.queries_t).unsqueeze(1); // (B, 1, D)
            let h = cx.model.items(&single_ids); // (B, s', D)
            let query_mixes: Tensor = &beta * q + (beta.ones_like() - &beta) * h;
            let onto_sphere = |t: Tensor| {
                if cx.model.unit_norm() {
                    let norm = t.norm_scalaropt_dim(2, [-1i64].as_slice(), true);
                    t / norm.clamp_min(1e-12)
                } else {
                    t
                }
            };
            (
                onto_sphere(mixed).detach(),
                onto_sphere(query_mixes).detach(),
            )
        });
        // The real negatives train as usual (with gradient); the synthetic ones are constants.
        let items = Tensor::cat(&[cx.model.items(&real), mixed, query_mixes], 1);
        let origin = Tensor::cat(&[real, pair_ids.select(2, 0), single_ids], 1);
        Ok(Negatives {
            items: NegativeItems::Embeddings(items),
            origin: Some(origin),
            ..Negatives::ids(Tensor::new())
        })
    }
}

impl Sampler for Mixing {
    fn name(&self) -> &'static str {
        "mixing"
    }

    fn sample(
        &mut self,
        batch: &Batch,
        k: usize,
        cx: &mut SampleContext,
    ) -> Result<Negatives, SamplerError> {
        match self.config.mode {
            MixingMode::Mixgcf => self.mixgcf(batch, k as i64, cx),
            MixingMode::Mochi => self.mochi(batch, k as i64, cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::tests::{tiny_data, Harness};

    /// The coefficient t with e = a + t (b − a), and the distance of e from that line.
    fn on_segment(e: &[f32], a: &[f32], b: &[f32]) -> (f32, f32) {
        let d: Vec<f32> = b.iter().zip(a).map(|(x, y)| x - y).collect();
        let rel: Vec<f32> = e.iter().zip(a).map(|(x, y)| x - y).collect();
        let dd: f32 = d.iter().map(|x| x * x).sum();
        let t = rel.iter().zip(&d).map(|(x, y)| x * y).sum::<f32>() / dd;
        let residual = rel
            .iter()
            .zip(&d)
            .map(|(x, y)| (x - t * y).powi(2))
            .sum::<f32>()
            .sqrt();
        (t, residual)
    }

    fn embedding(h: &Harness, i: i64) -> Vec<f32> {
        Vec::<f32>::try_from(
            h.model
                .items(&Tensor::from_slice(&[i]))
                .squeeze_dim(0)
                .detach(),
        )
        .unwrap()
    }

    #[test]
    fn mixgcf_mixes_the_positive_with_the_best_candidate() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 4);
        let c = MixingConfig {
            candidates: 64,
            exclude_positives: false,
            ..Default::default()
        };
        let n = h.sample(&mut Mixing::new(&c, &data), &data, &[1, 2], None, 5);
        let NegativeItems::Embeddings(e) = &n.items else {
            panic!()
        };
        assert!(e.requires_grad(), "MixGCF's negatives carry gradient");
        let origin = Vec::<Vec<i64>>::try_from(n.origin.unwrap()).unwrap();
        let scores = h.scores(&[1, 2]);
        for (row, (q, p)) in [(1usize, 1i64), (2, 5)].into_iter().enumerate() {
            let best = (0..10)
                .max_by(|&a, &b| scores[row][a].total_cmp(&scores[row][b]))
                .unwrap();
            for (slot, &o) in origin[row].iter().enumerate() {
                // 64 candidates over 10 items hold the best one; α·s(p) is common to every mix.
                assert_eq!(o as usize, best, "user {q}");
                let mixed =
                    Vec::<f32>::try_from(e.get(row as i64).get(slot as i64).detach()).unwrap();
                let (t, residual) = on_segment(&mixed, &embedding(&h, o), &embedding(&h, p));
                assert!(
                    residual < 1e-4 && (-1e-5..=1.0 + 1e-5).contains(&t),
                    "{t} {residual}"
                );
            }
        }
    }

    #[test]
    fn mochi_puts_its_mixes_back_on_the_sphere_for_an_image_encoder() {
        let data = crate::sampler::tests::tiny_images();
        let mut h = Harness::new(&data, 4);
        let c = MixingConfig {
            mode: MixingMode::Mochi,
            ..Default::default()
        };
        let negatives = h.sample(&mut Mixing::new(&c, &data), &data, &[0, 1, 2], None, 8);
        let NegativeItems::Embeddings(e) = &negatives.items else {
            panic!("mochi gives embeddings")
        };
        // 8 real + 8 pair mixes + 2 query mixes, every one a unit vector.
        assert_eq!(e.size()[..2], [3, 18]);
        let norms = Vec::<f32>::try_from(
            e.norm_scalaropt_dim(2, [-1i64].as_slice(), false)
                .reshape([-1]),
        )
        .unwrap();
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-4), "{norms:?}");
    }

    #[test]
    fn mochi_at_one_negative_mixes_nothing_with_itself() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 4);
        let c = MixingConfig {
            mode: MixingMode::Mochi,
            exclude_positives: false,
            ..Default::default()
        };
        let n = h.sample(&mut Mixing::new(&c, &data), &data, &[2], None, 1);
        let NegativeItems::Embeddings(e) = &n.items else {
            panic!()
        };
        assert_eq!(
            e.size()[1],
            1,
            "the one real negative, no mix of it with itself"
        );
    }

    #[test]
    fn mochi_keeps_the_real_negatives_and_adds_mixes_of_the_hardest_and_of_the_query() {
        let data = tiny_data();
        let mut h = Harness::new(&data, 4);
        let c = MixingConfig {
            mode: MixingMode::Mochi,
            hardest: 3,
            synthetic_share: 1.0,
            query_share: 0.5,
            exclude_positives: false,
            ..Default::default()
        };
        let n = h.sample(&mut Mixing::new(&c, &data), &data, &[2], None, 8);
        let NegativeItems::Embeddings(e) = &n.items else {
            panic!()
        };
        assert_eq!(
            e.size()[1],
            8 + 8 + 4,
            "k real + k synthetic + k/2 query mixes"
        );
        let origin = Vec::<Vec<i64>>::try_from(n.origin.unwrap()).unwrap()[0].clone();
        let (real, rest) = origin.split_at(8);
        // The real ones are the drawn items' own embeddings.
        for (slot, &i) in real.iter().enumerate() {
            let row = Vec::<f32>::try_from(e.get(0).get(slot as i64)).unwrap();
            assert_eq!(row, embedding(&h, i), "slot {slot} is item {i} itself");
        }
        // The hardest three of the real ones, by the model's scores.
        let scores = &h.scores(&[2])[0];
        let mut ranked: Vec<i64> = real.to_vec();
        ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
        ranked.dedup();
        let top: Vec<i64> = ranked.iter().take(3).copied().collect();
        for (j, &o) in rest.iter().enumerate() {
            assert!(top.contains(&o), "mix {j} comes from a hard negative");
        }
        for slot in 8..16 {
            let mixed = Vec::<f32>::try_from(e.get(0).get(slot)).unwrap();
            let o = origin[slot as usize];
            let fits = top.iter().any(|&j| {
                let (t, residual) = on_segment(&mixed, &embedding(&h, o), &embedding(&h, j));
                residual < 1e-4 && (-1e-5..=1.0 + 1e-5).contains(&t)
            });
            assert!(fits, "slot {slot} is a mix of two of the three hardest");
        }
        let q = Vec::<f32>::try_from(h.model.queries(&Tensor::from_slice(&[2i64])).get(0)).unwrap();
        for slot in 16..20 {
            let mixed = Vec::<f32>::try_from(e.get(0).get(slot)).unwrap();
            let (t, residual) = on_segment(&mixed, &embedding(&h, origin[slot as usize]), &q);
            assert!(
                residual < 1e-4 && (-1e-5..=0.5 + 1e-5).contains(&t),
                "slot {slot}: β = {t}"
            );
        }
    }
}
