//! LightGCN (He et al., SIGIR 2020): one free embedding per node, K propagation layers over the
//! symmetric-normalised adjacency D^-1/2 A D^-1/2 (no feature transforms, no non-linearities), and the
//! mean of the K + 1 layers as the final embedding; score = dot product of final embeddings.
//!
//! The graph is the user–item bipartite graph of the training interactions (rec), or the training node
//! graph (graph domain, where queries and candidates are the same nodes). Propagation is one sparse
//! matrix product per layer over the whole graph, as in the reference code: once per training step (the
//! step's gradient flows through it to every node) and once per evaluation. The L2 penalty weighs the
//! batch's raw (layer-0) embeddings, as the reference code does.
//!
//! The products run outside autograd. When training, every layer above 0 is a leaf; after the loss's
//! backward pass `after_backward` carries the layers' gradients back to the parameters with one more
//! product per layer (the adjacency is symmetric, so the backward of `A X` is `A G`). libtorch's own
//! backward of a CSR product transposes the matrix on every step and made a step about 4× slower.

use std::sync::Mutex;

use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::ContrastiveModel;
use crate::data::QueryItems;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LightGcnConfig {
    /// Embedding dimension.
    pub dim: i64,
    /// Propagation layers K (0 is matrix factorisation).
    pub layers: usize,
    /// Standard deviation of the normal initialisation (the reference code's 0.1).
    pub init_std: f64,
}

impl Default for LightGcnConfig {
    fn default() -> Self {
        LightGcnConfig {
            dim: 64,
            layers: 3,
            init_std: 0.1,
        }
    }
}

/// The propagated embeddings of one parameter state: every layer's node table (for hop mixing) and
/// their mean (the model's embedding).
struct Propagated {
    layers: Vec<Tensor>,
    mean: Tensor,
}

pub struct LightGcn {
    /// Layer-0 embeddings of every node: users then items (rec), or the nodes (graph).
    nodes: Tensor,
    /// The normalised adjacency, sparse (nodes × nodes).
    adjacency: Tensor,
    layers: usize,
    /// Where candidates start among the nodes: the number of users (rec), or 0 (graph: the same nodes).
    item_offset: i64,
    n_items: i64,
    propagated: Mutex<Option<Propagated>>,
}

impl LightGcn {
    /// A bipartite model (rec): `n_queries` users and `n_items` items joined by `train`.
    /// `shared_nodes`: queries and candidates are the same nodes and `train` is the node graph's
    /// adjacency (every edge in both directions).
    pub fn new(
        root: &nn::Path,
        c: &LightGcnConfig,
        train: &QueryItems,
        n_items: usize,
        shared_nodes: bool,
        seed: u64,
        device: Device,
    ) -> LightGcn {
        let n_queries = train.n_queries();
        let n_nodes = if shared_nodes {
            n_items
        } else {
            n_queries + n_items
        };
        let item_offset = if shared_nodes { 0 } else { n_queries };
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, c.init_std as f32)
            .expect("init_std is checked to be finite and >= 0");
        let values: Vec<f32> = (0..n_nodes * c.dim as usize)
            .map(|_| normal.sample(&mut rng))
            .collect();
        let init = Tensor::from_slice(&values).view([n_nodes as i64, c.dim]);
        LightGcn {
            nodes: root.var_copy("node", &init),
            adjacency: normalised_adjacency(train, n_nodes, item_offset, shared_nodes)
                .to_device(device),
            layers: c.layers,
            item_offset: item_offset as i64,
            n_items: n_items as i64,
            propagated: Mutex::new(None),
        }
    }

    fn propagate(&self) -> Propagated {
        // Under `no_grad` (evaluation) a view of a parameter does not require a gradient.
        let training = self.nodes.narrow(0, 0, 1).requires_grad();
        let mut layers = vec![self.nodes.shallow_clone()];
        let mut x = self.nodes.detach();
        for _ in 0..self.layers {
            x = tch::no_grad(|| self.adjacency.mm(&x));
            layers.push(if training {
                x.detach().set_requires_grad(true)
            } else {
                x.shallow_clone()
            });
        }
        let mean = if layers.len() == 1 {
            layers[0].shallow_clone()
        } else {
            Tensor::stack(&layers, 0).mean_dim(0, false, Kind::Float)
        };
        Propagated { layers, mean }
    }

    /// The final embeddings of the current parameters, propagated on first use after a `refresh`.
    fn with<T>(&self, f: impl FnOnce(&Propagated) -> T) -> T {
        let mut cache = self.propagated.lock().expect("no panic while propagating");
        let p = cache.get_or_insert_with(|| self.propagate());
        f(p)
    }

    fn candidates_of(&self, table: &Tensor) -> Tensor {
        table.narrow(0, self.item_offset, self.n_items)
    }

    fn users_of(&self, table: &Tensor) -> Tensor {
        if self.item_offset == 0 {
            table.shallow_clone()
        } else {
            table.narrow(0, 0, self.item_offset)
        }
    }
}

/// D^-1/2 A D^-1/2 of the graph `train` describes, as a sparse CSR tensor (nodes × nodes). Bipartite:
/// user u is node u and item i node `item_offset` + i, each interaction an edge both ways; shared: `train`
/// is already symmetric. Isolated nodes get an empty row.
fn normalised_adjacency(
    train: &QueryItems,
    n_nodes: usize,
    item_offset: usize,
    shared_nodes: bool,
) -> Tensor {
    let mut neighbours: Vec<Vec<u32>> = vec![Vec::new(); n_nodes];
    for q in 0..train.n_queries() {
        for &i in train.items(q) {
            let j = i as usize + item_offset;
            if j == q && shared_nodes {
                continue; // self-loops carry no neighbourhood
            }
            neighbours[q].push(j as u32);
            if !shared_nodes {
                neighbours[j].push(q as u32);
            }
        }
    }
    for row in &mut neighbours {
        row.sort_unstable();
        row.dedup();
    }
    symmetric_normalised(&neighbours)
}

/// D^-1/2 A D^-1/2 of the graph whose sorted, duplicate-free neighbour lists are `neighbours` (each
/// node's degree is its list's length), as a sparse CSR tensor (nodes × nodes).
pub(super) fn symmetric_normalised(neighbours: &[Vec<u32>]) -> Tensor {
    let degree: Vec<f32> = neighbours.iter().map(|r| r.len() as f32).collect();
    let (mut crow, mut col, mut val) = (vec![0i64], Vec::new(), Vec::new());
    for (r, row) in neighbours.iter().enumerate() {
        for &c in row {
            col.push(c as i64);
            val.push(1.0 / (degree[r] * degree[c as usize]).sqrt());
        }
        crow.push(col.len() as i64);
    }
    let n = neighbours.len() as i64;
    Tensor::sparse_csr_tensor_crow_col_value_size(
        &Tensor::from_slice(&crow),
        &Tensor::from_slice(&col),
        &Tensor::from_slice(&val),
        [n, n],
        (Kind::Float, Device::Cpu),
    )
}

impl ContrastiveModel for LightGcn {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.with(|p| self.users_of(&p.mean).index_select(0, ids))
    }

    fn items(&self, ids: &Tensor) -> Tensor {
        self.with(|p| {
            let table = self.candidates_of(&p.mean);
            if ids.dim() == 1 {
                return table.index_select(0, ids);
            }
            let mut shape = ids.size();
            shape.push(table.size()[1]);
            table
                .index_select(0, &ids.reshape([-1]))
                .view(shape.as_slice())
        })
    }

    fn all_items(&self) -> Tensor {
        self.with(|p| self.candidates_of(&p.mean))
    }

    fn n_items(&self) -> i64 {
        self.n_items
    }

    fn refresh(&self) {
        *self.propagated.lock().expect("no panic while propagating") = Some(self.propagate());
    }

    /// dL/dE₀ += Σ_l A^l G_l over the layers above 0, by Horner's rule: K products for K layers.
    fn after_backward(&self) {
        let cache = self.propagated.lock().expect("no panic while propagating");
        let Some(p) = cache.as_ref() else { return };
        let _no_grad = tch::no_grad_guard();
        let mut carried: Option<Tensor> = None;
        for layer in p.layers.iter().skip(1).rev() {
            let g = layer.grad();
            carried = match (carried, g.defined()) {
                (None, false) => None,
                (None, true) => Some(g),
                (Some(c), false) => Some(self.adjacency.mm(&c)),
                (Some(c), true) => Some(self.adjacency.mm(&c) + g),
            };
        }
        let Some(carried) = carried else { return };
        super::accumulate_grad(&self.nodes, &self.adjacency.mm(&carried));
    }

    fn penalty_tables(&self) -> Option<(Tensor, Tensor)> {
        Some((self.users_of(&self.nodes), self.candidates_of(&self.nodes)))
    }

    fn item_layers(&self) -> Option<Vec<Tensor>> {
        Some(self.with(|p| p.layers.iter().map(|l| self.candidates_of(l)).collect()))
    }

    fn query_layers(&self) -> Option<Vec<Tensor>> {
        Some(self.with(|p| p.layers.iter().map(|l| self.users_of(l)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;

    fn graph() -> QueryItems {
        // Two users, three items: u0–i0, u0–i1, u1–i1, u1–i2.
        let mut x = Interactions::default();
        for (u, i) in [(0, 0), (0, 1), (1, 1), (1, 2)] {
            x.push(u, i);
        }
        QueryItems::from_interactions(2, &x)
    }

    fn model(layers: usize) -> (nn::VarStore, LightGcn) {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = LightGcnConfig {
            dim: 4,
            layers,
            init_std: 0.1,
        };
        let m = LightGcn::new(&vs.root(), &c, &graph(), 3, false, 7, Device::Cpu);
        (vs, m)
    }

    #[test]
    fn the_adjacency_is_symmetric_and_normalised_by_both_degrees() {
        let a = normalised_adjacency(&graph(), 5, 2, false).to_dense(None, false);
        let a: Vec<Vec<f32>> = Vec::try_from(a).unwrap();
        // u0 (degree 2) – i1 (node 3, degree 2): 1/2; u0 – i0 (node 2, degree 1): 1/√2.
        assert!((a[0][3] - 0.5).abs() < 1e-6 && (a[3][0] - 0.5).abs() < 1e-6);
        assert!((a[0][2] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(a[0][1], 0.0, "no user–user edges");
        assert_eq!(a[2][4], 0.0, "no item–item edges");
    }

    #[test]
    fn zero_layers_is_matrix_factorisation_and_layers_mix_neighbours() {
        let (_vs, mf) = model(0);
        let ids = Tensor::from_slice(&[0i64, 1]);
        let raw = mf.nodes.narrow(0, 0, 2);
        assert!(mf.queries(&ids).allclose(&raw, 0.0, 0.0, false));
        let (_vs, gcn) = model(2);
        // Layer mean by hand: (E + AE + A²E) / 3.
        let a = normalised_adjacency(&graph(), 5, 2, false).to_dense(None, false);
        let e = gcn.nodes.detach();
        let ae = a.mm(&e);
        let expected = (&e + &ae + a.mm(&ae)) / 3.0;
        assert!(gcn
            .all_items()
            .allclose(&expected.narrow(0, 2, 3), 1e-6, 1e-6, false));
    }

    #[test]
    fn the_gradient_reaches_nodes_the_batch_does_not_touch_and_refresh_follows_the_parameters() {
        let (vs, m) = model(2);
        // Score u0 against i2: i2 is two hops from u0, so layer propagation links them through u1.
        let s = (m.queries(&Tensor::from_slice(&[0i64])) * m.items(&Tensor::from_slice(&[2i64])))
            .sum(Kind::Float);
        s.backward();
        m.after_backward();
        let grad = m.nodes.grad();
        let user1 = grad.get(1).abs().sum(Kind::Float).double_value(&[]);
        assert!(user1 > 0.0, "u1 relays the signal between u0 and i2");
        // A parameter change shows after refresh, not before.
        let before = m.all_items();
        tch::no_grad(|| {
            let _ = m.nodes.get(4).fill_(1.0);
        });
        assert!(m.all_items().allclose(&before, 0.0, 0.0, false));
        m.refresh();
        assert!(!m.all_items().allclose(&before, 0.0, 0.0, false));
        drop(vs);
    }

    /// The gradient carried back by `after_backward` equals autograd's through dense products, whether
    /// the loss also touches the raw parameters (their gradient is then defined) or not, and through
    /// single layers (hop mixing) as well as the mean.
    #[test]
    fn the_carried_gradient_equals_autograd_through_the_dense_propagation() {
        let a = normalised_adjacency(&graph(), 5, 2, false).to_dense(None, false);
        let q = Tensor::from_slice(&[0i64, 1, 0]);
        let c = Tensor::from_slice(&[2i64, 0, 1]);
        for touch_raw in [false, true] {
            let (_vs, m) = model(2);
            m.refresh();
            let (mean_q, mean_c) = (m.queries(&q), m.items(&c));
            let layer1 = &m.item_layers().unwrap()[1];
            let mut loss = (mean_q * mean_c).sum(Kind::Float)
                + layer1.index_select(0, &c).square().sum(Kind::Float);
            if touch_raw {
                loss += m.nodes.narrow(0, 1, 2).square().sum(Kind::Float);
            }
            loss.backward();
            m.after_backward();
            let carried = m.nodes.grad().copy();

            let e = m.nodes.detach().copy().set_requires_grad(true);
            let (ae, aae) = (a.mm(&e), a.mm(&a.mm(&e)));
            let mean = (&e + &ae + &aae) / 3.0;
            let users = mean.narrow(0, 0, 2).index_select(0, &q);
            let items = mean.narrow(0, 2, 3).index_select(0, &c);
            let mut dense = (users * items).sum(Kind::Float)
                + ae.narrow(0, 2, 3)
                    .index_select(0, &c)
                    .square()
                    .sum(Kind::Float);
            if touch_raw {
                dense += e.narrow(0, 1, 2).square().sum(Kind::Float);
            }
            dense.backward();
            assert!(
                carried.allclose(&e.grad(), 1e-5, 1e-6, false),
                "touch_raw {touch_raw}: {carried} vs {}",
                e.grad()
            );
        }
    }
}
