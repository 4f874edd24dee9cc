//! The sentinel scorers the audit runs through each domain's evaluation: models whose every score is
//! known in advance, so what the evaluation must report for them is known too.
//! - `Constant`: every score 0 (all embeddings zero): one tie over the whole pool;
//! - `Hashed`: every (query, candidate) score an independent uniform draw from a hash of the pair (each
//!   query's ranking a uniformly random order), and Gaussian embeddings where the evaluation reads
//!   embeddings (text);
//! - `Oracle`: 1 for the relevant candidates and 0 for the others, and embeddings that put every relevant
//!   candidate nearest (text's home topics, vision's classes).

use tch::{Kind, Tensor};

use crate::data::QueryItems;
use crate::model::{ContrastiveModel, Similarity};

/// Width of the sentinels' embeddings where they have any to give.
const DIM: i64 = 32;

/// Every score 0.
#[derive(Debug)]
pub struct Constant {
    pub n_items: i64,
}

impl ContrastiveModel for Constant {
    fn queries(&self, ids: &Tensor) -> Tensor {
        Tensor::zeros([ids.size()[0], DIM], (Kind::Float, ids.device()))
    }
    fn items(&self, ids: &Tensor) -> Tensor {
        let mut shape = ids.size();
        shape.push(DIM);
        Tensor::zeros(shape.as_slice(), (Kind::Float, ids.device()))
    }
    fn all_items(&self) -> Tensor {
        Tensor::zeros([self.n_items, DIM], (Kind::Float, tch::Device::Cpu))
    }
    fn n_items(&self) -> i64 {
        self.n_items
    }
}

/// SplitMix64 (Steele et al. 2014): a well-mixed 64-bit hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) for the pair (a, b): 53 bits, so ties are practically absent.
fn uniform(seed: u64, a: u64, b: u64) -> f64 {
    (mix(mix(seed ^ a).wrapping_add(b)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Independent uniform scores per (query, candidate), Gaussian embeddings per id.
#[derive(Debug)]
pub struct Hashed {
    pub n_items: i64,
    pub seed: u64,
}

impl Hashed {
    fn score(&self, query: i64, candidate: i64) -> f32 {
        uniform(self.seed, query as u64, candidate as u64) as f32
    }

    /// Standard normal embeddings, one row per id (Box–Muller over the hash).
    fn gaussian(&self, ids: &Tensor) -> Tensor {
        let ids: Vec<i64> =
            Vec::try_from(ids.reshape([-1]).to_device(tch::Device::Cpu)).expect("int64 ids");
        let mut values = Vec::with_capacity(ids.len() * DIM as usize);
        for &id in &ids {
            for j in 0..DIM as u64 {
                let u1 = uniform(self.seed ^ 0x9a55, id as u64, 2 * j).max(1e-300);
                let u2 = uniform(self.seed ^ 0x9a55, id as u64, 2 * j + 1);
                values.push(((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32);
            }
        }
        Tensor::from_slice(&values).view([ids.len() as i64, DIM])
    }
}

/// `score(query, candidate)` of every query (B) against its own candidates (B, M).
fn scores_of_candidates(
    queries: &Tensor,
    candidates: &Tensor,
    score: impl Fn(i64, i64) -> f32,
) -> Result<Tensor, tch::TchError> {
    let q: Vec<i64> = Vec::try_from(queries.to_device(tch::Device::Cpu))?;
    let (rows, width) = (candidates.size()[0], candidates.size()[1]);
    let c: Vec<i64> = Vec::try_from(candidates.reshape([-1]).to_device(tch::Device::Cpu))?;
    let s: Vec<f32> = c
        .iter()
        .enumerate()
        .map(|(j, &item)| score(q[j / width as usize], item))
        .collect();
    Ok(Tensor::from_slice(&s).view([rows, width]))
}

/// `score(query, candidate)` of every query (B) against the whole pool of `n` (B, n).
fn scores_of_all(
    queries: &Tensor,
    n: i64,
    score: impl Fn(i64, i64) -> f32,
) -> Result<Tensor, tch::TchError> {
    let q: Vec<i64> = Vec::try_from(queries.to_device(tch::Device::Cpu))?;
    let s: Vec<f32> = q
        .iter()
        .flat_map(|&query| (0..n).map(move |c| (query, c)))
        .map(|(query, c)| score(query, c))
        .collect();
    Ok(Tensor::from_slice(&s).view([q.len() as i64, n]))
}

impl ContrastiveModel for Hashed {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.gaussian(ids)
    }
    fn items(&self, ids: &Tensor) -> Tensor {
        let mut shape = ids.size();
        shape.push(DIM);
        self.gaussian(ids).view(shape.as_slice())
    }
    fn all_items(&self) -> Tensor {
        self.gaussian(&Tensor::arange(
            self.n_items,
            (Kind::Int64, tch::Device::Cpu),
        ))
    }
    fn n_items(&self) -> i64 {
        self.n_items
    }
    /// Not a dot product: evaluations score through `score_all` and `score_candidates`.
    fn similarity(&self) -> Similarity {
        Similarity::NegL1
    }
    fn score_candidates(
        &self,
        queries: &Tensor,
        candidates: &Tensor,
    ) -> Result<Tensor, tch::TchError> {
        scores_of_candidates(queries, candidates, |q, c| self.score(q, c))
    }
    fn score_all(&self, queries: &Tensor) -> Result<Tensor, tch::TchError> {
        scores_of_all(queries, self.n_items, |q, c| self.score(q, c))
    }
}

/// 1 for each query's relevant candidates, 0 for the rest; `embedding` rows (one per id) where the
/// evaluation reads embeddings.
#[derive(Debug)]
pub struct Oracle {
    pub relevant: QueryItems,
    pub n_items: i64,
    pub embedding: Option<Tensor>,
}

impl Oracle {
    fn score(&self, query: i64, candidate: i64) -> f32 {
        f32::from(u8::from(
            self.relevant.contains(query as usize, candidate as u32),
        ))
    }

    fn rows(&self, ids: &Tensor) -> Tensor {
        match &self.embedding {
            Some(e) => e.index_select(0, &ids.reshape([-1])),
            None => Tensor::zeros([ids.numel() as i64, DIM], (Kind::Float, tch::Device::Cpu)),
        }
    }
}

impl ContrastiveModel for Oracle {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.rows(ids)
    }
    fn items(&self, ids: &Tensor) -> Tensor {
        let mut shape = ids.size();
        let rows = self.rows(ids);
        shape.push(rows.size()[1]);
        rows.view(shape.as_slice())
    }
    fn all_items(&self) -> Tensor {
        self.rows(&Tensor::arange(
            self.n_items,
            (Kind::Int64, tch::Device::Cpu),
        ))
    }
    fn n_items(&self) -> i64 {
        self.n_items
    }
    fn similarity(&self) -> Similarity {
        Similarity::NegL1
    }
    fn score_candidates(
        &self,
        queries: &Tensor,
        candidates: &Tensor,
    ) -> Result<Tensor, tch::TchError> {
        scores_of_candidates(queries, candidates, |q, c| self.score(q, c))
    }
    /// Zeros with each query's relevant candidates set: no lookup per pair over a large pool.
    fn score_all(&self, queries: &Tensor) -> Result<Tensor, tch::TchError> {
        let q: Vec<i64> = Vec::try_from(queries.to_device(tch::Device::Cpu))?;
        let n = self.n_items as usize;
        let mut s = vec![0f32; q.len() * n];
        for (row, &query) in q.iter().enumerate() {
            for &i in self.relevant.items(query as usize) {
                s[row * n + i as usize] = 1.0;
            }
        }
        Ok(Tensor::from_slice(&s).view([q.len() as i64, n as i64]))
    }
}

/// One-hot rows of `classes` (n rows, one column per class), f32.
pub fn one_hot(classes: &[u32]) -> Tensor {
    let n_classes = classes.iter().max().map_or(1, |&c| c as i64 + 1);
    let ids = Tensor::from_slice(&classes.iter().map(|&c| c as i64).collect::<Vec<_>>());
    ids.one_hot(n_classes).to_kind(Kind::Float)
}
