//! The graph auto-encoder's encoder (Kipf & Welling, "Variational Graph Auto-Encoders", 2016; GCN layers
//! of Kipf & Welling, ICLR 2017): Z = Â ReLU(Â X W₀) W₁ with Â = D^-1/2 (A + I) D^-1/2 of the training
//! graph, X the node features (the identity without features: the featureless GAE), Glorot-initialised
//! weights, no biases; the decoder is the inner product, s(u, v) = z_u · z_v. The paper's sizes are
//! 32 → 16. The encoder runs once per training step and once per evaluation, over the whole graph.

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::ContrastiveModel;
use crate::data::{NodeFeatures, QueryItems};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcnConfig {
    /// Width of the hidden GCN layer (GAE: 32).
    pub hidden: i64,
    /// Width of the node embeddings Z (GAE: 16).
    pub dim: i64,
    /// Use the data's node features (default true); false, or data without features: X = I.
    pub features: bool,
}

impl Default for GcnConfig {
    fn default() -> Self {
        GcnConfig {
            hidden: 32,
            dim: 16,
            features: true,
        }
    }
}

pub struct Gcn {
    /// Sparse X (nodes × features), or None for X = I.
    x: Option<Tensor>,
    w0: Tensor,
    w1: Tensor,
    adjacency: Tensor,
    n_nodes: i64,
    z: Mutex<Option<Tensor>>,
}

impl Gcn {
    pub fn new(
        root: &nn::Path,
        c: &GcnConfig,
        train: &QueryItems,
        features: Option<&NodeFeatures>,
        seed: u64,
        device: Device,
    ) -> Gcn {
        let n = train.n_queries();
        let features = features.filter(|_| c.features);
        let n_in = features.map_or(n, |f| f.n_features);
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut glorot = |rows: usize, cols: i64| {
            let r = (6.0 / (rows as f64 + cols as f64)).sqrt() as f32;
            let values: Vec<f32> = (0..rows * cols as usize)
                .map(|_| rng.random_range(-r..r))
                .collect();
            Tensor::from_slice(&values).view([rows as i64, cols])
        };
        let (w0, w1) = (glorot(n_in, c.hidden), glorot(c.hidden as usize, c.dim));
        Gcn {
            x: features.map(|f| sparse_rows(f, n).to_device(device)),
            w0: root.var_copy("w0", &w0),
            w1: root.var_copy("w1", &w1),
            adjacency: self_looped_adjacency(train).to_device(device),
            n_nodes: n as i64,
            z: Mutex::new(None),
        }
    }

    fn encode(&self) -> Tensor {
        let xw = match &self.x {
            Some(x) => x.mm(&self.w0),
            None => self.w0.shallow_clone(),
        };
        let h = self.adjacency.mm(&xw).relu();
        self.adjacency.mm(&h.mm(&self.w1))
    }

    fn with<T>(&self, f: impl FnOnce(&Tensor) -> T) -> T {
        let mut cache = self.z.lock().expect("no panic while encoding");
        f(cache.get_or_insert_with(|| self.encode()))
    }
}

/// The features as a sparse CSR matrix (bag-of-words features are mostly zeros).
fn sparse_rows(f: &NodeFeatures, n: usize) -> Tensor {
    let (mut crow, mut col, mut val) = (vec![0i64], Vec::new(), Vec::new());
    for row in f.values.chunks(f.n_features).take(n) {
        for (j, &v) in row.iter().enumerate() {
            if v != 0.0 {
                col.push(j as i64);
                val.push(v);
            }
        }
        crow.push(col.len() as i64);
    }
    Tensor::sparse_csr_tensor_crow_col_value_size(
        &Tensor::from_slice(&crow),
        &Tensor::from_slice(&col),
        &Tensor::from_slice(&val),
        [n as i64, f.n_features as i64],
        (Kind::Float, Device::Cpu),
    )
}

/// D^-1/2 (A + I) D^-1/2 of the (symmetric) training graph, sparse CSR.
fn self_looped_adjacency(train: &QueryItems) -> Tensor {
    let n = train.n_queries();
    let rows: Vec<Vec<u32>> = (0..n)
        .map(|v| {
            let mut r: Vec<u32> = train.items(v).to_vec();
            if let Err(at) = r.binary_search(&(v as u32)) {
                r.insert(at, v as u32);
            }
            r
        })
        .collect();
    super::lightgcn::symmetric_normalised(&rows)
}

impl ContrastiveModel for Gcn {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.with(|z| z.index_select(0, ids))
    }

    fn items(&self, ids: &Tensor) -> Tensor {
        self.with(|z| {
            if ids.dim() == 1 {
                return z.index_select(0, ids);
            }
            let mut shape = ids.size();
            shape.push(z.size()[1]);
            z.index_select(0, &ids.reshape([-1])).view(shape.as_slice())
        })
    }

    fn all_items(&self) -> Tensor {
        self.with(|z| z.shallow_clone())
    }

    fn n_items(&self) -> i64 {
        self.n_nodes
    }

    fn refresh(&self) {
        *self.z.lock().expect("no panic while encoding") = Some(self.encode());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Interactions;

    fn path_graph(n: u32) -> QueryItems {
        let mut x = Interactions::default();
        for v in 0..n - 1 {
            x.push(v, v + 1);
            x.push(v + 1, v);
        }
        QueryItems::from_interactions(n as usize, &x)
    }

    #[test]
    fn the_encoder_is_two_gcn_layers_and_trains_both_weights() {
        let g = path_graph(4);
        let f = NodeFeatures {
            n_features: 3,
            values: vec![1., 0., 0., 0., 1., 0., 0., 0., 1., 1., 1., 0.],
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let c = GcnConfig {
            hidden: 5,
            dim: 2,
            features: true,
        };
        let m = Gcn::new(&vs.root(), &c, &g, Some(&f), 1, Device::Cpu);
        let a = self_looped_adjacency(&g).to_dense(None, false);
        let x = Tensor::from_slice(&f.values).view([4, 3]);
        let expected = a.mm(&a.mm(&x.mm(&m.w0)).relu().mm(&m.w1));
        let z = m.all_items();
        assert!(z.allclose(&expected, 1e-5, 1e-6, false));
        // Node 1 (degree 2, with its self-loop 3): Â[1][1] = 1/3.
        let a: Vec<Vec<f32>> = Vec::try_from(a).unwrap();
        assert!((a[1][1] - 1.0 / 3.0).abs() < 1e-6);
        let s = (m.queries(&Tensor::from_slice(&[0i64])) * m.items(&Tensor::from_slice(&[3i64])))
            .sum(Kind::Float);
        s.backward();
        for w in [&m.w0, &m.w1] {
            assert!(w.grad().abs().sum(Kind::Float).double_value(&[]) > 0.0);
        }
    }

    #[test]
    fn without_features_the_first_layer_is_a_node_table() {
        let g = path_graph(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let m = Gcn::new(&vs.root(), &GcnConfig::default(), &g, None, 1, Device::Cpu);
        assert_eq!(m.w0.size(), [5, 32]);
        assert_eq!(m.all_items().size(), [5, 16]);
    }
}
