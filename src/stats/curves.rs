//! Statistics of training curves: stability (how rough a validation curve is after its peak) and
//! budget-normalised quality (the metric at an equal budget of seconds or negatives, and the first time
//! a curve reaches a target), read off (budget, value) points by linear interpolation.

/// Total variation of `values` after their maximum, divided by the range of the whole curve: 0 for a
/// curve flat after its peak (or still rising), larger the more it oscillates; a steady decline of d
/// counts d / range. NaN for a flat curve.
pub fn roughness_after_peak(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let (peak, _) = values
        .iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        });
    let (min, max) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let range = max - min;
    if range <= 0.0 {
        return f64::NAN;
    }
    values[peak..]
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .sum::<f64>()
        / range
}

/// The curve's value at `budget` (points sorted by budget, linear between them); None before the first
/// point or after the last (a curve is not extrapolated).
pub fn value_at(points: &[(f64, f64)], budget: f64) -> Option<f64> {
    let first = points.first()?;
    if budget < first.0 {
        return None;
    }
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if budget <= x1 {
            if x1 == x0 {
                return Some(y1);
            }
            return Some(y0 + (budget - x0) / (x1 - x0) * (y1 - y0));
        }
    }
    let last = points.last()?;
    (budget == last.0).then_some(last.1)
}

/// The first budget at which the curve reaches `target` (linear between points); None if it never does.
pub fn time_to_target(points: &[(f64, f64)], target: f64) -> Option<f64> {
    let first = points.first()?;
    if first.1 >= target {
        return Some(first.0);
    }
    points.windows(2).find_map(|w| {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        (y1 >= target).then(|| x0 + (target - y0) / (y1 - y0) * (x1 - x0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hand_computed_curves() {
        // Peak 0.5 at index 2, then 0.3, 0.5, 0.4: variation 0.2 + 0.2 + 0.1 over a range of 0.4.
        assert!((roughness_after_peak(&[0.1, 0.3, 0.5, 0.3, 0.5, 0.4]) - 1.25).abs() < 1e-12);
        assert_eq!(
            roughness_after_peak(&[0.1, 0.2, 0.3]),
            0.0,
            "still rising: nothing after the peak"
        );
        let curve = [(1.0, 0.1), (2.0, 0.3), (4.0, 0.5)];
        assert_eq!(value_at(&curve, 3.0), Some(0.4));
        assert_eq!(value_at(&curve, 0.5), None);
        assert_eq!(value_at(&curve, 5.0), None);
        assert_eq!(time_to_target(&curve, 0.2), Some(1.5));
        assert_eq!(time_to_target(&curve, 0.6), None);
    }

    proptest! {
        #[test]
        fn interpolation_stays_between_the_neighbouring_points(
            ys in proptest::collection::vec(0f64..1.0, 2..10),
            t in 0f64..1.0,
        ) {
            let points: Vec<(f64, f64)> = ys.iter().enumerate().map(|(i, &y)| (i as f64, y)).collect();
            let budget = t * (points.len() - 1) as f64;
            let v = value_at(&points, budget).unwrap();
            let i = (budget.floor() as usize).min(points.len() - 2);
            let (a, b) = (points[i].1, points[i + 1].1);
            prop_assert!(v >= a.min(b) - 1e-12 && v <= a.max(b) + 1e-12);
            if let Some(x) = time_to_target(&points, v) {
                prop_assert!(x <= budget + 1e-9, "reached {v} by {budget} at the latest");
            }
        }
    }
}
