//! Knowledge-graph embedding models over (head, relation, tail) triples, as query-candidate scorers.
//!
//! A query is a triple with one side missing: (h, r, ?) ranks tails, (?, r, t) ranks heads. Each model's
//! triple score f(h, r, t) is rewritten as s(query embedding, candidate embedding):
//! - TransE (Bordes et al. 2013): f = −‖h + r − t‖ₚ; tail query q = h + r, head query q = t − r,
//!   s = −‖q − c‖ₚ (p = 1 or 2). Entities are renormalised to unit L2 norm after every step, as the
//!   paper (and PyKEEN) do; relations are normalised once at initialisation.
//! - DistMult (Yang et al. 2015): f = ⟨h, r, t⟩; q = e ∘ r on both sides (the score is symmetric),
//!   s = ⟨q, c⟩; entities on the unit sphere after each step, as PyKEEN does.
//! - ComplEx (Trouillon et al. 2016): f = Re⟨h, r, t̄⟩ with [re | im] halves; tail q = h ∘ r, head
//!   q = t ∘ r̄, s = ⟨q, c⟩ over the real halves (= Re⟨q, c̄⟩ for tails, Re⟨c̄, q⟩ for heads).
//! - RotatE (Sun et al. 2019): f = −Σⱼ |hⱼ rⱼ − tⱼ| with |rⱼ| = 1 (r = e^{iθ}); tail q = h ∘ r, head
//!   q = t ∘ r̄ (|h ∘ r − t| = |h − t ∘ r̄| as |r| = 1), s = −Σ|q − c|.
//!
//! Initialisation: entities and relation vectors U(−√(6/d), √(6/d)) (PyKEEN's `xavier_uniform_`),
//! RotatE's phases U(−π, π); all from the cell's seed.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::{ContrastiveModel, Similarity};
use crate::data::KgQueryIndex;

/// Which knowledge-graph score function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KgScore {
    TransE { norm: u8 },
    DistMult,
    ComplEx,
    RotatE,
}

/// `model = { kind = "transe" | "distmult" | "complex" | "rotate", dim = … }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KgModelConfig {
    /// Embedding dimension (real numbers per entity: ComplEx and RotatE use dim/2 complex coordinates,
    /// so dim must be even for them).
    pub dim: i64,
    /// TransE only: the distance's norm, 1 or 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<u8>,
}

impl Default for KgModelConfig {
    fn default() -> Self {
        KgModelConfig {
            dim: 50,
            norm: None,
        }
    }
}

#[derive(Debug)]
pub struct KgModel {
    score: KgScore,
    entities: Tensor,
    relations: Tensor,
    query_entity: Tensor,
    query_relation: Tensor,
    /// +1 for a tail query, −1 for a head query, (Q, 1) f32.
    query_sign: Tensor,
}

impl KgModel {
    pub fn new(
        root: &nn::Path,
        score: KgScore,
        c: &KgModelConfig,
        index: &KgQueryIndex,
        n_entities: usize,
        seed: u64,
    ) -> KgModel {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let d = c.dim;
        let bound = (6.0 / d as f64).sqrt();
        let mut uniform = |rows: usize, cols: i64, lo: f64, hi: f64| {
            let v: Vec<f32> = (0..rows * cols as usize)
                .map(|_| rng.random_range(lo..hi) as f32)
                .collect();
            Tensor::from_slice(&v).view([rows as i64, cols])
        };
        let mut entities = uniform(n_entities, d, -bound, bound);
        let n_rel = index.n_relations.max(1);
        let relations = match score {
            KgScore::RotatE => uniform(n_rel, d / 2, -std::f64::consts::PI, std::f64::consts::PI),
            KgScore::TransE { .. } => unit_rows(&uniform(n_rel, d, -bound, bound)),
            _ => uniform(n_rel, d, -bound, bound),
        };
        if matches!(score, KgScore::TransE { .. } | KgScore::DistMult) {
            entities = unit_rows(&entities);
        }
        let ids = |v: &[u32]| Tensor::from_slice(&v.iter().map(|&x| x as i64).collect::<Vec<_>>());
        let device = root.device();
        let sign: Vec<f32> = index
            .head_side
            .iter()
            .map(|&h| if h { -1.0 } else { 1.0 })
            .collect();
        KgModel {
            score,
            entities: root.var_copy("entity", &entities),
            relations: root.var_copy("relation", &relations),
            query_entity: ids(&index.entity).to_device(device),
            query_relation: ids(&index.relation).to_device(device),
            query_sign: Tensor::from_slice(&sign).view([-1, 1]).to_device(device),
        }
    }

    /// The query embedding from its entity rows `e` (B, D), relation rows `r` and side signs `s` (B, 1).
    fn compose(&self, e: &Tensor, r: &Tensor, s: &Tensor) -> Tensor {
        match self.score {
            KgScore::TransE { .. } => e + r * s,
            KgScore::DistMult => e * r,
            KgScore::ComplEx => {
                let h = r.size()[1] / 2;
                let (r_re, r_im) = (r.narrow(1, 0, h), r.narrow(1, h, h) * s);
                complex_mul(e, &r_re, &r_im)
            }
            KgScore::RotatE => {
                let (r_re, r_im) = (r.cos(), r.sin() * s);
                complex_mul(e, &r_re, &r_im)
            }
        }
    }
}

/// (a_re + i a_im)(b_re + i b_im) with `a` as [re | im] halves.
fn complex_mul(a: &Tensor, b_re: &Tensor, b_im: &Tensor) -> Tensor {
    let h = b_re.size()[1];
    let (a_re, a_im) = (a.narrow(1, 0, h), a.narrow(1, h, h));
    Tensor::cat(
        &[&a_re * b_re - &a_im * b_im, &a_re * b_im + &a_im * b_re],
        1,
    )
}

fn unit_rows(t: &Tensor) -> Tensor {
    t / t
        .norm_scalaropt_dim(2, [1i64].as_slice(), true)
        .clamp_min(1e-12)
}

impl ContrastiveModel for KgModel {
    fn queries(&self, ids: &Tensor) -> Tensor {
        let e = self
            .entities
            .index_select(0, &self.query_entity.index_select(0, ids));
        let r = self
            .relations
            .index_select(0, &self.query_relation.index_select(0, ids));
        let s = self.query_sign.index_select(0, ids);
        self.compose(&e, &r, &s)
    }

    fn items(&self, ids: &Tensor) -> Tensor {
        if ids.dim() == 1 {
            return self.entities.index_select(0, ids);
        }
        let mut shape = ids.size();
        shape.push(self.entities.size()[1]);
        self.entities
            .index_select(0, &ids.reshape([-1]))
            .view(shape.as_slice())
    }

    fn all_items(&self) -> Tensor {
        self.entities.shallow_clone()
    }

    fn n_items(&self) -> i64 {
        self.entities.size()[0]
    }

    fn similarity(&self) -> Similarity {
        match self.score {
            KgScore::TransE { norm: 2 } => Similarity::NegL2,
            KgScore::TransE { .. } => Similarity::NegL1,
            KgScore::DistMult | KgScore::ComplEx => Similarity::Dot,
            KgScore::RotatE => Similarity::NegModulusSum,
        }
    }

    /// L2 on the entity and relation rows behind each query (h and r of a tail query), as the papers'
    /// regularisers do, not on their composition.
    fn query_sq_norms(&self, ids: &Tensor) -> Option<Tensor> {
        let e = self
            .entities
            .index_select(0, &self.query_entity.index_select(0, ids));
        let r = self
            .relations
            .index_select(0, &self.query_relation.index_select(0, ids));
        Some(e.square().sum(tch::Kind::Float) + r.square().sum(tch::Kind::Float))
    }

    fn after_step(&self) {
        if matches!(self.score, KgScore::TransE { .. } | KgScore::DistMult) {
            tch::no_grad(|| {
                let normalised = unit_rows(&self.entities);
                let mut e = self.entities.shallow_clone();
                e.copy_(&normalised);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One relation, two entities, a tail query (0, r0, ?) and a head query (?, r0, 1).
    fn model(score: KgScore, e: &[f32], r: &[f32], d: i64) -> KgModel {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let index = KgQueryIndex {
            entity: vec![0, 1],
            relation: vec![0, 0],
            head_side: vec![false, true],
            n_relations: 1,
        };
        let m = KgModel::new(
            &vs.root(),
            score,
            &KgModelConfig { dim: d, norm: None },
            &index,
            2,
            0,
        );
        tch::no_grad(|| {
            m.entities
                .shallow_clone()
                .copy_(&Tensor::from_slice(e).view([2, d]));
            let rd = if score == KgScore::RotatE { d / 2 } else { d };
            m.relations
                .shallow_clone()
                .copy_(&Tensor::from_slice(r).view([1, rd]));
        });
        m
    }

    /// s(tail query of h=0, candidate 1) and s(head query of t=1, candidate 0): both must be f(0, r, 1).
    fn both_sides(m: &KgModel) -> (f64, f64) {
        let q = Tensor::from_slice(&[0i64, 1]);
        let c = Tensor::from_slice(&[1i64, 0]).view([2, 1]);
        let s = m.score_candidates(&q, &c).unwrap();
        (s.double_value(&[0, 0]), s.double_value(&[1, 0]))
    }

    #[test]
    fn transe_is_minus_the_distance_of_h_plus_r_to_t_from_either_side() {
        // h = (1, 0), t = (0, 1), r = (0.5, 0.5): h + r − t = (1.5, −0.5).
        let (e, r) = ([1.0f32, 0.0, 0.0, 1.0], [0.5f32, 0.5]);
        for (norm, expected) in [(1u8, -2.0), (2, -(2.5f64).sqrt())] {
            let m = model(KgScore::TransE { norm }, &e, &r, 2);
            let (tail, head) = both_sides(&m);
            assert!((tail - expected).abs() < 1e-5, "L{norm}: {tail}");
            assert!((head - expected).abs() < 1e-5, "L{norm} head side: {head}");
        }
    }

    #[test]
    fn distmult_is_the_trilinear_product() {
        // ⟨(1, 2), (3, −1), (0.5, 4)⟩ = 1.5 − 8 = −6.5.
        let m = model(KgScore::DistMult, &[1.0, 2.0, 0.5, 4.0], &[3.0, -1.0], 2);
        let (tail, head) = both_sides(&m);
        assert!(
            (tail + 6.5).abs() < 1e-5 && (head + 6.5).abs() < 1e-5,
            "{tail} {head}"
        );
    }

    #[test]
    fn complex_is_the_real_part_of_h_r_conjugate_t() {
        // h = 1 + 2i, r = 3 − 1i, t = 0.5 + 4i: h·r = 5 + 5i; Re(h r t̄) = Re((5 + 5i)(0.5 − 4i)) = 2.5 + 20.
        let m = model(KgScore::ComplEx, &[1.0, 2.0, 0.5, 4.0], &[3.0, -1.0], 2);
        let (tail, head) = both_sides(&m);
        assert!(
            (tail - 22.5).abs() < 1e-4 && (head - 22.5).abs() < 1e-4,
            "{tail} {head}"
        );
    }

    #[test]
    fn rotate_is_minus_the_modulus_of_h_rotated_minus_t() {
        // h = 1 + 0i, θ = π/2 (r = i), t = 0 + 2i: h·r − t = −i, |·| = 1.
        let m = model(
            KgScore::RotatE,
            &[1.0, 0.0, 0.0, 2.0],
            &[std::f32::consts::FRAC_PI_2],
            2,
        );
        let (tail, head) = both_sides(&m);
        assert!(
            (tail + 1.0).abs() < 1e-5 && (head + 1.0).abs() < 1e-5,
            "{tail} {head}"
        );
    }

    #[test]
    fn transe_keeps_entities_on_the_unit_sphere_after_a_step() {
        let m = model(
            KgScore::TransE { norm: 1 },
            &[3.0, 4.0, 0.0, 0.5],
            &[0.0, 0.0],
            2,
        );
        m.after_step();
        let norms = m.entities.norm_scalaropt_dim(2, [1i64].as_slice(), false);
        assert!(norms.allclose(
            &Tensor::ones([2], (tch::Kind::Float, tch::Device::Cpu)),
            1e-5,
            1e-6,
            false
        ));
    }

    #[test]
    fn the_l2_penalty_is_on_the_entity_and_relation_rows_not_their_composition() {
        // h = (1, 0), t = (0, 2), r = (0.5, 0.5): each query uses its entity and r0.
        let m = model(KgScore::DistMult, &[1.0, 0.0, 0.0, 2.0], &[0.5, 0.5], 2);
        let both = m.query_sq_norms(&Tensor::from_slice(&[0i64, 1])).unwrap();
        assert!((both.double_value(&[]) - (1.0 + 0.5 + 4.0 + 0.5)).abs() < 1e-6);
    }
}
