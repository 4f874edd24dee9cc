//! Losses over one positive score and k negative scores per row: the loss axis of the grid. A sampler
//! says which negatives and with what weight, validity or proposal probability; the loss says what to do
//! with them. Every loss takes per-slot weights (relative to an ordinary negative, never renormalised)
//! and a validity mask; the mean runs over the valid slots of a row, then over rows.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Behaviour version of the losses (enters every cell's configuration hash): bump it when a loss's
/// value or gradient changes.
pub const VERSION: u32 = 1;

/// One loss with its parameters: `loss = "bce"` or `loss = { kind = "softmax", temperature = 0.1 }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LossConfig {
    /// BPR (Rendle et al. 2009): −log σ(s⁺ − s⁻).
    Bpr,
    /// Logistic loss on the positive and on each negative (SGNS, most KGE): −log σ(s⁺) − log σ(−s⁻).
    Bce,
    /// Sampled softmax / InfoNCE over [s⁺, s⁻…] / temperature, every logit s/τ minus its log q when the
    /// sampler gives one (Yi et al. 2019: the positive's too). logQ corrects only this loss.
    Softmax { temperature: f64 },
    /// Pairwise hinge max(0, margin − s⁺ + s⁻) (TransE).
    Margin { margin: f64 },
    /// RotatE's self-adversarial negative-sampling loss: −log σ(margin + s⁺) − Σᵢ pᵢ log σ(−s⁻ᵢ − margin),
    /// pᵢ = softmax(adversarial_temperature · s⁻) without gradient (0: the plain uniform mean).
    Nssa {
        margin: f64,
        adversarial_temperature: f64,
    },
    /// SimpleX's cosine contrastive loss: max(0, 1 − cos⁺) + w · mean max(0, cos⁻ − margin), with
    /// w = negative_weight, or the sum over negatives when it is not given.
    Ccl {
        margin: f64,
        #[serde(skip_serializing_if = "Option::is_none")]
        negative_weight: Option<f64>,
    },
}

/// The loss kinds and their parameters with defaults (for messages and `list losses`).
pub const LOSSES: &[(&str, &str)] = &[
    ("bpr", "−log σ(s⁺ − s⁻) (Rendle et al. 2009); no parameters"),
    ("bce", "−log σ(s⁺) − mean log σ(−s⁻) (SGNS, most KGE); no parameters"),
    ("softmax", "sampled softmax / InfoNCE, logQ on every logit, s/τ − log q (Yi et al. 2019; the only loss logQ corrects); temperature = 1"),
    ("margin", "mean max(0, margin − s⁺ + s⁻) (TransE); margin = 1"),
    ("nssa", "RotatE's self-adversarial loss (Sun et al. 2019); margin = 9, adversarial_temperature = 1: above 0 it weights every sampler's negatives by softmax(α · score), so `uniform` under it is RotatE's self-adversarial sampling and the `self-adversarial` sampler is refused (it would weight twice); 0 is the plain negative-sampling loss"),
    ("ccl", "SimpleX's cosine contrastive loss (Mao et al. 2021), dot-product models; margin = 0.9, negative_weight = sum over negatives"),
];

impl LossConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            LossConfig::Bpr => "bpr",
            LossConfig::Bce => "bce",
            LossConfig::Softmax { .. } => "softmax",
            LossConfig::Margin { .. } => "margin",
            LossConfig::Nssa { .. } => "nssa",
            LossConfig::Ccl { .. } => "ccl",
        }
    }

    /// The loss of a kind at its defaults.
    pub fn default_of(kind: &str) -> Option<LossConfig> {
        Some(match kind {
            "bpr" => LossConfig::Bpr,
            "bce" => LossConfig::Bce,
            "softmax" => LossConfig::Softmax { temperature: 1.0 },
            "margin" => LossConfig::Margin { margin: 1.0 },
            "nssa" => LossConfig::Nssa {
                margin: 9.0,
                adversarial_temperature: 1.0,
            },
            "ccl" => LossConfig::Ccl {
                margin: 0.9,
                negative_weight: None,
            },
            _ => return None,
        })
    }

    /// A label for run ids: the kind, with the parameters that differ from the defaults.
    pub fn label(&self) -> String {
        let defaults = Self::default_of(self.kind()).expect("every kind has defaults");
        let (mine, theirs) = (
            serde_json::to_value(self).expect("serialises"),
            serde_json::to_value(&defaults).expect("serialises"),
        );
        let mut label = self.kind().to_string();
        if let (Some(m), Some(t)) = (mine.as_object(), theirs.as_object()) {
            for (k, v) in m {
                if k != "kind" && t.get(k) != Some(v) {
                    let value = v.as_f64().map_or(v.to_string(), |x| x.to_string());
                    label.push_str(&format!("-{}{value}", short(k)));
                }
            }
        }
        label
    }

    /// Problems with the parameters, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        match *self {
            LossConfig::Softmax { temperature }
                if !(temperature > 0.0 && temperature.is_finite()) =>
            {
                p.push(("temperature", format!("must be > 0 (got {temperature})")))
            }
            LossConfig::Margin { margin } | LossConfig::Nssa { margin, .. }
                if !margin.is_finite() =>
            {
                p.push(("margin", format!("must be a finite number (got {margin})")))
            }
            LossConfig::Nssa {
                adversarial_temperature: a,
                ..
            } if !(a >= 0.0 && a.is_finite()) => {
                p.push(("adversarial_temperature", format!("must be >= 0 (got {a})")))
            }
            LossConfig::Ccl {
                margin,
                negative_weight,
            } => {
                if !(-1.0..1.0).contains(&margin) {
                    p.push((
                        "margin",
                        format!("a cosine margin must be in [-1, 1) (got {margin})"),
                    ));
                }
                if negative_weight.is_some_and(|w| !(w >= 0.0 && w.is_finite())) {
                    p.push(("negative_weight", "must be >= 0".into()));
                }
            }
            _ => {}
        }
        p
    }

    /// Whether the loss needs cosine similarities (and so a dot-product model).
    pub fn needs_cosine(&self) -> bool {
        matches!(self, LossConfig::Ccl { .. })
    }

    /// A softmax over the positive and the negatives (a partition function): where the batch- and
    /// queue-based samplers take every entry, as their papers do, and where logQ belongs.
    pub fn is_softmax(&self) -> bool {
        matches!(self, LossConfig::Softmax { .. })
    }

    /// Has a place for further positives among the negatives (`Scored::attract`).
    pub fn attracts(&self) -> bool {
        matches!(self, LossConfig::Bce | LossConfig::Softmax { .. })
    }

    /// The temperature with which the loss itself weights negatives by softmax(α · score) (RotatE's
    /// self-adversarial sampling), when it does.
    pub fn self_adversarial(&self) -> Option<f64> {
        match *self {
            LossConfig::Nssa {
                adversarial_temperature,
                ..
            } if adversarial_temperature > 0.0 => Some(adversarial_temperature),
            _ => None,
        }
    }
}

/// What a batch is trained on: the loss axis's loss over sampled negatives, or an objective the
/// sampler's method brings with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// The domain's loss (BPR for recommendation).
    Domain,
    /// Debiased contrastive loss (Chuang et al. 2020) with positive prior `tau_plus`; `beta` > 0 adds the
    /// hardness reweighting of Robinson et al. 2021; scores are divided by `temperature`.
    Debiased {
        tau_plus: f64,
        beta: f64,
        temperature: f64,
    },
    /// ENMF's whole-data weighted squared loss with c₀ = `negative_weight` (no negatives drawn; each
    /// row's whole-data term weighted by `Whole::row_weights`).
    WholeData { negative_weight: f64 },
    /// Cross-entropy of the positive against every candidate (LibKGE 1vsAll; `neg` holds every score).
    OneVsAll,
    /// Binary cross-entropy against every candidate, the query's training positives (`valid` false) as 1
    /// (LibKGE KvsAll), rows weighted by `row_weights`, the ones' terms by `pos_weight` (GAE's weighted
    /// reconstruction loss; 1 for KvsAll).
    KvsAll { pos_weight: f64 },
}

/// What the whole-data objectives read besides the scores.
pub struct Whole<'a> {
    /// The batch's query embeddings (B, D).
    pub queries: &'a Tensor,
    /// Every candidate's embedding (N, D), computed only when an objective needs it.
    pub all_items: &'a dyn Fn() -> Tensor,
    /// Per-row weights (B) of the whole-data terms.
    pub row_weights: Option<&'a Tensor>,
}

/// The batch's loss value under `objective`: the loss axis's `loss` for `Objective::Domain`, else the
/// objective's own.
pub fn objective(objective: &Objective, loss: &LossConfig, s: &Scored, whole: &Whole) -> Tensor {
    let (pos, neg) = (s.pos, s.neg);
    match *objective {
        Objective::Domain => compute(loss, s),
        Objective::WholeData { negative_weight } => {
            // ENMF: Σ_rows ((1 − c₀) ŷ² − 2ŷ) over the observed pairs + c₀ Σ_rows w_r p_rᵀ G p_r with
            // G = Σ_i q_i q_iᵀ, the whole-data term in O((B + N) d²); mean over rows.
            let all = (whole.all_items)();
            let gram = all.tr().matmul(&all); // (D, D)
            let rows = whole.row_weights.expect("enmf gives row weights");
            let u = whole.queries;
            let whole_term = (u.matmul(&gram) * u).sum_dim_intlist(-1, false, Kind::Float) * rows;
            let observed = pos.square() * (1.0 - negative_weight) - pos * 2.0;
            (observed + whole_term * negative_weight).mean(Kind::Float)
        }
        Objective::OneVsAll => {
            // Cross-entropy over every candidate, the positive among them (neg holds every score).
            (neg.logsumexp([1i64].as_slice(), false) - pos).mean(Kind::Float)
        }
        Objective::KvsAll { pos_weight } => {
            // Σ_j BCE(x_j, y_j), the ones' terms × pos_weight, as one dense pass and a sparse one: every
            // candidate as a zero, softplus(x), then at the ones (a few per row) pos_weight ·
            // softplus(−x) − softplus(x) in its place. Libtorch's BCE with a dense target and pos_weight
            // makes several passes over the (rows, N) scores, and as many again backward.
            let ones = s
                .valid
                .expect("k-vs-all marks the training answers")
                .logical_not()
                .nonzero(); // (P, 2)
            let (row, col) = (ones.select(1, 0), ones.select(1, 1));
            let x = neg.index(&[Some(&row), Some(&col)]);
            let correction = (-&x).softplus() * pos_weight - x.softplus();
            let per_row = neg
                .softplus()
                .sum_dim_intlist(1, false, Kind::Float)
                .index_add(0, &row, &correction);
            let rows = whole.row_weights.expect("k-vs-all gives row weights");
            (per_row * rows).mean(Kind::Float)
        }
        Objective::Debiased {
            tau_plus,
            beta,
            temperature,
        } => debiased(pos, neg, s.valid, s.log_q, tau_plus, beta, temperature),
    }
}

fn short(key: &str) -> &str {
    match key {
        "temperature" => "t",
        "margin" => "m",
        "adversarial_temperature" => "a",
        "negative_weight" => "w",
        other => other,
    }
}

/// A loss as written: a kind name, or a table with `kind` and parameters (missing ones at defaults).
impl<'de> Deserialize<'de> for LossConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = toml::Value::deserialize(d)?;
        let kinds = || {
            LOSSES
                .iter()
                .map(|(k, _)| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (kind, table) = match &value {
            toml::Value::String(s) => (s.clone(), toml::Table::new()),
            toml::Value::Table(t) => {
                let kind = t.get("kind").and_then(|k| k.as_str()).ok_or_else(|| {
                    D::Error::custom(format!("a loss table needs `kind`: one of {}", kinds()))
                })?;
                (kind.to_string(), t.clone())
            }
            other => {
                return Err(D::Error::custom(format!(
                    "a loss is a name or a table with `kind`, not {other}"
                )))
            }
        };
        let defaults = LossConfig::default_of(&kind).ok_or_else(|| {
            D::Error::custom(format!("unknown loss {kind:?}; allowed: {}", kinds()))
        })?;
        let mut merged = match serde_json::to_value(&defaults).map_err(D::Error::custom)? {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("a loss serialises to an object"),
        };
        for (k, v) in table {
            if k == "kind" {
                continue;
            }
            // `negative_weight` of ccl is optional: absent from its serialised defaults.
            let optional = kind == "ccl" && k == "negative_weight";
            if !(merged.contains_key(&k) || optional) {
                let allowed: Vec<String> =
                    merged.keys().filter(|k| *k != "kind").cloned().collect();
                return Err(D::Error::custom(format!(
                    "loss {kind:?} has no parameter `{k}`; it has: {}",
                    if allowed.is_empty() && kind != "ccl" {
                        "none".into()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
            merged.insert(k, serde_json::to_value(&v).map_err(D::Error::custom)?);
        }
        let m = |k: &str| merged.get(k).and_then(|v| v.as_f64());
        let num = |k: &str| {
            m(k).ok_or_else(|| D::Error::custom(format!("loss {kind:?}: `{k}` must be a number")))
        };
        Ok(match kind.as_str() {
            "bpr" => LossConfig::Bpr,
            "bce" => LossConfig::Bce,
            "softmax" => LossConfig::Softmax {
                temperature: num("temperature")?,
            },
            "margin" => LossConfig::Margin {
                margin: num("margin")?,
            },
            "nssa" => LossConfig::Nssa {
                margin: num("margin")?,
                adversarial_temperature: num("adversarial_temperature")?,
            },
            _ => LossConfig::Ccl {
                margin: num("margin")?,
                negative_weight: match merged.get("negative_weight") {
                    None | Some(serde_json::Value::Null) => None,
                    Some(_) => Some(num("negative_weight")?),
                },
            },
        })
    }
}

/// `[train].loss` and `[[domain]].loss`: one loss, or a list (a grid axis).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Losses {
    One(LossConfig),
    Many(Vec<LossConfig>),
}

impl<'de> Deserialize<'de> for Losses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let one = |v: toml::Value| {
            v.try_into::<LossConfig>()
                .map_err(|e| D::Error::custom(e.message()))
        };
        Ok(match toml::Value::deserialize(d)? {
            toml::Value::Array(items) => {
                Losses::Many(items.into_iter().map(one).collect::<Result<_, _>>()?)
            }
            v => Losses::One(one(v)?),
        })
    }
}

impl Losses {
    pub fn to_vec(&self) -> Vec<LossConfig> {
        match self {
            Losses::One(l) => vec![l.clone()],
            Losses::Many(v) => v.clone(),
        }
    }
}

/// The scores a loss reads: the model's scores, and for `ccl` the cosines of the same pairs.
pub struct Scored<'a> {
    /// (B)
    pub pos: &'a Tensor,
    /// (B, k)
    pub neg: &'a Tensor,
    pub weights: Option<&'a Tensor>,
    pub valid: Option<&'a Tensor>,
    /// log q of each negative (B, k) and of the positive (B), for the logQ correction.
    pub log_q: Option<&'a Tensor>,
    pub log_q_pos: Option<&'a Tensor>,
    /// ccl: cosine of (query, positive) (B) and (query, negative) (B, k).
    pub cosine: Option<(&'a Tensor, &'a Tensor)>,
    /// (B, k) bool: slots that are further positives (false-negative attraction; bce and softmax).
    pub attract: Option<&'a Tensor>,
}

/// The loss's value for one batch. `log_q` corrects the softmax's logits only: the suite check refuses
/// a logQ sampler under any other loss, where −log q (about +7) would turn the loss linear.
pub fn compute(loss: &LossConfig, s: &Scored) -> Tensor {
    let neg = s.neg;
    match *loss {
        LossConfig::Bpr => bpr(s.pos, neg, s.weights, s.valid),
        LossConfig::Bce => {
            let per_negative = match s.attract {
                // An attracted slot takes the positive's label: −log σ(s).
                Some(a) => {
                    (-neg)
                        .log_sigmoid()
                        .where_self(&a.logical_not(), &neg.log_sigmoid())
                        * -1.0
                }
                None => -(-neg).log_sigmoid(),
            };
            -s.pos.log_sigmoid().mean(Kind::Float)
                + mean_over_slots(per_negative, s.weights, s.valid)
        }
        LossConfig::Margin { margin } => {
            let per_negative = (-s.pos.unsqueeze(1) + neg + margin).relu();
            mean_over_slots(per_negative, s.weights, s.valid)
        }
        LossConfig::Nssa {
            margin,
            adversarial_temperature,
        } => {
            // The self-adversarial weights: softmax over the row's valid negatives, × k so that uniform
            // weights are 1 (an ordinary negative) and the slot mean below is RotatE's weighted sum.
            let k = neg.size()[1] as f64;
            let adversarial = if adversarial_temperature > 0.0 {
                let logits = (neg * adversarial_temperature).detach();
                let logits = match s.valid {
                    Some(v) => logits.masked_fill(&v.logical_not(), f64::NEG_INFINITY),
                    None => logits,
                };
                let valid_count = s.valid.map_or(
                    Tensor::full([neg.size()[0], 1], k, (Kind::Float, neg.device())),
                    |v| v.sum_dim_intlist(1, true, Kind::Float),
                );
                Some(logits.softmax(1, Kind::Float).nan_to_num(0.0, None, None) * valid_count)
            } else {
                None
            };
            let weights = match (s.weights, &adversarial) {
                (Some(w), Some(a)) => Some(w * a),
                (Some(w), None) => Some(w.shallow_clone()),
                (None, Some(a)) => Some(a.shallow_clone()),
                (None, None) => None,
            };
            let per_negative = -(-neg - margin).log_sigmoid();
            -(s.pos + margin).log_sigmoid().mean(Kind::Float)
                + mean_over_slots(per_negative, weights.as_ref(), s.valid)
        }
        LossConfig::Softmax { temperature } => {
            // Yi et al. 2019: the corrected logit is s/τ − log q.
            let pos = match s.log_q_pos {
                Some(lq) => s.pos / temperature - lq,
                None => s.pos / temperature,
            };
            let mut logits = neg / temperature;
            if let Some(lq) = s.log_q {
                logits -= lq;
            }
            // A weight w multiplies a negative's term in the partition function: + log w on its logit.
            if let Some(w) = s.weights {
                logits += w.clamp_min(1e-30).log();
            }
            if let Some(v) = s.valid {
                logits += additive_mask(v);
            }
            let all = Tensor::cat(&[pos.unsqueeze(1), logits], 1);
            let log_p = all.log_softmax(1, Kind::Float);
            match s.attract {
                // Huynh et al. 2022's attraction: the attracted slots join the positive, the row's loss
                // is the mean of −log p over its positives (every logit stays in the partition).
                Some(a) => {
                    let a = a.to_kind(Kind::Float);
                    let positives = Tensor::cat(&[a.ones_like().narrow(1, 0, 1), a], 1);
                    let picked = log_p.where_self(&positives.gt(0.0), &log_p.zeros_like());
                    -(picked.sum_dim_intlist(1, false, Kind::Float)
                        / positives.sum_dim_intlist(1, false, Kind::Float))
                    .mean(Kind::Float)
                }
                None => -log_p.select(1, 0).mean(Kind::Float),
            }
        }
        LossConfig::Ccl {
            margin,
            negative_weight,
        } => {
            let (cos_pos, cos_neg) = s.cosine.expect("ccl is given cosines");
            let per_negative = (cos_neg - margin).relu();
            let negative_part = match negative_weight {
                Some(w) => mean_over_slots(per_negative, s.weights, s.valid) * w,
                None => weighted_valid(per_negative, s.weights, s.valid)
                    .sum_dim_intlist(1, false, Kind::Float)
                    .mean(Kind::Float),
            };
            (-cos_pos + 1.0).relu().mean(Kind::Float) + negative_part
        }
    }
}

/// 0 where `valid`, −∞ elsewhere (float, the mask's shape): added to logits it masks them as
/// `masked_fill` would (exp(−∞) = 0, and 0 added leaves a logit as it is), with an identity backward.
/// libtorch's `masked_fill` walks a bool mask an element at a time, forward and again backward (about
/// 70 µs each for MoCo's 128 × 1,024 scores); on the CPU this is one pass on the host.
fn additive_mask(valid: &Tensor) -> Tensor {
    if valid.device() != tch::Device::Cpu || valid.kind() != Kind::Bool {
        return valid
            .zeros_like()
            .to_kind(Kind::Float)
            .masked_fill(&valid.logical_not(), f64::NEG_INFINITY);
    }
    let valid = valid.contiguous();
    let n = valid.numel();
    let out = Tensor::empty(valid.size(), (Kind::Float, tch::Device::Cpu));
    // SAFETY: both are contiguous CPU tensors of n elements, a bool being one byte (0 or 1); `out` is
    // fresh, so nothing else reads it while it is written.
    let (flags, bias) = unsafe {
        (
            std::slice::from_raw_parts(valid.data_ptr() as *const u8, n),
            std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, n),
        )
    };
    for (b, &ok) in bias.iter_mut().zip(flags) {
        *b = if ok != 0 { 0.0 } else { f32::NEG_INFINITY };
    }
    out
}

/// The mean over rows of each row's weighted mean over its valid slots (a row with none gives 0).
fn mean_over_slots(
    per_negative: Tensor,
    weights: Option<&Tensor>,
    valid: Option<&Tensor>,
) -> Tensor {
    let weighted = weighted_valid(per_negative, weights, None);
    match valid {
        None => weighted.mean(Kind::Float),
        Some(v) => {
            let mask = v.to_kind(Kind::Float);
            let count = mask.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0);
            ((weighted * mask).sum_dim_intlist(1, false, Kind::Float) / count).mean(Kind::Float)
        }
    }
}

/// Each slot's term times its weight, 0 where the mask drops it.
fn weighted_valid(
    per_negative: Tensor,
    weights: Option<&Tensor>,
    valid: Option<&Tensor>,
) -> Tensor {
    let weighted = match weights {
        Some(w) => per_negative * w,
        None => per_negative,
    };
    match valid {
        Some(v) => weighted * v.to_kind(Kind::Float),
        None => weighted,
    }
}

/// BPR (Rendle et al., UAI 2009) with k negatives: for each row the mean over its negatives of
/// w · −log σ(s⁺ − s⁻), then the mean over rows. `pos` (B), `neg` (B, k); `weights` (B, k), if given, are
/// each slot's weight relative to an ordinary negative (1), never renormalised; `valid` (B, k) masks slots
/// out (the mean is then over the valid slots; a row with none contributes 0).
pub fn bpr(pos: &Tensor, neg: &Tensor, weights: Option<&Tensor>, valid: Option<&Tensor>) -> Tensor {
    mean_over_slots(-(pos.unsqueeze(1) - neg).log_sigmoid(), weights, valid)
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
    log_q: Option<&Tensor>,
    tau_plus: f64,
    beta: f64,
    temperature: f64,
) -> Tensor {
    // logQ (Yi et al. 2019) corrects the scaled logit: s/τ − log q.
    let (pos, neg) = (pos / temperature, neg / temperature);
    let neg = match log_q {
        Some(lq) => neg - lq,
        None => neg,
    };
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

/// `objective` of every-candidate scores `neg` (rows, N) with their mask and row weights alone (what
/// KvsAll and GAE read), for tests.
#[cfg(test)]
pub(crate) fn whole_data_objective(
    objective: &Objective,
    neg: &Tensor,
    valid: &Tensor,
    row_weights: &Tensor,
) -> Tensor {
    self::objective(
        objective,
        &LossConfig::Bpr,
        &Scored {
            pos: &Tensor::new(),
            neg,
            weights: None,
            valid: Some(valid),
            log_q: None,
            log_q_pos: None,
            cosine: None,
            attract: None,
        },
        &Whole {
            queries: &Tensor::new(),
            all_items: &|| Tensor::new(),
            row_weights: Some(row_weights),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KvsAll/GAE through `objective`, its value and its gradient on the scores.
    fn k_vs_all(neg: &Tensor, ones: &Tensor, rows: &Tensor, pos_weight: f64) -> (f64, Tensor) {
        let neg = neg.detach().set_requires_grad(true);
        let value = whole_data_objective(
            &Objective::KvsAll { pos_weight },
            &neg,
            &ones.logical_not(),
            rows,
        );
        value.backward();
        (value.double_value(&[]), neg.grad())
    }

    #[test]
    fn k_vs_all_is_torchs_weighted_binary_cross_entropy_summed_per_row() {
        tch::manual_seed(3);
        let neg = Tensor::randn([4, 9], (Kind::Float, tch::Device::Cpu)) * 6.0;
        let ones = Tensor::rand([4, 9], (Kind::Float, tch::Device::Cpu)).lt(0.25);
        let rows = Tensor::from_slice(&[1.0f32, 0.5, 2.0, 0.25]);
        for pos_weight in [1.0, 7.5] {
            let x = neg.detach().set_requires_grad(true);
            let reference = (x
                .binary_cross_entropy_with_logits::<Tensor>(
                    &ones.to_kind(Kind::Float),
                    None,
                    Some(Tensor::from(pos_weight as f32)),
                    tch::Reduction::None,
                )
                .sum_dim_intlist(1, false, Kind::Float)
                * &rows)
                .mean(Kind::Float);
            reference.backward();
            let (value, grad) = k_vs_all(&neg, &ones, &rows, pos_weight);
            let want = reference.double_value(&[]);
            assert!(
                (value - want).abs() < 1e-5 * want.abs(),
                "{value} vs {want}"
            );
            let gap = f64::try_from((grad - x.grad()).abs().max()).unwrap();
            assert!(gap < 1e-6, "gradients differ by {gap}");
        }
    }

    #[test]
    fn an_additive_mask_gives_masked_fills_softmax_loss_and_gradient_to_the_bit() {
        tch::manual_seed(5);
        let neg = Tensor::randn([6, 40], (Kind::Float, tch::Device::Cpu)) * 3.0;
        let pos = Tensor::randn([6], (Kind::Float, tch::Device::Cpu));
        // A row with every negative masked, an expanded (non-contiguous) mask, and a full one.
        let drawn = Tensor::rand([6, 40], (Kind::Float, tch::Device::Cpu)).gt(0.3);
        let empty_row = Tensor::ones([6, 1], (Kind::Float, tch::Device::Cpu))
            .index_put_(&[Some(Tensor::from(2i64))], &Tensor::from(0.0f32), false)
            .gt(0.5);
        let expanded = Tensor::rand([1, 40], (Kind::Float, tch::Device::Cpu))
            .gt(0.5)
            .expand([6, 40], false);
        for valid in [drawn.logical_and(&empty_row), expanded] {
            let run = |masked_fill: bool| {
                let x = neg.detach().set_requires_grad(true);
                let value = if masked_fill {
                    let logits = (&x / 0.5).masked_fill(&valid.logical_not(), f64::NEG_INFINITY);
                    let all = Tensor::cat(&[(&pos / 0.5).unsqueeze(1), logits], 1);
                    -all.log_softmax(1, Kind::Float)
                        .select(1, 0)
                        .mean(Kind::Float)
                } else {
                    compute(
                        &LossConfig::Softmax { temperature: 0.5 },
                        &Scored {
                            pos: &pos,
                            neg: &x,
                            weights: None,
                            valid: Some(&valid),
                            log_q: None,
                            log_q_pos: None,
                            cosine: None,
                            attract: None,
                        },
                    )
                };
                value.backward();
                (value.double_value(&[]), x.grad())
            };
            let ((a, ga), (b, gb)) = (run(true), run(false));
            assert_eq!(a.to_bits(), b.to_bits());
            assert!(ga.equal(&gb), "gradients differ");
        }
    }

    #[test]
    fn debiased_is_infonce_without_prior_and_subtracts_the_positive_mass_with_one() {
        let pos = Tensor::from_slice(&[2.0f32]);
        let neg = Tensor::from_slice(&[1.0f32, 0.5, 3.0]).view([1, 3]);
        let value = |tau, beta| debiased(&pos, &neg, None, None, tau, beta, 1.0).double_value(&[]);
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
        let big = debiased(&(&pos * 100.0), &(&neg * 100.0), None, None, 0.5, 0.0, 1.0);
        assert!(big.double_value(&[]).is_finite());
        // A masked slot is ignored: masking the 3.0 equals dropping it.
        let mask = Tensor::from_slice(&[true, true, false]).view([1, 3]);
        let dropped = debiased(&pos, &neg.narrow(1, 0, 2), None, None, 0.1, 1.0, 1.0);
        let masked = debiased(&pos, &neg, Some(&mask), None, 0.1, 1.0, 1.0);
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

    #[test]
    fn attraction_makes_a_slot_a_second_positive_under_bce_and_softmax() {
        // One row: s⁺ = 2, s⁻ = (1, 3), the second slot attracted.
        let pos = Tensor::from_slice(&[2.0f32]);
        let neg = Tensor::from_slice(&[1.0f32, 3.0]).view([1, 2]);
        let attract = Tensor::from_slice(&[false, true]).view([1, 2]);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let value = |loss: &LossConfig| {
            compute(
                loss,
                &Scored {
                    pos: &pos,
                    neg: &neg,
                    weights: None,
                    valid: None,
                    log_q: None,
                    log_q_pos: None,
                    cosine: None,
                    attract: Some(&attract),
                },
            )
            .double_value(&[])
        };
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        close(
            value(&LossConfig::Bce),
            -sig(2.0).ln() - (sig(-1.0).ln() + sig(3.0).ln()) / 2.0,
        );
        let z = 2f64.exp() + 1f64.exp() + 3f64.exp();
        close(
            value(&LossConfig::Softmax { temperature: 1.0 }),
            -((2f64.exp() / z).ln() + (3f64.exp() / z).ln()) / 2.0,
        );
    }

    #[test]
    fn every_loss_of_the_axis_matches_hand_computed_values() {
        // One row: s⁺ = 2, s⁻ = (1, 3).
        let pos = Tensor::from_slice(&[2.0f32]);
        let neg = Tensor::from_slice(&[1.0f32, 3.0]).view([1, 2]);
        let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
        let e = f64::exp;
        let value = |loss: &LossConfig, log_q: Option<&Tensor>, log_q_pos: Option<&Tensor>| {
            compute(
                loss,
                &Scored {
                    pos: &pos,
                    neg: &neg,
                    weights: None,
                    valid: None,
                    log_q,
                    log_q_pos,
                    cosine: None,
                    attract: None,
                },
            )
            .double_value(&[])
        };
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        close(
            value(&LossConfig::Bce, None, None),
            -sig(2.0).ln() - (sig(-1.0).ln() + sig(-3.0).ln()) / 2.0,
        );
        close(
            value(&LossConfig::Margin { margin: 1.0 }, None, None),
            (0.0 + 2.0) / 2.0,
        );
        let softmax = -(e(2.0) / (e(2.0) + e(1.0) + e(3.0))).ln();
        close(
            value(&LossConfig::Softmax { temperature: 1.0 }, None, None),
            softmax,
        );
        // Temperature 0.5 doubles every logit.
        let half = -(e(4.0) / (e(4.0) + e(2.0) + e(6.0))).ln();
        close(
            value(&LossConfig::Softmax { temperature: 0.5 }, None, None),
            half,
        );
        // logQ corrects every logit, the positive's too (Yi et al. 2019).
        let lq = Tensor::from_slice(&[0.5f32, -1.0]).view([1, 2]);
        let lq_pos = Tensor::from_slice(&[0.25f32]);
        let corrected = -(e(1.75) / (e(1.75) + e(0.5) + e(4.0))).ln();
        close(
            value(
                &LossConfig::Softmax { temperature: 1.0 },
                Some(&lq),
                Some(&lq_pos),
            ),
            corrected,
        );
        // At temperature 0.5 the correction follows the scaling: s/τ − log q, not (s − log q)/τ.
        let scaled = -(e(3.75) / (e(3.75) + e(1.5) + e(7.0))).ln();
        close(
            value(
                &LossConfig::Softmax { temperature: 0.5 },
                Some(&lq),
                Some(&lq_pos),
            ),
            scaled,
        );
        // NSSA, margin 9, without adversarial weights: −log σ(9 + 2) − mean log σ(−s⁻ − 9).
        let plain = -sig(11.0).ln() - (sig(-10.0).ln() + sig(-12.0).ln()) / 2.0;
        let nssa = |a| LossConfig::Nssa {
            margin: 9.0,
            adversarial_temperature: a,
        };
        close(value(&nssa(0.0), None, None), plain);
        // With α = 1 the negatives are weighted by softmax(s⁻): RotatE's Σ pᵢ log σ(−s⁻ᵢ − γ).
        let (p1, p3) = (e(1.0) / (e(1.0) + e(3.0)), e(3.0) / (e(1.0) + e(3.0)));
        let adversarial = -sig(11.0).ln() - (p1 * sig(-10.0).ln() + p3 * sig(-12.0).ln());
        close(value(&nssa(1.0), None, None), adversarial);
        // CCL: max(0, 1 − cos⁺) + the sum (or w × the mean) of max(0, cos⁻ − margin).
        let (cp, cn) = (
            Tensor::from_slice(&[0.5f32]),
            Tensor::from_slice(&[0.95f32, 0.2]).view([1, 2]),
        );
        let ccl = |w| {
            compute(
                &LossConfig::Ccl {
                    margin: 0.9,
                    negative_weight: w,
                },
                &Scored {
                    pos: &pos,
                    neg: &neg,
                    weights: None,
                    valid: None,
                    log_q: None,
                    log_q_pos: None,
                    cosine: Some((&cp, &cn)),
                    attract: None,
                },
            )
            .double_value(&[])
        };
        close(ccl(None), 0.5 + 0.05);
        close(ccl(Some(10.0)), 0.5 + 10.0 * 0.05 / 2.0);
    }

    #[test]
    fn a_loss_is_written_as_a_name_or_a_table_and_a_typo_is_an_error() {
        let parse = |t: &str| {
            toml::from_str::<toml::Table>(t).unwrap()["loss"]
                .clone()
                .try_into::<Losses>()
        };
        assert_eq!(
            parse("loss = \"bce\"").unwrap(),
            Losses::One(LossConfig::Bce)
        );
        assert_eq!(
            parse("loss = { kind = \"softmax\", temperature = 0.1 }").unwrap(),
            Losses::One(LossConfig::Softmax { temperature: 0.1 })
        );
        assert_eq!(
            parse("loss = [\"bpr\", \"margin\"]")
                .unwrap()
                .to_vec()
                .len(),
            2
        );
        assert!(parse("loss = \"hinge\"").is_err());
        assert!(parse("loss = { kind = \"margin\", temprature = 1 }").is_err());
        assert_eq!(
            LossConfig::Nssa {
                margin: 6.0,
                adversarial_temperature: 1.0
            }
            .label(),
            "nssa-m6"
        );
    }
}
