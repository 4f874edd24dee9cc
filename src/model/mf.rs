//! Matrix factorisation (Koren et al., 2009; with the BPR loss, Rendle et al., UAI 2009): one embedding
//! per user and per item, score = dot product. Skip-gram (word2vec) is the same model over words: centre
//! and context tables.

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, TchError, Tensor};

use super::{ContrastiveModel, HostTables, HostTablesMut, RowGrads};

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

/// `model = { kind = "sgns", dim = 100 }`: skip-gram's two word tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgnsConfig {
    /// Embedding dimension (word2vec's `size`).
    pub dim: i64,
}

impl Default for SgnsConfig {
    fn default() -> Self {
        SgnsConfig { dim: 100 }
    }
}

#[derive(Debug)]
pub struct Mf {
    users: Tensor,
    items: Tensor,
    /// This step's gathers made apart from autograd (`gather_apart`).
    apart: Mutex<Apart>,
}

/// A step's gathers made apart from autograd: each table's rows are read without gradient into a leaf
/// whose gradient, after backward, is the table's gradient at those rows. An embedding table's
/// gradient through autograd is table-sized (zero-filled, then read whole by the optimiser) for the
/// few thousand rows a batch touches; this leaves out both passes.
#[derive(Debug, Default)]
struct Apart {
    /// Whether the step's next `queries_and_items` gathers apart.
    armed: bool,
    /// (table, ids, leaf) of each gather made apart this step.
    gathered: Vec<(Tensor, Tensor, Tensor)>,
}

impl Mf {
    pub fn new(root: &nn::Path, c: &MfConfig, n_queries: usize, n_items: usize, seed: u64) -> Mf {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, c.init_std as f32)
            .expect("init_std is checked to be finite and >= 0");
        let mut init = |rows: usize| {
            let values: Vec<f32> = (0..rows * c.dim as usize)
                .map(|_| normal.sample(&mut rng))
                .collect();
            Tensor::from_slice(&values).view([rows as i64, c.dim])
        };
        let (u, i) = (init(n_queries), init(n_items));
        Mf::of(root.var_copy("user", &u), root.var_copy("item", &i))
    }

    /// Shallow node embeddings (graph domain): one table whose rows are both the queries and the
    /// candidates, so an edge (u, v) scores z_u · z_v.
    pub fn shared(root: &nn::Path, c: &MfConfig, n_nodes: usize, seed: u64) -> Mf {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, c.init_std as f32)
            .expect("init_std is checked to be finite and >= 0");
        let values: Vec<f32> = (0..n_nodes * c.dim as usize)
            .map(|_| normal.sample(&mut rng))
            .collect();
        let nodes = root.var_copy(
            "node",
            &Tensor::from_slice(&values).view([n_nodes as i64, c.dim]),
        );
        Mf::of(nodes.shallow_clone(), nodes)
    }
}

impl Mf {
    /// Skip-gram with negative sampling (word2vec): centre-word vectors (the queries, the embeddings
    /// evaluated) drawn U(−1/d, 1/d) and context vectors (the candidates) all zero, as gensim 4
    /// initialises `vectors` and `syn1neg` (`keyedvectors.prep_vectors`). word2vec.c draws half that
    /// range; on gensim's Lee corpus the wider start gave WordSim353 ρ +0.025 and SimLex-999 +0.017,
    /// higher on each of 5 paired seeds, closing the gap to gensim.
    pub fn word2vec(root: &nn::Path, c: &SgnsConfig, n_words: usize, seed: u64) -> Mf {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let half = 1.0 / c.dim as f32;
        let values: Vec<f32> = (0..n_words * c.dim as usize)
            .map(|_| rng.random_range(-half..half))
            .collect();
        let centre = Tensor::from_slice(&values).view([n_words as i64, c.dim]);
        let context = Tensor::zeros([n_words as i64, c.dim], (Kind::Float, Device::Cpu));
        Mf::of(
            root.var_copy("centre", &centre),
            root.var_copy("context", &context),
        )
    }

    fn of(users: Tensor, items: Tensor) -> Mf {
        Mf {
            users,
            items,
            apart: Mutex::new(Apart::default()),
        }
    }

    fn apart(&self) -> std::sync::MutexGuard<'_, Apart> {
        self.apart.lock().expect("no panic while gathering")
    }

    /// `table`'s rows `ids` as a leaf of their own, recorded for `take_row_grads`.
    fn gather_leaf(&self, apart: &mut Apart, table: &Tensor, ids: &Tensor) -> Tensor {
        let rows = tch::no_grad(|| table.index_select(0, ids)).set_requires_grad(true);
        apart.gathered.push((
            table.shallow_clone(),
            ids.shallow_clone(),
            rows.shallow_clone(),
        ));
        rows
    }
}

impl ContrastiveModel for Mf {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.users.index_select(0, ids)
    }

    /// Gathered apart from autograd when `gather_apart` armed it (once a step: a second call in the same
    /// step goes through autograd, and the optimiser adds the two gradients as autograd would).
    fn queries_and_items(&self, queries: &Tensor, items: &Tensor) -> (Tensor, Tensor) {
        let mut apart = self.apart();
        if !std::mem::take(&mut apart.armed) {
            return (self.queries(queries), self.items(items));
        }
        let u = self.gather_leaf(&mut apart, &self.users, queries);
        let mut shape = items.size();
        shape.push(self.items.size()[1]);
        let i = self.gather_leaf(&mut apart, &self.items, &items.reshape([-1]));
        (u, i.view(shape.as_slice()))
    }

    /// Armed only for two distinct tables on the host: one table behind both sides (graph nodes) would
    /// take two gathers' gradients, which autograd sums in an order of its own.
    fn gather_apart(&self, on: bool) {
        let mut apart = self.apart();
        if on {
            apart.gathered.clear();
        }
        apart.armed = on && self.host_tables_mut().is_some();
    }

    /// The leaves' gradients; a gather whose rows the loss did not reach has none.
    fn take_row_grads(&self) -> Vec<RowGrads> {
        let gathered = std::mem::take(&mut self.apart().gathered);
        gathered
            .into_iter()
            .map(|(param, ids, rows)| RowGrads {
                param,
                ids,
                grads: rows.grad(),
            })
            .filter(|r| r.grads.defined())
            .collect()
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

    fn query_table(&self) -> Option<Tensor> {
        Some(self.users.shallow_clone())
    }

    fn all_items(&self) -> Tensor {
        self.items.shallow_clone()
    }

    fn n_items(&self) -> i64 {
        self.items.size()[0]
    }

    fn host_tables(&self) -> Option<HostTables<'_>> {
        let host =
            |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous();
        if !(host(&self.items) && host(&self.users)) {
            return None;
        }
        // SAFETY: both tables are contiguous f32 CPU tensors (checked above) that live as long as
        // `self`; they are only written by the optimiser step, which needs no borrow of the model and
        // never runs while a sampler holds these slices.
        unsafe {
            Some(HostTables {
                queries: std::slice::from_raw_parts(
                    self.users.data_ptr() as *const f32,
                    self.users.numel(),
                ),
                items: std::slice::from_raw_parts(
                    self.items.data_ptr() as *const f32,
                    self.items.numel(),
                ),
                dim: self.items.size()[1] as usize,
            })
        }
    }

    fn host_tables_mut(&self) -> Option<HostTablesMut<'_>> {
        let tables = self.host_tables()?;
        if self.users.data_ptr() == self.items.data_ptr() {
            return None; // one shared table (graph nodes): the two views would alias
        }
        // SAFETY: two distinct contiguous f32 CPU tensors (checked by `host_tables` and above) that live
        // as long as `self`; the caller holds no other view of them while it writes (trait contract),
        // and writes outside autograd's knowledge are what `no_grad` updates do too.
        unsafe {
            Some(HostTablesMut {
                queries: std::slice::from_raw_parts_mut(
                    tables.queries.as_ptr() as *mut f32,
                    tables.queries.len(),
                ),
                items: std::slice::from_raw_parts_mut(
                    tables.items.as_ptr() as *mut f32,
                    tables.items.len(),
                ),
                dim: tables.dim,
            })
        }
    }

    /// On the CPU, dot products straight from the embedding tables: no (B, M, D) gather is materialised,
    /// and the item table of a small pool stays in cache. 5–20× faster than gather-multiply-sum for the
    /// candidate counts hard samplers use.
    fn score_candidates(&self, queries: &Tensor, candidates: &Tensor) -> Result<Tensor, TchError> {
        let Some(tables) = self.host_tables() else {
            let _no_grad = tch::no_grad_guard();
            let q = self.queries(queries).unsqueeze(1);
            return (self.items(candidates) * q).f_sum_dim_intlist(-1, false, None);
        };
        let (b, m) = (candidates.size()[0], candidates.size()[1]);
        let queries = Vec::<i64>::try_from(queries.to_device(Device::Cpu).to_kind(Kind::Int64))?;
        let candidates = Vec::<i64>::try_from(
            candidates
                .reshape([-1])
                .to_device(Device::Cpu)
                .to_kind(Kind::Int64),
        )?;
        let n_items = self.items.size()[0];
        if let Some(bad) = candidates.iter().find(|&&c| !(0..n_items).contains(&c)) {
            return Err(TchError::Shape(format!(
                "candidate id {bad} is outside the item table (0..{n_items})"
            )));
        }
        let scores = Tensor::empty([b, m], (Kind::Float, Device::Cpu));
        // SAFETY: `scores` is a fresh contiguous CPU tensor of b·m f32s that nothing else references.
        let out = unsafe {
            std::slice::from_raw_parts_mut(scores.data_ptr() as *mut f32, (b * m) as usize)
        };
        let m = m as usize;
        let candidates: Vec<u32> = candidates.iter().map(|&c| c as u32).collect();
        for (row, &q) in queries.iter().enumerate() {
            let at = row * m..(row + 1) * m;
            tables.score_row(q as usize, &candidates[at.clone()], &mut out[at]);
        }
        Ok(scores)
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
        let s = a.score_candidates(&q, &cand).unwrap();
        let manual = a
            .queries(&q)
            .get(1)
            .dot(&a.items(&Tensor::from_slice(&[3i64])).get(0));
        assert!((s.double_value(&[1, 0]) - manual.double_value(&[])).abs() < 1e-6);
        assert_eq!(s.size(), vec![2, 2]);
        assert_eq!(s.kind(), tch::Kind::Float);
        // The host path equals libtorch's gather-multiply-sum.
        let reference =
            (a.items(&cand) * a.queries(&q).unsqueeze(1)).sum_dim_intlist(-1, false, None);
        assert!(s.allclose(&reference, 1e-5, 1e-6, false));
        let outside = Tensor::from_slice(&[1i64, 5, 3, 0]).view([2, 2]);
        assert!(
            a.score_candidates(&q, &outside).is_err(),
            "an id outside the table is an error"
        );
        let wide = Mf::new(
            &vs.root().sub("c"),
            &MfConfig {
                dim: 67,
                init_std: 1.0,
            },
            3,
            5,
            1,
        );
        let reference =
            (wide.items(&cand) * wide.queries(&q).unsqueeze(1)).sum_dim_intlist(-1, false, None);
        assert!(wide
            .score_candidates(&q, &cand)
            .unwrap()
            .allclose(&reference, 1e-4, 1e-5, false));
    }

    #[test]
    fn rows_are_gathered_apart_once_a_step_and_only_from_two_distinct_tables() {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let c = MfConfig {
            dim: 3,
            init_std: 0.5,
        };
        let (q, items) = (
            Tensor::from_slice(&[0i64, 2, 0]),
            Tensor::from_slice(&[1i64, 4, 4, 0, 3, 1]).view([3, 2]),
        );
        let two = Mf::new(&vs.root().sub("two"), &c, 3, 5, 1);
        two.gather_apart(true);
        let (u, i) = two.queries_and_items(&q, &items);
        assert!(u.is_leaf() && i.size() == [3, 2, 3], "armed: leaves");
        assert!(
            !two.queries_and_items(&q, &items).0.is_leaf(),
            "once a step"
        );
        let loss = (u.unsqueeze(1) * &i).sum(Kind::Float) + u.square().sum(Kind::Float);
        loss.backward();
        let grads = two.take_row_grads();
        assert_eq!(grads.len(), 2);
        // The rows' gradients spread over the tables are autograd's through the gathers.
        let (u, i) = (two.queries(&q), two.items(&items));
        let loss = (u.unsqueeze(1) * &i).sum(Kind::Float) + u.square().sum(Kind::Float);
        let dense = Tensor::run_backward(&[&loss], &[&two.users, &two.items], false, false);
        assert!(grads[0].dense().equal(&dense[0]) && grads[1].dense().equal(&dense[1]));
        let one = Mf::shared(&vs.root().sub("one"), &c, 5, 1);
        one.gather_apart(true);
        assert!(
            !one.queries_and_items(&q, &items).0.is_leaf(),
            "one table: autograd"
        );
    }
}
