//! Downstream evaluation of a contrastive image encoder on the frozen representation of clean images,
//! fitted on the training images and scored on the held-out ones:
//! - `knn-accuracy`: each held-out image takes the class of its 20 nearest training images by cosine,
//!   votes weighted exp(cos / 0.07) (the kNN monitor of Wu et al. 2018, used by MoCo and DCL);
//! - `linear-accuracy`: a linear probe, softmax regression on the standardised features, 300 full-batch
//!   Adam steps (lr 0.01) from zero weights and the log class priors as bias, so it is deterministic
//!   and a representation without information predicts the training majority;
//! - in both, a class tied for the top earns 1 / the number tied (a random pick), never the lowest id;
//! - `alignment` (lower is better): E‖f(x) − f(x⁺)‖² over two augmented views of each training image, and
//!   `uniformity` (lower is better): log E exp(−2‖f(x) − f(y)‖²) over pairs of different images (Wang &
//!   Isola 2020), both on the normalised projections of the first 512 training images, from a fixed
//!   augmentation stream so that evaluating never moves training's.
//!
//! The per-query file holds each held-out image's kNN correctness (1 or 0; a share where ties leave the
//! vote to chance).

use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use super::{MetricValues, NonFiniteScores, PerQuery};
use crate::data::vision::VisionData;
use crate::model::ContrastiveModel;

pub const KNN: i64 = 20;
const KNN_TEMPERATURE: f64 = 0.07;
const PROBE_STEPS: usize = 300;
const GEOMETRY_IMAGES: i64 = 512;

/// Names of the metrics the vision evaluation reports, in order.
pub fn metric_names() -> Vec<String> {
    ["knn-accuracy", "linear-accuracy", "alignment", "uniformity"]
        .map(String::from)
        .to_vec()
}

pub struct VisionEvaluator {
    labels: Vec<u32>,
    n_train: i64,
    n_classes: i64,
    device: Device,
}

impl VisionEvaluator {
    pub fn new(data: &VisionData, device: Device) -> VisionEvaluator {
        VisionEvaluator {
            labels: data.labels.clone(),
            n_train: data.n_train as i64,
            n_classes: data.n_classes as i64,
            device,
        }
    }

    pub fn evaluate(&self, model: &dyn ContrastiveModel) -> Result<MetricValues, NonFiniteScores> {
        self.evaluate_per_query(model).map(|(m, _)| m)
    }

    pub fn evaluate_per_query(
        &self,
        model: &dyn ContrastiveModel,
    ) -> Result<(MetricValues, PerQuery), NonFiniteScores> {
        let _no_grad = tch::no_grad_guard();
        let n = self.labels.len() as i64;
        let features = model
            .features(&Tensor::arange(n, (Kind::Int64, self.device)))
            .to_kind(Kind::Float);
        NonFiniteScores::check(&features, n as usize)?;
        let labels = Tensor::from_slice(&self.labels.iter().map(|&l| l as i64).collect::<Vec<_>>())
            .to_device(self.device);
        let (train_y, test_y) = (
            labels.narrow(0, 0, self.n_train),
            labels.narrow(0, self.n_train, n - self.n_train),
        );
        let (train_x, test_x) = (
            features.narrow(0, 0, self.n_train),
            features.narrow(0, self.n_train, n - self.n_train),
        );
        let knn_correct = self.knn(&train_x, &train_y, &test_x, &test_y);
        let knn = knn_correct.iter().sum::<f32>() as f64 / knn_correct.len().max(1) as f64;
        let linear = self.linear_probe(&train_x, &train_y, &test_x, &test_y);
        let mut metrics = vec![
            ("knn-accuracy".to_string(), knn),
            ("linear-accuracy".to_string(), linear),
        ];
        let (alignment, uniformity) =
            geometry(model, self.n_train.min(GEOMETRY_IMAGES), self.device);
        metrics.push(("alignment".into(), alignment));
        metrics.push(("uniformity".into(), uniformity));
        let per_query = PerQuery {
            queries: (0..knn_correct.len() as u32).collect(),
            columns: vec![("knn".into(), knn_correct)],
        };
        Ok((metrics, per_query))
    }

    /// Whether each held-out image's weighted kNN vote picks its class. Ties count as their expectation
    /// over a random order: training images tied with the k-th nearest share the places left (each votes
    /// with that share of its weight), and a class tied for the most votes with m others earns 1 / m.
    fn knn(
        &self,
        train_x: &Tensor,
        train_y: &Tensor,
        test_x: &Tensor,
        test_y: &Tensor,
    ) -> Vec<f32> {
        let unit = |x: &Tensor| {
            x / x
                .norm_scalaropt_dim(2, [1i64].as_slice(), true)
                .clamp_min(1e-12)
        };
        let sims = unit(test_x).matmul(&unit(train_x).tr());
        let k = KNN.min(self.n_train);
        let (top, _) = sims.topk(k, 1, true, true);
        let cut = top.select(1, k - 1).unsqueeze(1);
        let (above, tied) = (
            sims.gt_tensor(&cut).to_kind(Kind::Float),
            sims.eq_tensor(&cut).to_kind(Kind::Float),
        );
        let places_left = -above.sum_dim_intlist(1, true, Kind::Float) + k as f64;
        let share =
            above + tied.shallow_clone() * places_left / tied.sum_dim_intlist(1, true, Kind::Float);
        let votes = (sims / KNN_TEMPERATURE).exp() * share;
        let one_hot = train_y.one_hot(self.n_classes).to_kind(Kind::Float);
        let tally = votes.matmul(&one_hot);
        Vec::<f32>::try_from(credit_of_the_leaders(&tally, test_y).to_device(Device::Cpu))
            .expect("a f32 vector")
    }

    /// Test accuracy of softmax regression fitted on the training features.
    fn linear_probe(
        &self,
        train_x: &Tensor,
        train_y: &Tensor,
        test_x: &Tensor,
        test_y: &Tensor,
    ) -> f64 {
        let mean = train_x.mean_dim([0i64].as_slice(), true, Kind::Float);
        let std = train_x
            .std_dim([0i64].as_slice(), false, true)
            .clamp_min(1e-6);
        let standard = |x: &Tensor| ((x - &mean) / &std).detach();
        let (xs, xt) = (standard(train_x), standard(test_x));
        let vs = nn::VarStore::new(self.device);
        let d = xs.size()[1];
        let w = vs.root().zeros("w", &[d, self.n_classes]);
        // The bias starts at the log class priors, the optimum when the features say nothing: a
        // representation without information predicts the training majority, whatever Adam's steps do.
        let priors = train_y
            .one_hot(self.n_classes)
            .to_kind(Kind::Float)
            .mean_dim([0i64].as_slice(), false, Kind::Float)
            .clamp_min(1e-12)
            .log();
        let b = vs.root().var_copy("b", &priors);
        let mut opt = nn::Adam::default()
            .build(&vs, 0.01)
            .expect("an optimiser over two tensors");
        for _ in 0..PROBE_STEPS {
            let loss = tch::with_grad(|| (xs.matmul(&w) + &b).cross_entropy_for_logits(train_y));
            opt.backward_step(&loss);
        }
        credit_of_the_leaders(&(xt.matmul(&w) + &b), test_y)
            .mean(Kind::Double)
            .double_value(&[])
    }
}

/// Each row's credit for predicting its class `y` from `scores` (rows, classes): 1 / m when its class is
/// among the m classes tied for the top score (a random pick among them), else 0.
fn credit_of_the_leaders(scores: &Tensor, y: &Tensor) -> Tensor {
    let most = scores.amax(1, true);
    // Tied up to the float rounding of sums taken in different orders.
    let slack = most.abs() * 1e-6;
    let leaders = scores.ge_tensor(&(&most - slack)).to_kind(Kind::Float);
    let mine = leaders.gather(1, &y.unsqueeze(1), false).squeeze_dim(1);
    mine / leaders.sum_dim_intlist(1, false, Kind::Float)
}

/// (alignment, uniformity) of the first `n` training images' two views; NaN for a model without views.
fn geometry(model: &dyn ContrastiveModel, n: i64, device: Device) -> (f64, f64) {
    let ids = Tensor::arange(n, (Kind::Int64, device));
    let Some((a, b)) = model.views(&ids, 0xa119_e000) else {
        return (f64::NAN, f64::NAN);
    };
    let alignment = (&a - &b)
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Double)
        .double_value(&[]);
    let sq = a.matmul(&a.tr()) * -2.0 + 2.0; // ‖x − y‖² of unit vectors
    let off = Tensor::ones([n, n], (Kind::Bool, device)).triu(1);
    let uniformity = (sq.masked_select(&off) * -2.0)
        .exp()
        .mean(Kind::Double)
        .log()
        .double_value(&[]);
    (alignment, uniformity)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Features are the images themselves (two well separated classes).
    use crate::model::FixedEmbeddings as Identity;

    fn data(n_train: usize) -> (VisionData, Tensor) {
        // Class 0 around (1, 0), class 1 around (0, 1); alternating labels; 30 images.
        let mut values = Vec::new();
        let mut labels = Vec::new();
        for i in 0..30 {
            let jitter = (i % 5) as f32 * 0.05;
            if i % 2 == 0 {
                values.extend([1.0, jitter]);
            } else {
                values.extend([jitter, 1.0]);
            }
            labels.push((i % 2) as u32);
        }
        let v = VisionData {
            height: 1,
            width: 2,
            pixels: values.clone(),
            labels,
            n_train,
            n_classes: 2,
        };
        (v, Tensor::from_slice(&values).view([30, 2]))
    }

    #[test]
    fn separable_features_are_classified_by_knn_and_the_probe() {
        let (v, x) = data(20);
        let (m, per_query) = VisionEvaluator::new(&v, Device::Cpu)
            .evaluate_per_query(&Identity(x))
            .unwrap();
        assert_eq!(m[0], ("knn-accuracy".into(), 1.0));
        assert_eq!(m[1], ("linear-accuracy".into(), 1.0));
        // No augmentations: the geometry is not measured.
        assert!(m[2].1.is_nan() && m[3].1.is_nan());
        assert_eq!(per_query.columns[0].1.len(), 10);
    }

    #[test]
    fn swapped_labels_score_zero() {
        let (mut v, x) = data(20);
        for l in &mut v.labels[20..] {
            *l = 1 - *l;
        }
        let m = VisionEvaluator::new(&v, Device::Cpu)
            .evaluate(&Identity(x))
            .unwrap();
        assert_eq!((m[0].1, m[1].1), (0.0, 0.0));
    }

    #[test]
    fn a_constant_representation_votes_by_chance_not_by_the_lowest_ids() {
        // Every feature equal: all 20 training images tie (10 of each class), the classes tie in the
        // vote, each held-out image earns 1/2.
        let (v, x) = data(20);
        let constant = Identity(x.ones_like());
        let m = VisionEvaluator::new(&v, Device::Cpu)
            .evaluate(&constant)
            .unwrap();
        assert!((m[0].1 - 0.5).abs() < 1e-6, "{m:?}");
    }
}
