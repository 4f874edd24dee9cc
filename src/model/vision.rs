//! A small image encoder with a projection head for instance discrimination (SimCLR, Chen et al. 2020;
//! MoCo, He et al. 2020): an image's query is the normalised projection of one augmented view, its
//! positive candidate that of another view, and every other image's view is a negative. Each call to
//! `queries` or `items` draws fresh augmentations (random shift, small rotation, pixel noise, cutout)
//! from the model's own seeded stream, so two calls on the same image give two views.
//!
//! Encoders: `mlp` (flatten → hidden → ReLU → dim) or `cnn` (two 3 × 3 convolutions with 16 and 32
//! channels, the second with stride 2, ReLU, global average pooling, a linear layer to dim). Head: dim →
//! dim → ReLU → projection, L2-normalised, so a dot product is the cosine of SimCLR's NT-Xent. The
//! downstream evaluation reads the encoder's output before the head (`features`), on clean images.
//! Parameters start U(−1/√fan_in, 1/√fan_in) from the cell's seed (PyTorch's default bound).

use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::{first_layer, ContrastiveModel};
use crate::data::vision::VisionData;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderKind {
    #[default]
    Mlp,
    Cnn,
}

/// `model = { kind = "image-encoder", encoder = "mlp", hidden = 128, dim = 64, projection = 32 }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageEncoderConfig {
    pub encoder: EncoderKind,
    /// The MLP's hidden width.
    pub hidden: i64,
    /// Width of the representation (the encoder's output).
    pub dim: i64,
    /// Width of the projection head's output (the contrastive space).
    pub projection: i64,
    /// Augmentations: largest shift in pixels, largest rotation in degrees, pixel noise, cutout
    /// probability (a square of a quarter of the side set to 0).
    pub shift: i64,
    pub rotation: f64,
    pub noise: f64,
    pub cutout: f64,
    /// MoCo's momentum encoder (He et al. 2020): candidates (positive keys, queued keys, in-batch keys)
    /// come from a copy of the network, without gradient, moved after every step towards the trained
    /// one by k ← m·k + (1 − m)·q. None: one encoder for both sides (SimCLR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub momentum: Option<f64>,
}

impl Default for ImageEncoderConfig {
    fn default() -> Self {
        ImageEncoderConfig {
            encoder: EncoderKind::Mlp,
            hidden: 128,
            dim: 64,
            projection: 32,
            shift: 1,
            rotation: 15.0,
            noise: 0.1,
            cutout: 0.5,
            momentum: None,
        }
    }
}

impl ImageEncoderConfig {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut p = Vec::new();
        for (k, v) in [("hidden", self.hidden), ("projection", self.projection)] {
            if v < 1 {
                p.push((k, format!("must be >= 1 (got {v})")));
            }
        }
        if self.shift < 0 {
            p.push(("shift", format!("must be >= 0 (got {})", self.shift)));
        }
        if !(self.rotation >= 0.0 && self.rotation <= 180.0) {
            p.push((
                "rotation",
                format!("must be in [0, 180] degrees (got {})", self.rotation),
            ));
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            p.push(("noise", format!("must be >= 0 (got {})", self.noise)));
        }
        if !(0.0..=1.0).contains(&self.cutout) {
            p.push(("cutout", format!("must be in [0, 1] (got {})", self.cutout)));
        }
        if let Some(m) = self.momentum {
            if !(0.0..1.0).contains(&m) {
                p.push((
                    "momentum",
                    format!("must be in [0, 1), e.g. MoCo's 0.999 (got {m})"),
                ));
            }
        }
        p
    }
}

pub struct ImageEncoder {
    config: ImageEncoderConfig,
    pixels: Vec<f32>,
    height: usize,
    width: usize,
    n_train: i64,
    weights: Vec<Tensor>,
    /// The momentum (key) encoder's parameters, when the configuration asks for one: no gradient, not
    /// in the optimiser, an exponential moving average of `weights`.
    key_weights: Option<Vec<Tensor>>,
    device: Device,
    augment_rng: Mutex<Pcg64Mcg>,
    /// This step's CNN forward passes whose first layer's gradients are left to `after_backward`
    /// (`convolutions`).
    deferred: Mutex<Vec<DeferredGrad>>,
}

/// A forward pass of the CNN whose first layer's gradient `after_backward` computes on the host: its
/// images, the first layer's output, the leaf whose gradient is dL/dy of the second convolution, and
/// the parameters (the first layer's weight and bias, the second convolution's weight).
struct DeferredGrad {
    x: Tensor,
    h: Tensor,
    tap: Tensor,
    weights: [Tensor; 3],
}

/// A parameter of `shape` drawn U(−bound, bound) from `rng`.
fn param(root: &nn::Path, name: &str, shape: &[i64], bound: f64, rng: &mut Pcg64Mcg) -> Tensor {
    let n: i64 = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| rng.random_range(-bound..bound) as f32)
        .collect();
    root.var_copy(name, &Tensor::from_slice(&v).view(shape))
}

impl ImageEncoder {
    pub fn new(
        root: &nn::Path,
        c: &ImageEncoderConfig,
        data: &VisionData,
        seed: u64,
    ) -> ImageEncoder {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let d = (data.height * data.width) as i64;
        let linear = |name: &str, fan_in: i64, fan_out: i64, rng: &mut Pcg64Mcg| {
            let b = 1.0 / (fan_in as f64).sqrt();
            vec![
                param(root, &format!("{name}_weight"), &[fan_out, fan_in], b, rng),
                param(root, &format!("{name}_bias"), &[fan_out], b, rng),
            ]
        };
        let mut weights = Vec::new();
        match c.encoder {
            EncoderKind::Mlp => {
                weights.extend(linear("enc1", d, c.hidden, &mut rng));
                weights.extend(linear("enc2", c.hidden, c.dim, &mut rng));
            }
            EncoderKind::Cnn => {
                let b1 = 1.0 / 9f64.sqrt();
                weights.push(param(root, "conv1_weight", &[16, 1, 3, 3], b1, &mut rng));
                weights.push(param(root, "conv1_bias", &[16], b1, &mut rng));
                let b2 = 1.0 / (16.0 * 9.0f64).sqrt();
                weights.push(param(root, "conv2_weight", &[32, 16, 3, 3], b2, &mut rng));
                weights.push(param(root, "conv2_bias", &[32], b2, &mut rng));
                weights.extend(linear("enc", 32, c.dim, &mut rng));
            }
        }
        weights.extend(linear("head1", c.dim, c.dim, &mut rng));
        weights.extend(linear("head2", c.dim, c.projection, &mut rng));
        // MoCo starts the key encoder as a copy of the query encoder.
        let key_weights = c
            .momentum
            .map(|_| weights.iter().map(|w| w.detach().copy()).collect());
        ImageEncoder {
            key_weights,
            config: c.clone(),
            pixels: data.pixels.clone(),
            height: data.height,
            width: data.width,
            n_train: data.n_train as i64,
            weights,
            device: root.device(),
            augment_rng: Mutex::new(Pcg64Mcg::seed_from_u64(seed ^ 0xa06e_4e47)),
            deferred: Mutex::new(Vec::new()),
        }
    }

    /// The images `ids` as (B, 1, H, W), each augmented from `rng` when given.
    fn batch(&self, ids: &Tensor, rng: Option<&mut Pcg64Mcg>) -> Tensor {
        let ids = Vec::<i64>::try_from(ids.to_device(Device::Cpu).reshape([-1]))
            .expect("image ids are i64");
        let (h, w) = (self.height, self.width);
        let d = h * w;
        let mut out = Vec::with_capacity(ids.len() * d);
        match rng {
            None => {
                for &i in &ids {
                    out.extend_from_slice(&self.pixels[i as usize * d..(i as usize + 1) * d]);
                }
            }
            Some(rng) => {
                for &i in &ids {
                    let image = &self.pixels[i as usize * d..(i as usize + 1) * d];
                    augment(image, h, w, &self.config, rng, &mut out);
                }
            }
        }
        Tensor::from_slice(&out)
            .view([ids.len() as i64, 1, h as i64, w as i64])
            .to_device(self.device)
    }

    /// The encoder's (`w`: the trained or the key encoder's parameters) representation of a batch of
    /// images, (B, dim).
    fn encode(&self, x: &Tensor, w: &[Tensor]) -> Tensor {
        match self.config.encoder {
            EncoderKind::Mlp => x
                .flatten(1, -1)
                .linear(&w[0], Some(&w[1]))
                .relu()
                .linear(&w[2], Some(&w[3])),
            EncoderKind::Cnn => self
                .convolutions(x, w)
                .relu()
                .mean_dim([2i64, 3].as_slice(), false, Kind::Float)
                .linear(&w[4], Some(&w[5])),
        }
    }

    /// The CNN's two convolutions of images `x`: ReLU(conv(x)), then the stride-2 convolution (before
    /// its ReLU). Training on the CPU, libtorch computes only the second convolution's weight gradient:
    /// the first layer's output enters it without gradient, a zero leaf added to its output collects
    /// dL/dy, and `after_backward` computes the first layer's gradients from it on the host
    /// (`first_layer`). On an accelerator libtorch's autograd runs through both.
    fn convolutions(&self, x: &Tensor, w: &[Tensor]) -> Tensor {
        let first = |x: &Tensor| {
            x.conv2d(&w[0], Some(&w[1]), [1, 1], [1, 1], [1, 1], 1)
                .relu()
        };
        let second = |h: &Tensor| h.conv2d(&w[2], Some(&w[3]), [2, 2], [1, 1], [1, 1], 1);
        if self.device != Device::Cpu {
            return second(&first(x));
        }
        let h = tch::no_grad(|| first(x));
        let y = second(&h);
        if !(y.requires_grad() && w[0].requires_grad()) {
            return y; // no gradient wanted (an evaluation, the key encoder)
        }
        let tap = Tensor::zeros(y.size(), (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let out = &y + &tap;
        self.deferred
            .lock()
            .expect("no panic while deferring")
            .push(DeferredGrad {
                x: x.shallow_clone(),
                h,
                tap,
                weights: [0, 1, 2].map(|i| w[i].shallow_clone()),
            });
        out
    }

    /// The normalised projection of representations `z` by the head of `w`.
    fn project(&self, z: &Tensor, w: &[Tensor]) -> Tensor {
        let n = w.len();
        let p = z
            .linear(&w[n - 4], Some(&w[n - 3]))
            .relu()
            .linear(&w[n - 2], Some(&w[n - 1]));
        let norm = p
            .norm_scalaropt_dim(2, [-1i64].as_slice(), true)
            .clamp_min(1e-8);
        p / norm
    }

    /// One augmented view of each image in `ids` (any shape), projected by the encoder `w`:
    /// (..., projection).
    fn view(&self, ids: &Tensor, rng: &mut Pcg64Mcg, w: &[Tensor]) -> Tensor {
        let mut shape = ids.size();
        let x = self.batch(ids, Some(rng));
        let p = self.project(&self.encode(&x, w), w);
        shape.push(self.config.projection);
        p.view(shape.as_slice())
    }

    fn fresh_view(&self, ids: &Tensor) -> Tensor {
        let mut rng = self.augment_rng.lock().expect("the augmentation stream");
        self.view(ids, &mut rng, &self.weights)
    }

    /// A fresh view of each candidate: by the key encoder without gradient when there is one (MoCo),
    /// else by the trained encoder.
    fn fresh_key(&self, ids: &Tensor) -> Tensor {
        match &self.key_weights {
            Some(keys) => {
                let _no_grad = tch::no_grad_guard();
                let mut rng = self.augment_rng.lock().expect("the augmentation stream");
                self.view(ids, &mut rng, keys)
            }
            None => self.fresh_view(ids),
        }
    }
}

/// `v.round()` (half away from zero) as an integer, for |v| < 2⁵²: the truncation is exact and so is
/// v minus it, without the libm call `round` is on baseline x86-64 (two a pixel).
fn nearest(v: f64) -> i64 {
    let t = v as i64;
    let frac = v - t as f64;
    // Branch-free: the fraction is as likely either side of a half.
    t + (frac >= 0.5) as i64 - (frac <= -0.5) as i64
}

/// One view's draws: a shift of up to `shift` pixels, a rotation of up to `rotation` degrees (as its
/// sine and cosine) about the image's centre, and the pixel noise's distribution.
struct ViewGeometry {
    dx: f64,
    dy: f64,
    sin: f64,
    cos: f64,
    cx: f64,
    cy: f64,
    noise: Normal<f64>,
}

impl ViewGeometry {
    fn draw(h: usize, w: usize, c: &ImageEncoderConfig, rng: &mut Pcg64Mcg) -> ViewGeometry {
        let dx = rng.random_range(-c.shift..=c.shift) as f64;
        let dy = rng.random_range(-c.shift..=c.shift) as f64;
        let angle = if c.rotation > 0.0 {
            rng.random_range(-c.rotation..=c.rotation).to_radians()
        } else {
            0.0
        };
        let (sin, cos) = angle.sin_cos();
        ViewGeometry {
            dx,
            dy,
            sin,
            cos,
            cx: (w as f64 - 1.0) / 2.0,
            cy: (h as f64 - 1.0) / 2.0,
            noise: Normal::new(0.0, c.noise.max(f64::MIN_POSITIVE)).expect("noise >= 0"),
        }
    }

    /// The source of pixel (x, y): undo the shift, then the rotation (unrounded).
    fn source(&self, x: usize, y: usize) -> (f64, f64) {
        let (ux, uy) = (x as f64 - self.dx - self.cx, y as f64 - self.dy - self.cy);
        (
            self.cos * ux + self.sin * uy + self.cx,
            -self.sin * ux + self.cos * uy + self.cy,
        )
    }
}

/// Writes one augmented copy of `image` (h × w) to `out`: shifted by up to `shift` pixels and rotated
/// by up to `rotation` degrees about the centre (nearest pixel, 0 outside), plus N(0, noise) noise, then
/// with probability `cutout` a square of side max(1, h/4) set to 0; pixels stay in [0, 1].
fn augment(
    image: &[f32],
    h: usize,
    w: usize,
    c: &ImageEncoderConfig,
    rng: &mut Pcg64Mcg,
    out: &mut Vec<f32>,
) {
    let g = ViewGeometry::draw(h, w, c, rng);
    let start = out.len();
    out.resize(start + h * w, 0.0);
    let view = &mut out[start..];
    // The geometry first, in a loop without calls (a fifth faster): each pixel's source value, 0
    // outside the image.
    for y in 0..h {
        for x in 0..w {
            let (sx, sy) = g.source(x, y);
            let (sx, sy) = (nearest(sx), nearest(sy));
            view[y * w + x] = if (sx as u64) < w as u64 && (sy as u64) < h as u64 {
                image[sy as usize * w + sx as usize]
            } else {
                0.0
            };
        }
    }
    if c.noise > 0.0 {
        for v in view.iter_mut() {
            *v = (*v as f64 + g.noise.sample(rng)).clamp(0.0, 1.0) as f32;
        }
    } else {
        for v in view.iter_mut() {
            *v = v.clamp(0.0, 1.0);
        }
    }
    cutout(view, h, w, c, rng);
}

/// With probability `cutout`, a square of side max(1, h/4) at a random place set to 0.
fn cutout(view: &mut [f32], h: usize, w: usize, c: &ImageEncoderConfig, rng: &mut Pcg64Mcg) {
    if rng.random::<f64>() < c.cutout {
        let side = (h / 4).max(1);
        let (x0, y0) = (
            rng.random_range(0..=w - side),
            rng.random_range(0..=h - side),
        );
        for y in y0..y0 + side {
            for x in x0..x0 + side {
                view[y * w + x] = 0.0;
            }
        }
    }
}

impl ContrastiveModel for ImageEncoder {
    fn queries(&self, ids: &Tensor) -> Tensor {
        self.fresh_view(ids)
    }

    fn items(&self, ids: &Tensor) -> Tensor {
        self.fresh_key(ids)
    }

    /// Without a key encoder both sides are views through the trained network: the queries' views,
    /// then the items', augmented in that order and encoded in one pass.
    fn queries_and_items(&self, queries: &Tensor, items: &Tensor) -> (Tensor, Tensor) {
        if self.key_weights.is_some() {
            return (self.queries(queries), self.items(items));
        }
        let (nq, ni) = (queries.numel() as i64, items.numel() as i64);
        let ids = Tensor::cat(&[queries.reshape([-1]), items.reshape([-1])], 0);
        let z = self.fresh_view(&ids);
        let shaped = |t: Tensor, ids: &Tensor| {
            let mut shape = ids.size();
            shape.push(self.config.projection);
            t.view(shape.as_slice())
        };
        (
            shaped(z.narrow(0, 0, nq), queries),
            shaped(z.narrow(0, nq, ni), items),
        )
    }

    fn all_items(&self) -> Tensor {
        self.fresh_key(&Tensor::arange(self.n_train, (Kind::Int64, self.device)))
    }

    fn n_items(&self) -> i64 {
        self.n_train
    }

    fn unit_norm(&self) -> bool {
        true
    }

    fn two_views(&self) -> bool {
        self.key_weights.is_none()
    }

    fn features(&self, ids: &Tensor) -> Tensor {
        self.encode(&self.batch(ids, None), &self.weights)
    }

    fn views(&self, ids: &Tensor, seed: u64) -> Option<(Tensor, Tensor)> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let w = &self.weights;
        Some((self.view(ids, &mut rng, w), self.view(ids, &mut rng, w)))
    }

    /// A step begins: CNN forward passes that no backward pass followed (an evaluation with gradient
    /// on) are forgotten.
    fn refresh(&self) {
        self.deferred
            .lock()
            .expect("no panic while deferring")
            .clear();
    }

    /// The first layer's gradients of each CNN forward pass of the step (`convolutions`), on the host,
    /// added to its parameters' gradients.
    fn after_backward(&self) {
        let deferred =
            std::mem::take(&mut *self.deferred.lock().expect("no panic while deferring"));
        for d in deferred {
            let dy = d.tap.grad();
            if !dy.defined() {
                continue; // this forward pass was not in the loss
            }
            let size = d.h.size();
            let grads = first_layer::grads(first_layer::Batch {
                x: &host(&d.x),
                h: &host(&d.h),
                dy: &host(&dy),
                weight: &host(&d.weights[2]),
                height: size[2] as usize,
                width: size[3] as usize,
            });
            for (param, g) in d.weights.iter().zip([grads.weight, grads.bias]) {
                let g = Tensor::from_slice(&g).view(param.size().as_slice());
                super::accumulate_grad(param, &g);
            }
        }
    }

    /// MoCo's momentum update of the key encoder: k ← m·k + (1 − m)·q.
    fn after_step(&self) {
        let (Some(keys), Some(m)) = (&self.key_weights, self.config.momentum) else {
            return;
        };
        for (k, q) in keys.iter().zip(&self.weights) {
            if !momentum_on_host(k, q, m) {
                tch::no_grad(|| momentum_in_libtorch(k, q, m));
            }
        }
    }
}

/// A CPU tensor's values, flat.
fn host(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.detach().contiguous().view([-1])).expect("f32 on the CPU")
}

/// MoCo's k ← m·k + (1 − m)·q as libtorch's kernels compute it: k·m, then q·(1 − m), each rounded to
/// f32, then their sum.
fn momentum_in_libtorch(k: &Tensor, q: &Tensor, m: f64) {
    let mut k = k.shallow_clone();
    let _ = k.g_mul_scalar_(m);
    let _ = k.g_add_(&(q * (1.0 - m)));
}

/// `momentum_in_libtorch` in one pass on the host, to the bit (Rust contracts no product into an fma):
/// a step's three kernels and temporary per parameter cost more than the update (MoCo's 8 small
/// tensors). False, and nothing done, unless both are contiguous f32 CPU tensors of one size.
fn momentum_on_host(k: &Tensor, q: &Tensor, m: f64) -> bool {
    let plain =
        |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous();
    if !(plain(k) && plain(q) && k.size() == q.size()) || k.data_ptr() == q.data_ptr() {
        return false;
    }
    let n = k.numel();
    let (keep, take) = (m as f32, (1.0 - m) as f32);
    // SAFETY: two distinct contiguous f32 CPU tensors of n elements; nothing else runs on them during
    // the update (the step is over, the next has not begun).
    let (k, q) = unsafe {
        (
            std::slice::from_raw_parts_mut(k.data_ptr() as *mut f32, n),
            std::slice::from_raw_parts(q.data_ptr() as *const f32, n),
        )
    };
    for (k, &q) in k.iter_mut().zip(q) {
        *k = *k * keep + q * take;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> VisionData {
        VisionData {
            height: 4,
            width: 4,
            pixels: (0..48).map(|i| (i % 7) as f32 / 7.0).collect(),
            labels: vec![0, 1, 0],
            n_train: 2,
            n_classes: 2,
        }
    }

    #[test]
    fn two_calls_give_two_views_and_features_are_the_clean_encoding() {
        for encoder in [EncoderKind::Mlp, EncoderKind::Cnn] {
            let vs = nn::VarStore::new(Device::Cpu);
            let c = ImageEncoderConfig {
                encoder,
                ..Default::default()
            };
            let m = ImageEncoder::new(&vs.root(), &c, &data(), 0);
            let ids = Tensor::from_slice(&[0i64, 1]);
            let (a, b) = (m.queries(&ids), m.items(&ids));
            assert_eq!(a.size(), [2, 32]);
            assert!(
                (a.norm_scalaropt_dim(2, [1i64].as_slice(), false) - 1.0)
                    .abs()
                    .max()
                    .double_value(&[])
                    < 1e-5
            );
            assert!(
                a.not_equal_tensor(&b).any().int64_value(&[]) == 1,
                "fresh views"
            );
            // Features read the clean image: the same twice, and of a held-out image too.
            let all = Tensor::from_slice(&[0i64, 1, 2]);
            assert!(m.features(&all).equal(&m.features(&all)));
            assert_eq!(m.features(&all).size(), [3, 64]);
            // Candidates of any shape.
            assert_eq!(m.items(&ids.view([1, 2])).size(), [1, 2, 32]);
        }
    }

    #[test]
    fn one_pass_over_queries_and_items_draws_the_views_of_two_calls() {
        let ids = Tensor::from_slice(&[0i64, 1, 1]);
        let items = Tensor::from_slice(&[1i64, 0, 0, 1]).view([2, 2]);
        for momentum in [None, Some(0.9)] {
            let c = ImageEncoderConfig {
                momentum,
                ..Default::default()
            };
            let (vs_a, vs_b) = (
                nn::VarStore::new(Device::Cpu),
                nn::VarStore::new(Device::Cpu),
            );
            let a = ImageEncoder::new(&vs_a.root(), &c, &data(), 7);
            let b = ImageEncoder::new(&vs_b.root(), &c, &data(), 7);
            let (u, p) = a.queries_and_items(&ids, &items);
            let (u2, p2) = (b.queries(&ids), b.items(&items));
            assert_eq!(p.size(), [2, 2, 32]);
            // The same augmentations in the same order; only the rounding of one product may differ.
            assert!((&u - &u2).abs().max().double_value(&[]) < 1e-6);
            assert!((&p - &p2).abs().max().double_value(&[]) < 1e-6);
            assert!(u.requires_grad() && p.requires_grad() != momentum.is_some());
        }
    }

    #[test]
    fn a_momentum_encoder_gives_keys_without_gradient_and_follows_the_trained_one_by_its_average() {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = ImageEncoderConfig {
            momentum: Some(0.9),
            ..Default::default()
        };
        let m = ImageEncoder::new(&vs.root(), &c, &data(), 0);
        let ids = Tensor::from_slice(&[0i64, 1]);
        assert!(m.queries(&ids).requires_grad(), "queries train");
        assert!(!m.items(&ids).requires_grad(), "keys do not");
        assert!(!m.all_items().requires_grad());
        let keys = m.key_weights.as_ref().unwrap();
        let before: Vec<Tensor> = keys.iter().map(|k| k.copy()).collect();
        assert!(
            before[0].equal(&m.weights[0]),
            "the key encoder starts as a copy"
        );
        // Move the trained weights, then the key encoder follows a tenth of the way.
        tch::no_grad(|| {
            for w in &m.weights {
                let _ = w.shallow_clone().g_add_scalar_(1.0);
            }
        });
        m.after_step();
        for ((k, b), q) in keys.iter().zip(&before).zip(&m.weights) {
            let want = b * 0.9 + q * 0.1;
            assert!((k - want).abs().max().double_value(&[]) < 1e-6);
        }
        // Without momentum, one encoder: candidates train too.
        let vs = nn::VarStore::new(Device::Cpu);
        let plain = ImageEncoder::new(&vs.root(), &ImageEncoderConfig::default(), &data(), 0);
        assert!(plain.items(&ids).requires_grad());
    }

    /// The CNN encoder through libtorch's autograd alone, as on an accelerator.
    fn cnn_in_libtorch(x: &Tensor, w: &[Tensor]) -> Tensor {
        x.conv2d(&w[0], Some(&w[1]), [1, 1], [1, 1], [1, 1], 1)
            .relu()
            .conv2d(&w[2], Some(&w[3]), [2, 2], [1, 1], [1, 1], 1)
            .relu()
            .mean_dim([2i64, 3].as_slice(), false, Kind::Float)
            .linear(&w[4], Some(&w[5]))
    }

    #[test]
    fn the_cnns_gradients_with_the_first_layer_on_the_host_are_autograds() {
        let vs = nn::VarStore::new(Device::Cpu);
        let c = ImageEncoderConfig {
            encoder: EncoderKind::Cnn,
            ..Default::default()
        };
        let mut data = data();
        data.height = 3; // odd sizes: 3 × 4 images
                         // Two models from one seed: the same weights, one for each path.
        let (m, twin) = (
            ImageEncoder::new(&vs.root(), &c, &data, 0),
            ImageEncoder::new(&nn::VarStore::new(Device::Cpu).root(), &c, &data, 0),
        );
        let ids = Tensor::from_slice(&[0i64, 1, 2, 1]);
        let x = m.batch(&ids, None);
        let weighting = Tensor::from_slice(&[0.3f32, -1.2, 0.7, 2.0]).view([4, 1]);
        let loss = |z: Tensor| (z.square() * &weighting).sum(Kind::Float);
        // The encoder's six parameters (the head is not in this loss).
        let grads = |m: &ImageEncoder| -> Vec<Tensor> {
            m.weights[..6].iter().map(|w| w.grad().copy()).collect()
        };
        loss(cnn_in_libtorch(&x, &twin.weights)).backward();
        let reference = grads(&twin);
        // Twice without clearing: the first time the first layer's gradients are new (no gradient
        // reached them through autograd), the second time added.
        for round in 1..=2 {
            m.refresh();
            loss(m.encode(&x, &m.weights)).backward();
            assert!(
                !m.weights[0].grad().defined() || round == 2,
                "outside autograd"
            );
            m.after_backward();
            for (i, (got, want)) in grads(&m).iter().zip(&reference).enumerate() {
                let want = want * round as f64;
                if i < 2 {
                    assert!(got.allclose(&want, 1e-5, 1e-6, false), "parameter {i}");
                } else {
                    assert!(
                        got.equal(&want),
                        "parameter {i}: libtorch's own, to the bit"
                    );
                }
            }
        }
        // Without gradient nothing is deferred; a forward pass no backward followed is forgotten.
        let _ = tch::no_grad(|| m.encode(&x, &m.weights));
        assert!(m.deferred.lock().unwrap().is_empty());
        let _ = m.encode(&x, &m.weights);
        m.refresh();
        assert!(m.deferred.lock().unwrap().is_empty());
    }

    #[test]
    fn nearest_is_rounding_half_away_from_zero() {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        let edges = [
            0.5,
            -0.5,
            1.5,
            -1.5,
            0.49999999999999994,
            -0.49999999999999994,
            2.5 - 1e-15,
        ];
        let drawn = (0..100_000).map(|_| rng.random_range(-40.0..40.0));
        for v in edges.into_iter().chain([0.0, -0.0, 3.0, -7.0]).chain(drawn) {
            assert_eq!(nearest(v), v.round() as i64, "{v}");
        }
    }

    #[test]
    fn the_momentum_update_on_the_host_is_libtorchs_to_the_bit() {
        tch::manual_seed(11);
        for m in [0.99, 0.999, 0.9, 0.37] {
            let k = Tensor::randn([37, 29], (Kind::Float, Device::Cpu)) * 3.0;
            let q = Tensor::randn([37, 29], (Kind::Float, Device::Cpu));
            let (host, torch) = (k.copy(), k.copy());
            assert!(momentum_on_host(&host, &q, m));
            momentum_in_libtorch(&torch, &q, m);
            assert!(host.equal(&torch), "m = {m}");
            assert!(!host.equal(&k));
        }
        // Not contiguous: left to libtorch.
        let k = Tensor::zeros([4, 6], (Kind::Float, Device::Cpu));
        assert!(!momentum_on_host(&k.tr(), &k.tr().copy(), 0.9));
    }

    /// The augmentation as first written, pixel by pixel (libm's rounding, the noise drawn with each
    /// pixel): `augment` must give its bytes.
    fn augment_pixel_by_pixel(
        image: &[f32],
        (h, w): (usize, usize),
        c: &ImageEncoderConfig,
        rng: &mut Pcg64Mcg,
    ) -> Vec<f32> {
        let g = ViewGeometry::draw(h, w, c, rng);
        let mut out = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = g.source(x, y);
                let (sx, sy) = (sx.round(), sy.round());
                let mut v = if sx >= 0.0 && sy >= 0.0 && (sx as usize) < w && (sy as usize) < h {
                    image[sy as usize * w + sx as usize] as f64
                } else {
                    0.0
                };
                if c.noise > 0.0 {
                    v += g.noise.sample(rng);
                }
                out.push(v.clamp(0.0, 1.0) as f32);
            }
        }
        cutout(&mut out, h, w, c, rng);
        out
    }

    #[test]
    fn augmentation_gives_the_pixel_by_pixel_bytes() {
        let mut draw = Pcg64Mcg::seed_from_u64(9);
        for (h, w) in [(8, 8), (5, 11), (28, 28), (1, 3)] {
            let image: Vec<f32> = (0..h * w).map(|_| draw.random::<f32>()).collect();
            for c in [
                ImageEncoderConfig::default(),
                ImageEncoderConfig {
                    shift: 3,
                    rotation: 180.0,
                    noise: 0.0,
                    cutout: 1.0,
                    ..Default::default()
                },
            ] {
                let (mut a, mut b) = (Pcg64Mcg::seed_from_u64(2), Pcg64Mcg::seed_from_u64(2));
                for _ in 0..50 {
                    let mut out = vec![7.0];
                    augment(&image, h, w, &c, &mut a, &mut out);
                    let want = augment_pixel_by_pixel(&image, (h, w), &c, &mut b);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&out[1..]), bits(&want), "{h} x {w}");
                }
            }
        }
    }

    #[test]
    fn augmentation_without_any_change_is_the_identity_and_stays_in_range() {
        let image: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
        let none = ImageEncoderConfig {
            shift: 0,
            rotation: 0.0,
            noise: 0.0,
            cutout: 0.0,
            ..Default::default()
        };
        let mut out = Vec::new();
        augment(
            &image,
            4,
            4,
            &none,
            &mut Pcg64Mcg::seed_from_u64(1),
            &mut out,
        );
        assert_eq!(out, image);
        out.clear();
        let every = ImageEncoderConfig {
            cutout: 1.0,
            ..Default::default()
        };
        augment(
            &image,
            4,
            4,
            &every,
            &mut Pcg64Mcg::seed_from_u64(1),
            &mut out,
        );
        assert_eq!(out.len(), 16);
        assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(out.contains(&0.0));
    }
}
