//! How a model turns a query embedding and a candidate embedding into a score. Dot products (MF,
//! DistMult, ComplEx with [re | im] halves) and minus a distance (TransE's L1 or L2 norm, RotatE's sum of
//! complex moduli): a higher score is always the better candidate.

use tch::{Kind, TchError, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Similarity {
    /// ⟨q, c⟩.
    Dot,
    /// −‖q − c‖₁ (TransE, L1).
    NegL1,
    /// −‖q − c‖₂ (TransE, L2).
    NegL2,
    /// −Σⱼ |qⱼ − cⱼ| over complex coordinates stored as [re | im] halves (RotatE).
    NegModulusSum,
}

/// Bytes of intermediate values a blocked all-candidates distance may hold at once.
const BLOCK_BYTES: i64 = 64 << 20;

impl Similarity {
    /// s(q, c) over the last dimension, broadcasting the others: `q` (..., D) and `c` (..., D) → (...).
    pub fn f_pairwise(self, q: &Tensor, c: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Similarity::Dot => (q * c).f_sum_dim_intlist(-1, false, None),
            Similarity::NegL1 => Ok(-(q - c).f_abs()?.f_sum_dim_intlist(-1, false, None)?),
            Similarity::NegL2 => Ok(-(q - c).f_norm_scalaropt_dim(2, [-1i64].as_slice(), false)?),
            Similarity::NegModulusSum => {
                let d = q - c;
                let h = d.size()[d.dim() - 1] / 2;
                let (re, im) = (d.f_narrow(-1, 0, h)?, d.f_narrow(-1, h, h)?);
                // The modulus of a zero difference has no gradient at 0: a tiny floor keeps it finite.
                let modulus = (re.square() + im.square() + 1e-12).f_sqrt()?;
                Ok(-modulus.f_sum_dim_intlist(-1, false, None)?)
            }
        }
    }

    /// `pairwise` without a `Result`, for shapes the caller built itself.
    pub fn pairwise(self, q: &Tensor, c: &Tensor) -> Tensor {
        self.f_pairwise(q, c)
            .expect("query and candidate embeddings of one model share their width")
    }

    /// Every query against every candidate: `q` (B, D), `table` (N, D) → (B, N). Dot products are one
    /// matrix product; L1/L2 distances use `cdist`; RotatE's moduli are computed in blocks of candidates
    /// so the (B, n, D) differences stay within `BLOCK_BYTES`.
    pub fn f_all(self, q: &Tensor, table: &Tensor) -> Result<Tensor, TchError> {
        match self {
            Similarity::Dot => q.f_matmul(&table.tr()),
            // Exact distances (compute mode 2: never the matrix-product shortcut, whose rounding
            // would break ties differently from the pairwise scores).
            Similarity::NegL1 => Ok(-Tensor::f_cdist(q, table, 1.0, 2)?),
            Similarity::NegL2 => Ok(-Tensor::f_cdist(q, table, 2.0, 2)?),
            Similarity::NegModulusSum => {
                let (b, n, d) = (q.size()[0], table.size()[0], table.size()[1]);
                let per_candidate = (b * d * 4 * 3).max(1);
                let block = (BLOCK_BYTES / per_candidate).clamp(1, n.max(1));
                // Written block by block into one preallocated result: allocating a small part per
                // block between the large temporaries fragments the heap (glibc kept gigabytes).
                let out = Tensor::f_empty([b, n], (Kind::Float, q.device()))?;
                let mut start = 0;
                while start < n {
                    let len = block.min(n - start);
                    let c = table.f_narrow(0, start, len)?.unsqueeze(0); // (1, len, D)
                    let part = self.f_pairwise(&q.unsqueeze(1), &c)?;
                    out.f_narrow(1, start, len)?.f_copy_(&part)?;
                    start += len;
                }
                Ok(out)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_similarity_matches_hand_computed_values_pairwise_and_against_all() {
        // q = (1, 2, 0, −1), candidates c0 = (0, 0, 0, 0), c1 = (2, 0, 1, −1).
        let q = Tensor::from_slice(&[1.0f32, 2.0, 0.0, -1.0]).view([1, 4]);
        let table = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 0.0, 2.0, 0.0, 1.0, -1.0]).view([2, 4]);
        // Complex view of q: (1 + 0i, 2 − 1i); of c1: (2 + 1i, 0 − 1i).
        let cases = [
            (Similarity::Dot, [0.0, 2.0 + 1.0]),
            (Similarity::NegL1, [-4.0, -(1.0 + 2.0 + 1.0 + 0.0)]),
            (
                Similarity::NegL2,
                [-(6.0f64).sqrt(), -(1.0f64 + 4.0 + 1.0).sqrt()],
            ),
            (
                Similarity::NegModulusSum,
                // |1 − 0i|... q − c0 = (1 + 0i, 2 − 1i): 1 + √5; q − c1 = (−1 − 1i, 2 + 0i): √2 + 2.
                [-(1.0 + 5f64.sqrt()), -(2f64.sqrt() + 2.0)],
            ),
        ];
        for (s, expected) in cases {
            let all = Vec::<f32>::try_from(s.f_all(&q, &table).unwrap().reshape([-1])).unwrap();
            let pair = Vec::<f32>::try_from(
                s.pairwise(&q.unsqueeze(1), &table.unsqueeze(0))
                    .reshape([-1]),
            )
            .unwrap();
            for j in 0..2 {
                assert!(
                    (all[j] as f64 - expected[j]).abs() < 1e-4,
                    "{s:?} all[{j}] = {}",
                    all[j]
                );
                assert!(
                    (pair[j] as f64 - expected[j]).abs() < 1e-4,
                    "{s:?} pair[{j}] = {}",
                    pair[j]
                );
            }
        }
    }
}
