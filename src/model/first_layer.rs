//! The gradients of the `cnn` image encoder's first layer (1 → 16 channels, 3 × 3, padding 1, ReLU)
//! through its second convolution (16 → 32 channels, 3 × 3, stride 2, padding 1), from dL/dy of that
//! convolution's output, on the host instead of by a backward pass through libtorch.
//!
//! Why: on the CPU, libtorch's input gradient of the second convolution (oneDNN's strided
//! backward-data kernel, then a copy from channels-last back to the contiguous layout) and the pass
//! back through the first layer took about 1.4 ms of a 2.9 ms SimCLR step on 8 × 8 digits. Here
//! dL/dh = convᵀ(dL/dy) is a transposed convolution (about 0.35 ms with AVX-512, 0.75 ms with AVX2,
//! for 256 images), then the first layer's weight and bias gradients are sums over its 160
//! parameters. Both layers' forward passes, and the second's weight gradient, stay libtorch's.
//!
//! Every element is summed in one fixed order whatever the instruction set: dL/dh over the 32 output
//! channels for each (output position, tap), those contributions in the order of the output positions
//! and taps; the first layer's gradients over images, then positions. The code is vectorised across
//! the 16 channels only (independent lanes, products and sums rounded separately, never fused), so
//! AVX-512, AVX2 and the portable build give the same bits (tested).

/// Channels of the first layer's output (the width of one vector of lanes).
pub const IN: usize = 16;
/// Output channels of the second convolution.
pub const OUT: usize = 32;
const TAPS: usize = 9;

/// The second convolution's weights (OUT, IN, 3, 3) as [o][tap][c], a tap's 16 channels adjacent.
type Taps = [[[f32; IN]; TAPS]; OUT];

/// An instruction set the kernels are compiled for. Only those this CPU has are ever made
/// (`Isa::available`), which is what makes running a kernel compiled for one sound.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The instruction sets this CPU has, best first.
    fn available() -> Vec<Isa> {
        let mut all = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                all.push(Isa::Avx512);
            }
            if std::is_x86_feature_detected!("avx2") {
                all.push(Isa::Avx2);
            }
        }
        all.push(Isa::Portable);
        all
    }

    fn best() -> Isa {
        static BEST: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *BEST.get_or_init(|| Isa::available()[0])
    }
}

/// Runs `$kernel($args)` compiled for `$isa`: the same code inlined into each, so the same bits.
macro_rules! on_isa {
    ($isa:expr, $kernel:ident($($arg:ident: $ty:ty),*) -> $ret:ty) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        fn avx512($($arg: $ty),*) -> $ret {
            $kernel($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        fn avx2($($arg: $ty),*) -> $ret {
            $kernel($($arg),*)
        }
        match $isa {
            // SAFETY: an `Isa` names an instruction set only when this CPU has it (`Isa::available`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { avx512($($arg),*) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { avx2($($arg),*) },
            _ => $kernel($($arg),*),
        }
    }};
}

#[derive(Clone, Copy)]
struct Shape {
    height: usize,
    width: usize,
}

impl Shape {
    /// The input position under tap k (row-major 3 × 3) of output position (y, x), padding 1, if it
    /// is inside the image.
    #[inline(always)]
    fn under(&self, y: usize, x: usize, k: usize) -> Option<usize> {
        let (y, x) = (y + k / 3, x + k % 3);
        (y > 0 && x > 0 && y <= self.height && x <= self.width)
            .then(|| (y - 1) * self.width + x - 1)
    }
}

/// The first layer's gradients: dL/dW (IN, 1, 3, 3) and dL/db (IN).
pub struct FirstLayerGrads {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The arrays of one batch, all contiguous (NCHW): the images `x` (n, 1, height, width), the first
/// layer's output `h` (n, IN, height, width), dL/dy of the second convolution's output (n, OUT,
/// ⌈height/2⌉, ⌈width/2⌉) and that convolution's weight (OUT, IN, 3, 3).
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub x: &'a [f32],
    pub h: &'a [f32],
    pub dy: &'a [f32],
    pub weight: &'a [f32],
    pub height: usize,
    pub width: usize,
}

impl Batch<'_> {
    fn size(&self) -> usize {
        let (hw, ohw) = (
            self.height * self.width,
            self.height.div_ceil(2) * self.width.div_ceil(2),
        );
        let size = self.x.len() / hw.max(1);
        assert_eq!(self.x.len(), size * hw, "x is (n, 1, H, W)");
        assert_eq!(self.h.len(), size * IN * hw, "h is (n, 16, H, W)");
        assert_eq!(
            self.dy.len(),
            size * OUT * ohw,
            "dL/dy is (n, 32, ⌈H/2⌉, ⌈W/2⌉)"
        );
        assert_eq!(
            self.weight.len(),
            OUT * IN * TAPS,
            "the weight is (32, 16, 3, 3)"
        );
        size
    }

    fn taps(&self) -> Box<Taps> {
        let mut taps: Box<Taps> = Box::new([[[0.0; IN]; TAPS]; OUT]);
        for (o, per_tap) in taps.iter_mut().enumerate() {
            for (k, lanes) in per_tap.iter_mut().enumerate() {
                for (c, v) in lanes.iter_mut().enumerate() {
                    *v = self.weight[(o * IN + c) * TAPS + k];
                }
            }
        }
        taps
    }
}

/// dL/dW and dL/db of the first layer, from dL/dy of the second convolution.
pub fn grads(batch: Batch) -> FirstLayerGrads {
    grads_on(Isa::best(), batch)
}

fn grads_on(isa: Isa, batch: Batch) -> FirstLayerGrads {
    let taps = batch.taps();
    let taps = &*taps;
    on_isa!(isa, grads_kernel(batch: Batch, taps: &Taps) -> FirstLayerGrads)
}

/// Image by image: dL/dh (position-major) by the transposed convolution, masked by the ReLU, then its
/// products with the image's pixels.
#[inline(always)]
fn grads_kernel(batch: Batch, taps: &Taps) -> FirstLayerGrads {
    let (height, width) = (batch.height, batch.width);
    let shape = Shape { height, width };
    let hw = height * width;
    let ohw = height.div_ceil(2) * width.div_ceil(2);
    let mut weight = [[0.0f32; IN]; TAPS];
    let mut bias = [0.0f32; IN];
    let mut dh = vec![[0.0f32; IN]; hw];
    for b in 0..batch.size() {
        transposed_conv(
            &batch.dy[b * OUT * ohw..(b + 1) * OUT * ohw],
            taps,
            shape,
            &mut dh,
        );
        let (x, h) = (
            &batch.x[b * hw..(b + 1) * hw],
            &batch.h[b * IN * hw..(b + 1) * IN * hw],
        );
        for (p, lanes) in dh.iter().enumerate() {
            // ReLU's gradient passes where its output is positive (as libtorch's threshold_backward).
            let mut g = [0.0f32; IN];
            for (c, (g, &d)) in g.iter_mut().zip(lanes).enumerate() {
                *g = if h[c * hw + p] > 0.0 { d } else { 0.0 };
            }
            for (s, &g) in bias.iter_mut().zip(&g) {
                *s += g;
            }
            for (k, per_channel) in weight.iter_mut().enumerate() {
                if let Some(at) = shape.under(p / width, p % width, k) {
                    let v = x[at];
                    for (s, &g) in per_channel.iter_mut().zip(&g) {
                        *s += g * v;
                    }
                }
            }
        }
    }
    FirstLayerGrads {
        weight: (0..IN * TAPS).map(|i| weight[i % TAPS][i / TAPS]).collect(),
        bias: bias.to_vec(),
    }
}

/// One image's dL/dh = convᵀ(dL/dy) (stride 2, padding 1), position-major ([y·W + x][c]) into `dh`.
#[inline(always)]
fn transposed_conv(dy: &[f32], taps: &Taps, shape: Shape, dh: &mut [[f32; IN]]) {
    let ow = shape.width.div_ceil(2);
    let ohw = shape.height.div_ceil(2) * ow;
    dh.fill([0.0; IN]);
    for q in 0..ohw {
        // Nine independent sums (one a tap), so the adds do not wait on one another.
        let mut sums = [[0.0f32; IN]; TAPS];
        for (o, per_tap) in taps.iter().enumerate() {
            let a = dy[o * ohw + q];
            for (sum, lanes) in sums.iter_mut().zip(per_tap) {
                for (s, &w) in sum.iter_mut().zip(lanes) {
                    *s += a * w;
                }
            }
        }
        for (k, sum) in sums.iter().enumerate() {
            // Output (oy, ox) reads input row 2·oy + ky − 1 and column 2·ox + kx − 1.
            if let Some(at) = shape.under(2 * (q / ow), 2 * (q % ow), k) {
                for (a, &s) in dh[at].iter_mut().zip(sum) {
                    *a += s;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// A batch of `n` images of `height` × `width` with random weights and dL/dy, and the first layer's
    /// output h computed by libtorch.
    struct Case {
        x: Vec<f32>,
        h: Vec<f32>,
        dy: Vec<f32>,
        w1: Vec<f32>,
        b1: Vec<f32>,
        w2: Vec<f32>,
        shape: [i64; 3],
    }

    impl Case {
        fn new(n: usize, height: usize, width: usize, seed: u64) -> Case {
            let ohw = height.div_ceil(2) * width.div_ceil(2);
            let x = values(n * height * width, seed);
            let (w1, b1) = (values(IN * TAPS, seed + 1), values(IN, seed + 2));
            let mut case = Case {
                h: Vec::new(),
                dy: values(n * OUT * ohw, seed + 3),
                w2: values(OUT * IN * TAPS, seed + 4),
                shape: [n as i64, height as i64, width as i64],
                x,
                w1,
                b1,
            };
            let (h, _) = case.libtorch();
            case.h = Vec::<f32>::try_from(h.detach().reshape([-1])).unwrap();
            case
        }

        fn batch(&self) -> Batch<'_> {
            Batch {
                x: &self.x,
                h: &self.h,
                dy: &self.dy,
                weight: &self.w2,
                height: self.shape[1] as usize,
                width: self.shape[2] as usize,
            }
        }

        /// h and (dL/dW, dL/db) of the first layer by libtorch's autograd through both convolutions.
        fn libtorch(&self) -> (Tensor, (Tensor, Tensor)) {
            let [n, height, width] = self.shape;
            let t = |v: &[f32], shape: &[i64]| Tensor::from_slice(v).view(shape);
            let w1 = t(&self.w1, &[IN as i64, 1, 3, 3]).set_requires_grad(true);
            let b1 = t(&self.b1, &[IN as i64]).set_requires_grad(true);
            let x = t(&self.x, &[n, 1, height, width]);
            let h = x.conv2d(&w1, Some(&b1), [1, 1], [1, 1], [1, 1], 1).relu();
            let w2 = t(&self.w2, &[OUT as i64, IN as i64, 3, 3]);
            let y = h.conv2d(&w2, None::<Tensor>, [2, 2], [1, 1], [1, 1], 1);
            let dy = t(&self.dy, &y.size());
            (&y * dy).sum(Kind::Float).backward();
            (h, (w1.grad(), b1.grad()))
        }
    }

    #[test]
    fn the_first_layers_gradients_are_libtorchs_through_both_convolutions() {
        for (n, height, width) in [(3, 8, 8), (2, 7, 9), (1, 1, 2), (4, 5, 4)] {
            let case = Case::new(n, height, width, 10 * height as u64 + width as u64);
            let (_, (weight, bias)) = case.libtorch();
            let host = grads(case.batch());
            for (name, host, reference) in
                [("weight", &host.weight, weight), ("bias", &host.bias, bias)]
            {
                let host = Tensor::from_slice(host).view(reference.size().as_slice());
                assert!(
                    host.allclose(&reference, 1e-4, 1e-5, false),
                    "{name}, {n} × {height} × {width}: host {host:?} libtorch {reference:?}"
                );
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let case = Case::new(5, 8, 8, 3);
        let g = grads_on(Isa::Portable, case.batch());
        for isa in Isa::available() {
            let other = grads_on(isa, case.batch());
            assert_eq!(
                (other.weight, other.bias),
                (g.weight.clone(), g.bias.clone()),
                "{isa:?}"
            );
        }
        println!("instruction sets compared: {:?}", Isa::available());
    }
}
