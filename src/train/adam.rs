//! Adam (Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015) as libtorch's
//! `torch::optim::Adam` computes it, in three passes over each cache-sized block of a parameter instead
//! of libtorch's eight tensor operations over the whole (the moments' `mul_` and `add_` / `addcmul_`,
//! `sqrt`, a division, `add_`, `addcdiv_`, each a pass through memory and two of them new tensors): the
//! moments on the host, the square root as libtorch computes it into a block-sized buffer (MKL's, which
//! is not always the correctly rounded one: on the host where `vml_sqrt` reproduces it, else through
//! libtorch), then the step on the host. For an embedding table of millions of rows that
//! update is a large share of a step. The host passes do the same float operations in the same order
//! with the same roundings (fused multiply-adds where libtorch's kernels fuse), so the result is
//! libtorch's bits: the first `HostAdam` of a process checks that on a problem of several blocks against
//! libtorch itself (`agrees_with_libtorch`) and, should they ever differ (another libtorch, another CPU),
//! every cell keeps libtorch's optimiser.
//!
//! A table's gradient may also come as the rows one gather read (`RowGrads`): the update then reads
//! each row's sum where the batch touched it and +0 elsewhere — the very values autograd's whole-table
//! gradient holds — without that table-sized tensor being zero-filled in backward and read here (in a
//! prototype at Gowalla's shape, backward and update 7.7 ms a step with it, 5.6 without). Where
//! autograd gave the table a gradient too (the L2 penalty over whole tables), the rows are added to it,
//! as autograd adds two gradients. The startup check covers the rows' path too.
//!
//! Gradients are cleared by libtorch (`zero_grad` sets them to none), so a parameter without a gradient
//! in a step is skipped and its step count stays, as in libtorch.

use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;
use tch::{nn, Device, Kind, Tensor};

use super::vml_sqrt;
use crate::model::RowGrads;

/// Elements updated together (2 MB for the five arrays' blocks: within the last-level cache).
const BLOCK: usize = 1 << 17;

/// One parameter's state: its step count and moments.
struct Moments {
    step: i64,
    m: Tensor,
    v: Tensor,
}

/// Adam over the trainable variables of an `nn::Optimizer` (which keeps clearing their gradients).
pub struct HostAdam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    moments: Vec<Moments>,
    /// A block's square roots of the second moment (kept in cache: never a pass through memory).
    roots: Tensor,
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

/// A parameter's gradient for one step: a tensor, or rows of a table (zero elsewhere).
enum Gradient {
    Dense(Tensor),
    Rows(RowSums),
}

/// A table's gradient given as `RowGrads`: each row read summed once, in the order of the ids, from +0
/// (libtorch's `index_add_` into zeros); every other row zero.
struct RowSums {
    dim: usize,
    /// Per table row: where its sum is in `sums`, or `UNTOUCHED`.
    slot: Vec<u32>,
    sums: Vec<f32>,
    zeros: Vec<f32>,
}

const UNTOUCHED: u32 = u32::MAX;

impl RowSums {
    fn new(g: &RowGrads, n_rows: usize, dim: usize) -> RowSums {
        let ids = Vec::<i64>::try_from(&g.ids).expect("row ids are i64");
        let grads = g.grads.contiguous();
        assert_eq!(
            grads.size(),
            [ids.len() as i64, dim as i64],
            "one row per id"
        );
        // SAFETY: a contiguous f32 CPU tensor of ids.len() · dim elements, read while it lives.
        let grads =
            unsafe { std::slice::from_raw_parts(grads.data_ptr() as *const f32, ids.len() * dim) };
        let mut sums = RowSums {
            dim,
            slot: vec![UNTOUCHED; n_rows],
            sums: Vec::new(),
            zeros: vec![0.0; dim],
        };
        for (row, g) in ids.iter().zip(grads.chunks_exact(dim)) {
            let row = usize::try_from(*row).expect("row ids are in the table");
            if sums.slot[row] == UNTOUCHED {
                sums.slot[row] = (sums.sums.len() / dim) as u32;
                sums.sums.resize(sums.sums.len() + dim, 0.0);
            }
            let at = sums.slot[row] as usize * dim;
            for (sum, &g) in sums.sums[at..at + dim].iter_mut().zip(g) {
                *sum += g;
            }
        }
        sums
    }

    fn row(&self, row: usize) -> &[f32] {
        match self.slot[row] {
            UNTOUCHED => &self.zeros,
            at => &self.sums[at as usize * self.dim..][..self.dim],
        }
    }
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
            roots: Tensor::zeros([BLOCK as i64], (Kind::Float, Device::Cpu)),
        }
    }

    /// One step over `opt`'s variables that have a gradient, through autograd or as `rows` (a table's
    /// gradient at the rows a gather read, zero elsewhere: the same step as its dense gradient).
    pub fn step(&mut self, opt: &nn::Optimizer, rows: &[RowGrads]) {
        let _no_grad = tch::no_grad_guard();
        for (at, p) in opt.trainable_variables().into_iter().enumerate() {
            let of_p = rows.iter().find(|r| r.param.data_ptr() == p.data_ptr());
            let g = p.grad();
            let g = match (g.defined(), of_p) {
                (false, None) => continue,
                (false, Some(r)) => {
                    let shape = p.size();
                    assert_eq!(shape.len(), 2, "row gradients are a table's");
                    Gradient::Rows(RowSums::new(r, shape[0] as usize, shape[1] as usize))
                }
                (true, None) => Gradient::Dense(g.contiguous()),
                (true, Some(r)) => Gradient::Dense(g + r.dense()),
            };
            self.step_one(at, &p, &g);
        }
    }

    fn step_one(&mut self, at: usize, p: &Tensor, g: &Gradient) {
        let n = p.numel();
        assert!(p.is_contiguous(), "Adam's parameters are contiguous");
        if self.moments.len() <= at {
            self.moments.resize_with(at + 1, || Moments {
                step: 0,
                m: Tensor::new(),
                v: Tensor::new(),
            });
        }
        let step = self.moments[at].step + 1;
        let s = self.scalars(step);
        let state = &mut self.moments[at];
        if !state.m.defined() || state.m.numel() != n {
            let zeros = || Tensor::zeros([n as i64], (Kind::Float, Device::Cpu));
            (state.m, state.v) = (zeros(), zeros());
        }
        state.step = step;
        // Blocks of whole rows, so a row's gradient is never split between two.
        let row = match g {
            Gradient::Rows(sums) => sums.dim,
            Gradient::Dense(_) => 1,
        };
        let host_sqrt = vml_sqrt::agrees_with_libtorch();
        let block = (BLOCK / row).max(1) * row;
        if self.roots.numel() < block {
            self.roots = Tensor::zeros([block as i64], (Kind::Float, Device::Cpu));
        }
        // A block at a time, so the square root and the step read what the moments just wrote from
        // the cache, not from memory (every element's operations are its own: the same bits).
        for start in (0..n).step_by(block) {
            let len = block.min(n - start);
            // SAFETY: each tensor is a contiguous float tensor of at least start + len elements on the
            // CPU, no two share storage (the moments are this state's own, the gradient is not the
            // parameter, the roots are this optimiser's), and no slice is alive while libtorch writes
            // the roots.
            let view = |t: &Tensor, start: usize| unsafe {
                std::slice::from_raw_parts_mut((t.data_ptr() as *mut f32).add(start), len)
            };
            let (m, v) = (view(&state.m, start), view(&state.v, start));
            match g {
                Gradient::Dense(g) => moments(view(p, start), view(g, start), m, v, s),
                Gradient::Rows(sums) => moments_of_rows(view(p, start), sums, start / row, m, v, s),
            }
            // libtorch's sqrt (MKL's, not always the correctly rounded one) into the roots: on the host
            // where that gives its bits, else libtorch's call.
            if host_sqrt {
                vml_sqrt::sqrt_into(v, view(&self.roots, 0));
            } else {
                let roots = self.roots.narrow(0, 0, len as i64);
                let _ = state.v.narrow(0, start as i64, len as i64).sqrt_out(&roots);
            }
            descend(
                view(p, start),
                view(&self.roots, 0),
                view(&state.m, start),
                s,
            );
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

/// Calls `$kernel($args)`, an `#[inline(always)]` function, compiled for AVX2 and FMA where the CPU has
/// them: the same operations, wider (a closure would not reliably be inlined into the wide build, and
/// its multiply-adds would then be libm calls).
macro_rules! with_fma {
    ($kernel:ident($($arg:ident: $ty:ty),*)) => {{
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn wide($($arg: $ty),*) {
            $kernel($($arg),*)
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU features the function is compiled for were just detected.
            return unsafe { wide($($arg),*) };
        }
        $kernel($($arg),*)
    }};
}

/// The moments, libtorch's operations in order: `grad.add(p, wd)` and `exp_avg.mul_(β1).add_(grad, 1 −
/// β1)` are its fused `fmadd`; `exp_avg_sq.mul_(β2).addcmul_(grad, grad, 1 − β2)` is self + (value·t1)·t2
/// fused at the last multiply-add.
fn moments(p: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars) {
    with_fma!(moments_of(p: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars))
}

#[inline(always)]
fn moments_of(p: &[f32], g: &[f32], m: &mut [f32], v: &mut [f32], s: StepScalars) {
    for (((&p, &g), m), v) in p.iter().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = if s.weight_decay != 0.0 {
            p.mul_add(s.weight_decay, g)
        } else {
            g
        };
        *m = g.mul_add(s.one_minus_beta1, *m * s.beta1);
        *v = (s.one_minus_beta2 * g).mul_add(g, *v * s.beta2);
    }
}

/// `moments` over whole table rows from `first` on, each row's gradient its sum or zeros.
fn moments_of_rows(
    p: &[f32],
    g: &RowSums,
    first: usize,
    m: &mut [f32],
    v: &mut [f32],
    s: StepScalars,
) {
    with_fma!(moments_of_each_row(p: &[f32], g: &RowSums, first: usize, m: &mut [f32], v: &mut [f32], s: StepScalars))
}

#[inline(always)]
fn moments_of_each_row(
    p: &[f32],
    g: &RowSums,
    first: usize,
    m: &mut [f32],
    v: &mut [f32],
    s: StepScalars,
) {
    let d = g.dim;
    let rows = p
        .chunks_exact(d)
        .zip(m.chunks_exact_mut(d))
        .zip(v.chunks_exact_mut(d));
    for (row, ((p, m), v)) in rows.enumerate() {
        moments_of(p, g.row(first + row), m, v, s);
    }
}

/// The step: `denom = (sqrt(v) / sqrt(c2)).add_(eps)`, then `p.addcdiv_(m, denom, −lr / c1)`: self +
/// (value·t1) / t2.
fn descend(p: &mut [f32], root: &[f32], m: &[f32], s: StepScalars) {
    with_fma!(descend_of(p: &mut [f32], root: &[f32], m: &[f32], s: StepScalars))
}

#[inline(always)]
fn descend_of(p: &mut [f32], root: &[f32], m: &[f32], s: StepScalars) {
    for ((p, &r), &m) in p.iter_mut().zip(root).zip(m) {
        let denom = r / s.sqrt_correction2 + s.eps;
        *p += s.neg_step_size * m / denom;
    }
}

/// Whether this process's libtorch Adam and `HostAdam` give the same bits: five steps on three
/// parameters (lengths that leave a vector tail, one over several blocks) and a table over several
/// blocks whose gradient comes through a gather (autograd's for libtorch, `RowGrads` for the host: rows
/// read several times sum in libtorch's order), with weight decay, compared exactly. Checked once.
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
    // The third spans three blocks, the last one short; the fourth is the table, over two blocks.
    let shapes: [&[i64]; 4] = [&[37, 17], &[13], &[2 * BLOCK as i64 + 1001], &[20011, 7]];
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
    let (table_t, table_h) = pairs.pop().expect("the table");
    let mut draws = Pcg64Mcg::seed_from_u64(8);
    for _ in 0..5 {
        torch_opt.zero_grad();
        host_opt.zero_grad();
        for (t, h) in &pairs {
            let target = normal(&t.size());
            let loss = |p: &Tensor| (p - &target).pow_tensor_scalar(3).sum(Kind::Float);
            tch::with_grad(|| loss(t).backward());
            tch::with_grad(|| loss(h).backward());
        }
        // 3,000 rows, a third of them from the first 50 (read many times over).
        let ids: Vec<i64> = (0..3000)
            .map(|i| draws.random_range(0..if i % 3 == 0 { 50 } else { 20011 }))
            .collect();
        let ids = Tensor::from_slice(&ids);
        let target = normal(&[3000, 7]);
        let loss = |rows: &Tensor| (rows - &target).pow_tensor_scalar(3).sum(Kind::Float);
        tch::with_grad(|| loss(&table_t.index_select(0, &ids)).backward());
        let rows = tch::no_grad(|| table_h.index_select(0, &ids)).set_requires_grad(true);
        tch::with_grad(|| loss(&rows).backward());
        let row_grads = RowGrads {
            param: table_h.shallow_clone(),
            ids,
            grads: rows.grad(),
        };
        torch_opt.step();
        host.step(&host_opt, &[row_grads]);
    }
    table_t.equal(&table_h) && pairs.iter().all(|(t, h)| t.equal(h))
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
