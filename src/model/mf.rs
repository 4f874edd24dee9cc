//! Matrix factorisation (Koren et al., 2009; with the BPR loss, Rendle et al., UAI 2009): one embedding
//! per user and per item, score = dot product.

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::ContrastiveModel;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfConfig {
    /// Embedding dimension.
    pub dim: i64,
    /// Standard deviation of the normal initialisation.
    pub init_std: f64,
}

impl Default for MfConfig {
    fn default() -> Self {
        MfConfig {
            dim: 64,
            init_std: 0.1,
        }
    }
}

#[derive(Debug)]
pub struct Mf {
    users: Tensor,
    items: Tensor,
}

impl Mf {
    pub fn new(root: &nn::Path, c: &MfConfig, n_users: usize, n_items: usize, seed: u64) -> Mf {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, c.init_std as f32)
            .expect("init_std is checked to be finite and >= 0");
        let mut init = |rows: usize| {
            let values: Vec<f32> = (0..rows * c.dim as usize)
                .map(|_| normal.sample(&mut rng))
                .collect();
            Tensor::from_slice(&values).view([rows as i64, c.dim])
        };
        let (u, i) = (init(n_users), init(n_items));
        Mf {
            users: root.var_copy("user", &u),
            items: root.var_copy("item", &i),
        }
    }
}

impl ContrastiveModel for Mf {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.users.index_select(0, ids)
    }

    fn items(&self, ids: &Tensor) -> Tensor {
        if ids.dim() == 1 {
            return self.items.index_select(0, ids);
        }
        let mut shape = ids.size();
        shape.push(self.items.size()[1]);
        self.items
            .index_select(0, &ids.reshape([-1]))
            .view(shape.as_slice())
    }

    fn all_queries(&self) -> Tensor {
        self.users.shallow_clone()
    }

    fn all_items(&self) -> Tensor {
        self.items.shallow_clone()
    }

    fn n_items(&self) -> i64 {
        self.items.size()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded_and_scores_are_dot_products() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let c = MfConfig {
            dim: 4,
            init_std: 0.1,
        };
        let a = Mf::new(&vs.root().sub("a"), &c, 3, 5, 9);
        let b = Mf::new(&vs.root().sub("b"), &c, 3, 5, 9);
        assert!(a.items.equal(&b.items) && a.users.equal(&b.users));
        let q = Tensor::from_slice(&[0i64, 2]);
        let cand = Tensor::from_slice(&[1i64, 4, 3, 0]).view([2, 2]);
        let s = a.score_candidates(&q, &cand);
        let manual = a
            .queries(&q)
            .get(1)
            .dot(&a.items(&Tensor::from_slice(&[3i64])).get(0));
        assert!((s.double_value(&[1, 0]) - manual.double_value(&[])).abs() < 1e-6);
        assert_eq!(s.size(), vec![2, 2]);
        assert_eq!(s.kind(), tch::Kind::Float);
    }
}
