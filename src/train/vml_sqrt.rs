//! The single-precision square root libtorch computes on this machine, on the host, element by element
//! inside the Adam update instead of as a libtorch call over a block.
//!
//! libtorch's `sqrt` on the CPU is MKL's vector math (`vsSqrt`, high-accuracy mode), which is not the
//! correctly rounded square root: on the x86-64 CPUs MKL gives its generic SSE kernel it computes, for a
//! positive normal x not within 2¹² ulp of the largest float, the estimate y = rsqrt(x) (the CPU's
//! `rsqrtps`) refined by one Newton–Raphson step on both √x and 1/(2√x), every operation rounded on its
//! own:
//!
//! a = x·y, h = y·½, t = ½ − a·h, s = a·t + a, h' = h·t + h, √x ≈ (x − s·s)·h' + s,
//!
//! and for every other input (zero, subnormals, infinities, NaN, negatives, the largest floats) the
//! correctly rounded result. `agrees_with_libtorch` checks that on a million inputs spread over every
//! exponent against libtorch itself, once a process; where it does not hold (another CPU, another MKL
//! kernel) the update keeps calling libtorch.

use std::sync::OnceLock;

use tch::Tensor;

/// Inputs whose bits are at or above this, or below the smallest normal, take the exact path.
const LARGEST_FAST: u32 = 0x7f7f_f000;
const SMALLEST_NORMAL: u32 = 0x0080_0000;
const NEGATIVE_ZERO: u32 = 0x8000_0000;
/// What libtorch gives for a negative number.
const QUIET_NAN: u32 = 0x7fc0_0000;

/// √x as libtorch computes it here, into `out` (the same length as `x`).
pub fn sqrt_into(x: &[f32], out: &mut [f32]) {
    assert_eq!(x.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx") {
            // SAFETY: the CPU has AVX (just detected).
            unsafe { wide::sqrt_avx(x, out) };
        } else {
            // SAFETY: SSE2 is part of x86-64.
            unsafe { wide::sqrt_sse(x, out) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for (o, &x) in out.iter_mut().zip(x) {
        *o = x.sqrt();
    }
}

/// Whether `sqrt_into` gives libtorch's bits on this machine (checked once).
pub fn agrees_with_libtorch() -> bool {
    static AGREES: OnceLock<bool> = OnceLock::new();
    *AGREES.get_or_init(|| cfg!(target_arch = "x86_64") && agrees_on(&spread_inputs()))
}

/// About a million inputs: every 4,093rd bit pattern (every exponent, sign and class, mantissas all
/// over), and the edges of the fast path.
fn spread_inputs() -> Vec<f32> {
    let edges = [
        0,
        1,
        SMALLEST_NORMAL - 1,
        SMALLEST_NORMAL,
        LARGEST_FAST,
        LARGEST_FAST + 1,
    ];
    (0..=u32::MAX)
        .step_by(4093)
        .chain(edges)
        .map(f32::from_bits)
        .collect()
}

/// Whether `sqrt_into` and libtorch's `sqrt` give the same bits on `x`.
fn agrees_on(x: &[f32]) -> bool {
    let theirs = Tensor::from_slice(x).sqrt();
    let theirs = Vec::<f32>::try_from(&theirs).expect("a float tensor");
    let mut ours = vec![0.0; x.len()];
    sqrt_into(x, &mut ours);
    ours.iter()
        .zip(&theirs)
        .all(|(a, b)| a.to_bits() == b.to_bits())
}

#[cfg(target_arch = "x86_64")]
mod wide {
    use std::arch::x86_64::*;

    use super::{LARGEST_FAST, NEGATIVE_ZERO, QUIET_NAN, SMALLEST_NORMAL};

    /// Eight lanes at a time with AVX (`vrsqrtps` gives each lane what `rsqrtps` gives it).
    #[target_feature(enable = "avx")]
    pub unsafe fn sqrt_avx(x: &[f32], out: &mut [f32]) {
        let (half, n) = (_mm256_set1_ps(0.5), x.len() / 8 * 8);
        for at in (0..n).step_by(8) {
            // SAFETY: at + 8 ≤ n ≤ the length of both slices.
            let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(at)) };
            let y = _mm256_rsqrt_ps(v);
            let (a, h) = (_mm256_mul_ps(v, y), _mm256_mul_ps(y, half));
            let t = _mm256_sub_ps(half, _mm256_mul_ps(a, h));
            let s = _mm256_add_ps(_mm256_mul_ps(a, t), a);
            let h = _mm256_add_ps(_mm256_mul_ps(h, t), h);
            let r = _mm256_sub_ps(v, _mm256_mul_ps(s, s));
            let root = _mm256_add_ps(_mm256_mul_ps(r, h), s);
            // SAFETY: as for the load.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(at), root) };
        }
        // SAFETY: SSE2 is part of x86-64.
        unsafe { sqrt_sse(&x[n..], &mut out[n..]) };
        exact_outside_fast_path(x, out);
    }

    /// One lane at a time with SSE's `rsqrtss`.
    #[target_feature(enable = "sse2")]
    pub unsafe fn sqrt_sse(x: &[f32], out: &mut [f32]) {
        let half = _mm_set_ss(0.5);
        for (o, &x) in out.iter_mut().zip(x) {
            let v = _mm_set_ss(x);
            let y = _mm_rsqrt_ss(v);
            let (a, h) = (_mm_mul_ss(v, y), _mm_mul_ss(y, half));
            let t = _mm_sub_ss(half, _mm_mul_ss(a, h));
            let s = _mm_add_ss(_mm_mul_ss(a, t), a);
            let h = _mm_add_ss(_mm_mul_ss(h, t), h);
            let r = _mm_sub_ss(v, _mm_mul_ss(s, s));
            *o = _mm_cvtss_f32(_mm_add_ss(_mm_mul_ss(r, h), s));
        }
        exact_outside_fast_path(x, out);
    }

    /// Zero, subnormals, infinities, NaN, negatives and the largest floats: the correctly rounded root,
    /// and a negative number's the positive quiet NaN.
    #[inline(always)]
    fn exact_outside_fast_path(x: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            let bits = x.to_bits();
            if !(SMALLEST_NORMAL..=LARGEST_FAST).contains(&bits) {
                // In bits: a NaN's payload is not a float operation's to choose.
                let root = if bits > NEGATIVE_ZERO && !x.is_nan() {
                    QUIET_NAN
                } else {
                    x.sqrt().to_bits()
                };
                *o = f32::from_bits(root);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the start-up check passes, every input with the sign bit clear (+0 to the NaNs: all that
    /// a second moment can be) agrees with libtorch.
    #[test]
    fn agreement_on_a_spread_of_inputs_is_agreement_on_every_input() {
        if !agrees_with_libtorch() {
            return; // libtorch's own square root is used on this machine
        }
        const CHUNK: u64 = 1 << 22;
        for start in (0..1u64 << 31).step_by(CHUNK as usize) {
            let x: Vec<f32> = (start..start + CHUNK)
                .map(|b| f32::from_bits(b as u32))
                .collect();
            assert!(agrees_on(&x), "inputs {start:#x}..{:#x}", start + CHUNK);
        }
    }

    /// Eight lanes and one give the same bits, special lanes among the eight included: the check
    /// against libtorch holds whichever runs, or fails for both.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn eight_lanes_and_one_agree() {
        if !std::arch::is_x86_feature_detected!("avx") {
            return;
        }
        let x = spread_inputs();
        let (mut eight, mut one) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        // SAFETY: AVX was just detected; SSE2 is part of x86-64.
        unsafe {
            wide::sqrt_avx(&x, &mut eight);
            wide::sqrt_sse(&x, &mut one);
        }
        assert!(eight
            .iter()
            .zip(&one)
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn the_fast_path_is_not_the_correctly_rounded_root() {
        // So the start-up check tells the two apart: a libtorch whose root is correctly rounded fails it.
        let x = spread_inputs();
        let mut ours = vec![0.0; x.len()];
        sqrt_into(&x, &mut ours);
        let exact = x
            .iter()
            .zip(&ours)
            .filter(|(x, o)| x.sqrt().to_bits() == o.to_bits());
        assert!(
            exact.count() < x.len(),
            "the fast path is not the correctly rounded root"
        );
    }
}
