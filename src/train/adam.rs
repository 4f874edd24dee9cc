//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) as libtorch's
//! `torch::optim::Adam` computes it, in three passes over each cache-sized block of a parameter instead
//! of libtorch's eight tensor operations over the whole (the moments' `mul_` and `add_` / `addcmul_`,
//! `sqrt`, a division, `add_`, `addcdiv_`, each a pass through memory and two of them new tensors): the
//! moments on the host, libtorch's own square root into a kept buffer (MKL's, which is not always the
//! correctly rounded one), then the step on the host. For an embedding table of millions of rows that
//! update is a large share of a step. The host passes do the same float operations in the same order
//! with the same roundings (fused multiply-adds where libtorch's kernels fuse), so the result is
//! libtorch's bits: the first `HostAdam` of a process checks that on a problem of several blocks against
//! libtorch itself (`agrees_with_libtorch`) and, should they ever differ (another libtorch, another CPU),
//! every cell keeps libtorch's optimiser.
//!
//! Gradients are cleared by libtorch (`zero_grad` sets them to none), so a parameter without a gradient
//! in a step is skipped and its step count stays, as in libtorch.

use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device, Kind, Tensor};

/// Elements updated together (2 MB for the five arrays' blocks: within the last-level cache).
const BLOCK: usize = 1 << 17;

/// One parameter's state: its step count, moments, and the square roots of the second.
struct Moments {
    step: i64,
    m: Tensor,
    v: Tensor,
    root: Tensor,
}

/// Adam over the trainable variables of an `nn::Optimizer` (which keeps clearing their gradients).
pub struct HostAdam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    moments: Vec<Moments>,
}

/// The scalars of one parameter's step, as libtorch hands them to its float kernels.
#[derive(Clone, Copy)]
struct StepScalars {
    weight_decay: f32,
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    sqrt_correction2: f32,
    eps: f32,
    neg_step_size: f32,
}

impl HostAdam {
    /// Adam with libtorch's defaults (β = 0.9, 0.999; ε = 1e-8) and coupled weight decay, when every
    /// variable is a contiguous float tensor on the CPU and this libtorch gives the same bits; else
    /// `None`.
    pub fn new(opt: &nn::Optimizer, lr: f64, weight_decay: f64) -> Option<HostAdam> {
        let host =
            |t: &Tensor| t.device() == Device::Cpu && t.kind() == Kind::Float && t.is_contiguous();
        if !opt.trainable_variables().iter().all(host) || !agrees_with_libtorch() {
            return None;
        }
        Some(HostAdam::unchecked(lr, weight_decay))
    }

    fn unchecked(lr: f64, weight_decay: f64) -> HostAdam {
        HostAdam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            moments: Vec::new(),
        }
    }

    /// One step over `opt`'s variables that have a gradient.
    pub fn step(&mut self, opt: &nn::Optimizer) {
        let _no_grad = tch::no_grad_guard();
        for (at, p) in opt.trainable_variables().into_iter().enumerate() {
            let g = p.grad();
            if !g.defined() {
                continue;
            }
            let g = g.contiguous();
            let n = p.numel();
            assert!(p.is_contiguous(), "Adam's parameters are contiguous");
            if self.moments.len() <= at {
                self.moments.resize_with(at + 1, || Moments {
                    step: 0,
                    m: Tensor::new(),
                    v: Tensor::new(),
                    root: Tensor::new(),
                });
            }
            let step = self.moments[at].step + 1;
            let s = self.scalars(step);
            let state = &mut self.moments[at];
            if !state.m.defined() || state.m.numel() != n {
                let zeros = || Tensor::zeros([n as i64], (Kind::Float, Device::Cpu));
                (state.m, state.v, state.root) = (zeros(), zeros(), zeros());
            }
            state.step = step;
            // A block at a time, so the square root and the step read what the moments just wrote
            // from the cache, not from memory (every element's operations are its own: the same bits).
            for start in (0..n).step_by(BLOCK) {
                let len = BLOCK.min(n - start);
                // SAFETY: each tensor is a contiguous float tensor of n elements on the CPU, no two
                // share storage (the moments are this state's own, the gradient is not the parameter),
                // and no slice is alive while libtorch writes the root.
                let view = |t: &Tensor| unsafe {
                    std::slice::from_raw_parts_mut((t.data_ptr() as *mut f32).add(start), len)
                };
                moments(view(&p), view(&g), view(&state.m), view(&state.v), s);
                // libtorch's sqrt (MKL's, not always the correctly rounded one) into the state's buffer.
                let block = |t: &Tensor| t.narrow(0, start as i64, len as i64);
                let _ = block(&state.v).sqrt_out(&block(&state.root));
                descend(view(&p), view(&state.root), view(&state.m), s);
            }
        }
    }

    /// libtorch's scalars for step `t`: its bias corrections in f64, then each cast to float.
    fn scalars(&self, t: i64) -> StepScalars {
        let correction1 = 1.0 - self.beta1.powf(t as f64);
        let correction2 = 1.0 - self.beta2.powf(t as f64);
        StepScalars {
            weight_decay: self.weight_decay as f32,
            beta1: self.beta1 as f32,
            one_minus_beta1: (1.0 - self.beta1) as f32,
            beta2: self.beta2 as f32,
            one_minus_beta2: (1.0 - self.beta2) as f32,
            sqrt_correction2: correction2.sqrt() as f32,
            eps: self.eps as f32,
            neg_step_size: (-(self.lr / correction1)) as f32,
        }
    }
}

/// Runs `body` compiled for AVX2 and FMA where the CPU has them (the same operations, wider).
#[inline(always)]
fn fast(body: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide(body: impl FnOnce()) {
            body()
        }
        // SAFETY: the CPU features the function is compiled for were just detected.
        unsafe { wide(body) };
        return;
    }
    body()
}

/// The moments, libtorch's operations in order: `grad.add(p, wd)` and `exp_avg.mul_(β1).add_(grad, 1 −
/// β1)` are its fused `fmadd`; `exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)` is self + (value·t1)·t2
/// fused at the last multiply-add.
fn moments(p: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars) {
    fast(|| {
        for (((&p, &g), m), v) in p.iter().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if s.weight_decay != 0.0 {
                p.mul_add(s.weight_decay, g)
            } else {
                g
            };
            *m = g.mul_add(s.one_minus_beta1, *m * s.beta1);
            *v = (s.one_minus_beta2 * g).mul_add(g, *v * s.beta2);
        }
    })
}

/// The step: `denom = (sqrt(v) / sqrt(c2)).add_(eps)`, then `p.addcdiv_(m, denom, −lr / c1)`: self +
/// (value·t1) / t2.
fn descend(p: &mut [f32], root: &[f32], m: &[f32], s: StepScalars) {
    fast(|| {
        for ((p, &r), &m) in p.iter_mut().zip(root).zip(m) {
            let denom = r / s.sqrt_correction2 + s.eps;
            *p += s.neg_step_size * m / denom;
        }
    })
}

/// Whether this process's libtorch Adam and `HostAdam` give the same bits: five steps on three
/// parameters (lengths that leave a vector tail, one over several blocks) with weight decay, compared
/// exactly. Checked once.
pub fn agrees_with_libtorch() -> bool {
    static AGREES: OnceLock<bool> = OnceLock::new();
    *AGREES.get_or_init(|| tch::no_grad(|| compare_with_libtorch(0.01, 1e-2)))
}

fn compare_with_libtorch(lr: f64, weight_decay: f64) -> bool {
    use nn::OptimizerConfig;
    let (torch_vs, host_vs) = (
        nn::VarStore::new(Device::Cpu),
        nn::VarStore::new(Device::Cpu),
    );
    // The third spans three blocks, the last one short.
    let shapes: [&[i64]; 3] = [&[37, 17], &[13], &[2 * BLOCK as i64 + 1001]];
    let mut pairs = Vec::new();
    // Values from a stream of its own: libtorch's global generator is left alone.
    let mut rng = Pcg64Mcg::seed_from_u64(7);
    let mut normal = |shape: &[i64]| {
        let n = shape.iter().product::<i64>() as usize;
        let v: Vec<f32> = (0..n)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        Tensor::from_slice(&v).view(shape)
    };
    for (at, shape) in shapes.iter().enumerate() {
        let init = normal(shape);
        let name = format!("p{at}");
        pairs.push((
            torch_vs.root().var_copy(&name, &init),
            host_vs.root().var_copy(&name, &init),
        ));
    }
    let adam = nn::Adam {
        wd: weight_decay,
        ..Default::default()
    };
    let (Ok(mut torch_opt), Ok(mut host_opt)) =
        (adam.build(&torch_vs, lr), adam.build(&host_vs, lr))
    else {
        return false;
    };
    let mut host = HostAdam::unchecked(lr, weight_decay);
    for _ in 0..5 {
        torch_opt.zero_grad();
        host_opt.zero_grad();
        for (t, h) in &pairs {
            let target = normal(&t.size());
            let loss = |p: &Tensor| (p - &target).pow_tensor_scalar(3).sum(Kind::Float);
            tch::with_grad(|| loss(t).backward());
            tch::with_grad(|| loss(h).backward());
        }
        torch_opt.step();
        host.step(&host_opt);
    }
    pairs.iter().all(|(t, h)| t.equal(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_adam_gives_libtorchs_bits() {
        for (lr, weight_decay) in [(0.01, 0.0), (1e-3, 1e-2), (0.05, 1e-4)] {
            assert!(
                compare_with_libtorch(lr, weight_decay),
                "lr {lr}, weight decay {weight_decay}"
            );
        }
    }

    #[test]
    fn cpu_float_variables_take_the_host_update() {
        use nn::OptimizerConfig;
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = vs.root().zeros("w", &[3, 2]);
        let opt = nn::Adam::default().build(&vs, 0.1).unwrap();
        assert!(HostAdam::new(&opt, 0.1, 0.0).is_some());
        let mut doubles = nn::VarStore::new(Device::Cpu);
        let _ = doubles.root().zeros("d", &[2]);
        doubles.double();
        let opt = nn::Adam::default().build(&doubles, 0.1).unwrap();
        assert!(
            HostAdam::new(&opt, 0.1, 0.0).is_none(),
            "libtorch's for other kinds"
        );
    }

    #[test]
    fn an_unfused_moment_gives_other_bits() {
        // The comparison can fail: the moments' multiply-adds unfused differ in the last bit.
        let s = HostAdam::unchecked(0.01, 0.0).scalars(1);
        let g: Vec<f32> = (0..1000)
            .map(|i| ((i * 7919) % 1000) as f32 / 97.0 - 5.0)
            .collect();
        let v0: Vec<f32> = (0..1000)
            .map(|i| ((i * 104729) % 1000) as f32 / 313.0)
            .collect();
        let (mut fused, mut m) = (v0.clone(), vec![0.0f32; 1000]);
        moments(&[0.0; 1000], &g, &mut m, &mut fused, s);
        let plain: Vec<f32> = (0..1000)
            .map(|i| v0[i] * s.beta2 + s.one_minus_beta2 * g[i] * g[i])
            .collect();
        assert!(fused.iter().zip(&plain).any(|(a, b)| a != b));
    }
}
