//! Losses over one positive score and k negative scores per row.

use tch::{Kind, Tensor};

/// BPR (Rendle et al., UAI 2009) with k negatives: for each row the mean over its negatives of
/// −log σ(s⁺ − s⁻), then the mean over rows. `pos` (B), `neg` (B, k); `weights` (B, k), if given, replace
/// the uniform 1/k (rows sum to 1); `valid` (B, k) masks slots out.
pub fn bpr(pos: &Tensor, neg: &Tensor, weights: Option<&Tensor>, valid: Option<&Tensor>) -> Tensor {
    let per_negative = -(pos.unsqueeze(1) - neg).log_sigmoid();
    let weights = match (weights, valid) {
        (None, None) => return per_negative.mean(Kind::Float),
        (Some(w), None) => w.shallow_clone(),
        (w, Some(v)) => {
            let mask = v.to_kind(Kind::Float);
            let w = w.map_or_else(|| mask.shallow_clone(), |w| w * &mask);
            // Renormalise over the valid slots; a row with none contributes 0.
            let total = w.sum_dim_intlist(1, true, Kind::Float).clamp_min(1e-12);
            w / total
        }
    };
    (per_negative * weights)
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_value() {
        let pos = Tensor::from_slice(&[2.0f32, 0.0]);
        let neg = Tensor::from_slice(&[1.0f32, 3.0, 0.0, -1.0]).view([2, 2]);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expected = -(sig(1.0).ln() + sig(-1.0).ln() + sig(0.0).ln() + sig(1.0).ln()) / 4.0;
        assert!((bpr(&pos, &neg, None, None).double_value(&[]) - expected).abs() < 1e-6);
        // Uniform weights equal the plain mean; a mask that drops nothing changes nothing.
        let w = Tensor::full([2, 2], 0.5, (Kind::Float, tch::Device::Cpu));
        assert!((bpr(&pos, &neg, Some(&w), None).double_value(&[]) - expected).abs() < 1e-6);
        let all = Tensor::ones([2, 2], (Kind::Bool, tch::Device::Cpu));
        assert!((bpr(&pos, &neg, None, Some(&all)).double_value(&[]) - expected).abs() < 1e-6);
        // Masking the second negative of row 0 leaves only its first.
        let mask = Tensor::from_slice(&[true, false, true, true]).view([2, 2]);
        let masked = (-(sig(1.0).ln()) - (sig(0.0).ln() + sig(1.0).ln()) / 2.0) / 2.0;
        assert!((bpr(&pos, &neg, None, Some(&mask)).double_value(&[]) - masked).abs() < 1e-6);
    }
}
