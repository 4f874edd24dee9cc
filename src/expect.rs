//! Published numbers as bands: a suite's `[[expect]]` entries (data set, sampler, k, metric, value and
//! a band) checked against its results' seed means. `nsbench check DIR --expect` fails when a seed mean
//! falls outside its band or the results lack it; the report shows every band beside what the run got.

use crate::stats::Summary;
use crate::store::ResultRow;
use crate::suite::Expect;

/// One expectation and what the results hold for it.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub expect: Expect,
    /// Seed values found (empty: the results lack it).
    pub n: usize,
    pub mean: f64,
    /// The band [lower, upper] the mean must fall in.
    pub lower: f64,
    pub upper: f64,
    /// Why it cannot be judged (no rows, several k, a band in seeds with one seed), if so.
    pub problem: Option<String>,
}

impl Outcome {
    pub fn inside(&self) -> bool {
        self.problem.is_none() && self.lower <= self.mean && self.mean <= self.upper
    }
}

/// Each expectation judged on `rows`.
pub fn evaluate(expects: &[Expect], rows: &[ResultRow]) -> Vec<Outcome> {
    expects.iter().map(|e| judge(e, rows)).collect()
}

fn judge(e: &Expect, rows: &[ResultRow]) -> Outcome {
    let of: Vec<&ResultRow> = rows
        .iter()
        .filter(|r| r.dataset == e.dataset && r.sampler == e.sampler && r.metric == e.metric)
        .filter(|r| e.k.is_none_or(|k| r.ratio == k))
        .collect();
    let values: Vec<f64> = of.iter().map(|r| r.value).collect();
    let s = Summary::of(&values);
    let mut out = Outcome {
        expect: e.clone(),
        n: s.n,
        mean: s.mean,
        lower: f64::NAN,
        upper: f64::NAN,
        problem: None,
    };
    let mut ks: Vec<u32> = of.iter().map(|r| r.ratio).collect();
    ks.sort_unstable();
    ks.dedup();
    let half = match (e.tolerance, e.seeds) {
        (Some(t), _) => Some(t),
        (None, Some(z)) if s.n >= 2 => Some(z * s.std / (s.n as f64).sqrt()),
        _ => None,
    };
    out.problem = if of.is_empty() {
        Some("not in the results".into())
    } else if ks.len() > 1 {
        Some(format!("ran at several k ({ks:?}): name one with `k`"))
    } else if half.is_none() {
        Some("a band in standard errors needs two seeds or more".into())
    } else {
        None
    };
    if let Some(h) = half {
        (out.lower, out.upper) = (e.value - h, e.value + h);
    }
    out
}

/// The outcomes as a Markdown table with a verdict line.
pub fn markdown(outcomes: &[Outcome]) -> String {
    let outside = outcomes.iter().filter(|o| !o.inside()).count();
    let mut out = format!(
        "## nsbench expected values: {}\n\n{} of {} published values reproduced within their bands.\n\n\
         | data set | sampler | k | metric | published | band | seeds | this run | verdict | source |\n\
         |---|---|---:|---|---:|---|---:|---:|---|---|\n",
        if outside == 0 { "passed" } else { "FAILED" },
        outcomes.len() - outside,
        outcomes.len()
    );
    for o in outcomes {
        let e = &o.expect;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.4} | [{:.4}, {:.4}] | {} | {} | {} | {} |\n",
            e.dataset,
            e.sampler,
            e.k.map_or("–".into(), |k| k.to_string()),
            e.metric,
            e.value,
            o.lower,
            o.upper,
            o.n,
            if o.n > 0 {
                format!("{:.4}", o.mean)
            } else {
                "–".into()
            },
            match &o.problem {
                Some(p) => format!("**FAILED**: {p}"),
                None if o.inside() => "inside".into(),
                None => "**OUTSIDE**".into(),
            },
            e.source.as_deref().unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, value: f64) -> ResultRow {
        ResultRow {
            run_id: format!("rec-ml-uniform-r1-s{seed}"),
            dataset: "ml".into(),
            sampler: "uniform".into(),
            kind: "uniform".into(),
            loss_suffix: String::new(),
            ratio: 1,
            seed,
            category: "effectiveness".into(),
            metric: "recall@20".into(),
            value,
        }
    }

    fn expect(value: f64, tolerance: Option<f64>, seeds: Option<f64>) -> Expect {
        Expect {
            dataset: "ml".into(),
            sampler: "uniform".into(),
            k: None,
            metric: "recall@20".into(),
            value,
            tolerance,
            seeds,
            source: None,
        }
    }

    #[test]
    fn a_seed_mean_inside_its_band_passes_and_outside_or_missing_fails() {
        let rows = [row(0, 0.130), row(1, 0.132), row(2, 0.134)];
        let o = evaluate(
            &[
                expect(0.1291, Some(0.005), None),
                expect(0.120, Some(0.005), None),
                // ± 3 standard errors of the mean (sd 0.002, 3 seeds: ± 0.0035).
                expect(0.1291, None, Some(3.0)),
                expect(0.125, None, Some(3.0)),
            ],
            &rows,
        );
        let inside: Vec<bool> = o.iter().map(Outcome::inside).collect();
        assert_eq!(inside, vec![true, false, true, false]);
        let mut missing = expect(0.1, Some(0.1), None);
        missing.metric = "ndcg@20".into();
        let o = evaluate(&[missing], &rows);
        assert!(!o[0].inside() && markdown(&o).contains("not in the results"));
    }
}
