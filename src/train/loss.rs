//! Losses over one positive score and k negative scores per row.

use tch::{Kind, Tensor};

/// Behaviour version of the losses (enters every cell's configuration hash): bump it when a loss's
/// value or gradient changes.
pub const VERSION: u32 = 1;

/// BPR (Rendle et al., UAI 2009) with k negatives: for each row the mean over its negatives of
/// w · −log σ(s⁺ − s⁻), then the mean over rows. `pos` (B), `neg` (B, k); `weights` (B, k), if given, are
/// each slot's weight relative to an ordinary negative (1), never renormalised; `valid` (B, k) masks slots
/// out (the mean is then over the valid slots; a row with none contributes 0).
pub fn bpr(pos: &Tensor, neg: &Tensor, weights: Option<&Tensor>, valid: Option<&Tensor>) -> Tensor {
    let per_negative = -(pos.unsqueeze(1) - neg).log_sigmoid();
    let weighted = match weights {
        Some(w) => per_negative * w,
        None => per_negative,
    };
    match valid {
        None => weighted.mean(Kind::Float),
        Some(v) => {
            let mask = v.to_kind(Kind::Float);
            let count = mask.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
            ((weighted * mask).sum_dim_intlist(1, false, Kind::Float) / count).mean(Kind::Float)
        }
    }
}

/// Debiased contrastive loss (Chuang et al., NeurIPS 2020) and, with `beta` > 0, its hard-negative
/// version (Robinson et al., ICLR 2021), over scores divided by `temperature` t:
///   −log( e^{s⁺} / (e^{s⁺} + N·g) ),  g = max( (E_w[e^{s⁻}] − τ⁺ e^{s⁺}) / (1 − τ⁺), e^{−1/t} )
/// where E_w is the mean over the N valid negatives weighted by softmax(β·s⁻) (uniform when β = 0).
/// τ⁺ = 0, β = 0 is InfoNCE. Computed with a per-row shift so large scores do not overflow.
pub fn debiased(
    pos: &Tensor,
    neg: &Tensor,
    valid: Option<&Tensor>,
    tau_plus: f64,
    beta: f64,
    temperature: f64,
) -> Tensor {
    let (pos, neg) = (pos / temperature, neg / temperature);
    let mask = valid.map(|v| v.to_kind(Kind::Float));
    let n = match &mask {
        Some(m) => m.sum_dim_intlist(1, false, Kind::Float),
        None => Tensor::full(
            [neg.size()[0]],
            neg.size()[1] as f64,
            (Kind::Float, neg.device()),
        ),
    };
    // Weights over the valid negatives: softmax(β·s⁻), masked slots at −inf.
    let logits = &neg * beta;
    let logits = match &mask {
        Some(m) => logits.masked_fill(&m.eq(0.0), f64::NEG_INFINITY),
        None => logits,
    };
    let w = logits.softmax(1, Kind::Float).nan_to_num(0.0, None, None);
    let shift = neg
        .amax(1, false)
        .maximum(&pos)
        .maximum(&Tensor::full_like(&pos, -1.0 / temperature))
        .detach();
    let pos_e = (&pos - &shift).exp();
    let neg_mean = (w * (&neg - shift.unsqueeze(1)).exp()).sum_dim_intlist(1, false, Kind::Float);
    let floor = (-1.0 / temperature - &shift).exp();
    let g = ((neg_mean - &pos_e * tau_plus) / (1.0 - tau_plus)).maximum(&floor);
    ((pos_e + n * g).log() + shift - pos).mean(Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debiased_is_infonce_without_prior_and_subtracts_the_positive_mass_with_one() {
        let pos = Tensor::from_slice(&[2.0f32]);
        let neg = Tensor::from_slice(&[1.0f32, 0.5, 3.0]).view([1, 3]);
        let value = |tau, beta| debiased(&pos, &neg, None, tau, beta, 1.0).double_value(&[]);
        let e = f64::exp;
        let infonce = -(e(2.0) / (e(2.0) + e(1.0) + e(0.5) + e(3.0))).ln();
        assert!((value(0.0, 0.0) - infonce).abs() < 1e-5);
        // τ⁺ = 0.1: g = (mean e^{s⁻} − 0.1·e^{s⁺}) / 0.9.
        let g = ((e(1.0) + e(0.5) + e(3.0)) / 3.0 - 0.1 * e(2.0)) / 0.9;
        let dcl = -(e(2.0) / (e(2.0) + 3.0 * g)).ln();
        assert!((value(0.1, 0.0) - dcl).abs() < 1e-5);
        // β = 1 weights the mean by softmax(s⁻): the hard negative (3.0) dominates, the loss grows.
        let w: Vec<f64> = [1.0, 0.5, 3.0].iter().map(|&s| e(s)).collect();
        let total: f64 = w.iter().sum();
        let mean = w.iter().map(|wi| wi / total * wi).sum::<f64>();
        let hcl = -(e(2.0) / (e(2.0) + 3.0 * (mean - 0.1 * e(2.0)) / 0.9)).ln();
        assert!((value(0.1, 1.0) - hcl).abs() < 1e-4);
        assert!(value(0.1, 1.0) > value(0.1, 0.0));
        // The estimate never goes below N·e^{−1/t}, and huge scores do not overflow.
        let big = debiased(&(&pos * 100.0), &(&neg * 100.0), None, 0.5, 0.0, 1.0);
        assert!(big.double_value(&[]).is_finite());
        // A masked slot is ignored: masking the 3.0 equals dropping it.
        let mask = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let dropped = debiased(&pos, &neg.narrow(1, 0, 2), None, 0.1, 1.0, 1.0);
        let masked = debiased(&pos, &neg, Some(&mask), 0.1, 1.0, 1.0);
        assert!((dropped.double_value(&[]) - masked.double_value(&[])).abs() < 1e-5);
    }

    #[test]
    fn matches_a_hand_computed_value() {
        let pos = Tensor::from_slice(&[2.0f32, 0.0]);
        let neg = Tensor::from_slice(&[1.0f32, 3.0, 0.0, -1.0]).view([2, 2]);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let expected = -(sig(1.0).ln() + sig(-1.0).ln() + sig(0.0).ln() + sig(1.0).ln()) / 4.0;
        assert!((bpr(&pos, &neg, None, None).double_value(&[]) - expected).abs() < 1e-6);
        // Weights of 1 equal the plain mean, weights of ½ halve it (no renormalisation, at any k); a
        // mask that drops nothing changes nothing.
        let ones = Tensor::ones([2, 2], (Kind::Float, tch::Device::Cpu));
        assert!((bpr(&pos, &neg, Some(&ones), None).double_value(&[]) - expected).abs() < 1e-6);
        let half = &ones * 0.5;
        let halved = bpr(&pos, &neg, Some(&half), None).double_value(&[]);
        assert!((halved - expected / 2.0).abs() < 1e-6);
        let one = |t: &Tensor| t.narrow(1, 0, 1);
        let single = bpr(&pos, &one(&neg), Some(&one(&half)), None).double_value(&[]);
        let plain = bpr(&pos, &one(&neg), None, None).double_value(&[]);
        assert!(
            (single - plain / 2.0).abs() < 1e-6,
            "k = 1 keeps the weight"
        );
        let all = Tensor::ones([2, 2], (Kind::Bool, tch::Device::Cpu));
        assert!((bpr(&pos, &neg, None, Some(&all)).double_value(&[]) - expected).abs() < 1e-6);
        // Masking the second negative of row 0 leaves only its first.
        let mask = Tensor::from_slice(&[true, false, true, true]).view([2, 2]);
        let masked = (-(sig(1.0).ln()) - (sig(0.0).ln() + sig(1.0).ln()) / 2.0) / 2.0;
        assert!((bpr(&pos, &neg, None, Some(&mask)).double_value(&[]) - masked).abs() < 1e-6);
    }
}
