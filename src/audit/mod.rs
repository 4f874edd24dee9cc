//! `nsbench audit`: the harness checks its own evaluation. Three sentinel scorers (`sentinel`) run
//! through each domain's evaluation protocol, exactly as a trained cell's test evaluation runs, on the
//! embedded data sets or any suite's data, and what they must score is known in advance:
//! - the constant scorer (every score tied) must score what the metrics' tie rule gives: a random order
//!   of the ties in expectation for rec's top-K metrics, text's analogies and neighbours and vision's
//!   votes, the realistic (expected) rank for MRR and kg / graph ranks; never MRR 1;
//! - the hashed scorer (an independent uniform score per pair: each query's ranking a random order) must
//!   match the analytic chance level (`chance`) within 4 standard errors of its mean over queries;
//! - the oracle (1 for the relevant candidates) must score 1 wherever 1 is reachable (and exactly what
//!   the ties among the relevant leave elsewhere).
//!
//! Beside the checks, each data set's protocol facts: what a ranking excludes, test pairs that are also
//! training pairs or excluded from the ranking, what loading dropped (duplicates, entities unseen in
//! training), and a random ranker's expected headline metric. Any check outside its tolerance fails the
//! audit (exit 1). Each defect of this kind that nsbench once had (optimistic tie ranks, lowest-id
//! tie-breaking) fails it.

mod chance;
mod embeddings;
mod links;
mod rec;
pub mod sentinel;

use std::collections::HashMap;

use anyhow::Result;
use tch::Device;

use crate::data::Dataset;
use crate::metrics::MetricValues;
use crate::metrics::RankingExcludes;
use crate::model::ContrastiveModel;

pub use chance::Expected;

/// Seed of the hashed scorer's scores.
const HASH_SEED: u64 = 0x5eed_a0d1;
/// How many standard errors a chance-level check allows.
const CHANCE_TOLERANCE_SE: f64 = 4.0;
/// What an exact check allows (f32 scores summed in f64).
const EXACT_TOLERANCE: f64 = 1e-6;

/// One comparison of a sentinel's metric with what it must score.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// `constant`, `random` or `oracle`.
    pub scorer: &'static str,
    pub metric: String,
    pub expected: f64,
    pub observed: f64,
    /// The largest |observed − expected| that passes.
    pub tolerance: f64,
}

impl Check {
    pub fn passed(&self) -> bool {
        (self.observed - self.expected).abs() <= self.tolerance
    }
}

/// The audit of one data set.
#[derive(Debug, Clone)]
pub struct Audit {
    pub dataset: String,
    pub domain: &'static str,
    /// (fact, value) of the evaluation protocol on this data set.
    pub facts: Vec<(String, String)>,
    pub checks: Vec<Check>,
    /// What is not checked here, and why.
    pub unchecked: Vec<String>,
}

impl Audit {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }

    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed())
    }
}

/// What one sentinel must score, per metric: exact values or chance levels with their standard error.
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub exact: Vec<(String, f64)>,
    pub chance: Vec<(String, Expected)>,
}

impl Expectations {
    /// The checks of `observed` against these expectations (metrics not expected are not checked).
    pub fn checks(&self, scorer: &'static str, observed: &MetricValues) -> Vec<Check> {
        let seen: HashMap<&str, f64> = observed.iter().map(|(m, v)| (m.as_str(), *v)).collect();
        let observed = |m: &str| seen.get(m).copied().unwrap_or(f64::NAN);
        let exact = self.exact.iter().map(|(m, e)| Check {
            scorer,
            metric: m.clone(),
            expected: *e,
            observed: observed(m),
            tolerance: EXACT_TOLERANCE * e.abs().max(1.0),
        });
        let chance = self.chance.iter().map(|(m, e)| Check {
            scorer,
            metric: m.clone(),
            expected: e.mean,
            observed: observed(m),
            tolerance: CHANCE_TOLERANCE_SE * e.se + EXACT_TOLERANCE,
        });
        exact.chain(chance).collect()
    }
}

/// The three sentinels' expectations and the facts of one data set, from a domain module.
pub struct Plan {
    pub constant: Expectations,
    pub random: Expectations,
    pub oracle: Expectations,
    /// The oracle's embeddings, for protocols that read embeddings (text, vision).
    pub oracle_embedding: Option<tch::Tensor>,
    /// Which candidates the oracle scores 1, per query.
    pub oracle_relevant: crate::data::QueryItems,
    pub facts: Vec<(String, String)>,
    pub unchecked: Vec<String>,
}

/// Audits `data`'s test evaluation with rec cut-offs `ks` and what rec's test ranking excludes.
pub fn audit(data: &Dataset, ks: &[usize], exclude: RankingExcludes) -> Result<Audit> {
    let protocol = crate::domain::protocol(data, ks, true, exclude, Device::Cpu)
        .expect("every data set has a test split");
    let plan = match data.domain() {
        "rec" => rec::plan(data, ks, exclude),
        "kg" | "graph" => links::plan(data),
        "text" => embeddings::text_plan(data),
        _ => embeddings::vision_plan(data),
    };
    let n_items = data.n_items as i64;
    let evaluate = |model: &dyn ContrastiveModel| -> Result<MetricValues> {
        protocol
            .evaluate(model)
            .map_err(|e| anyhow::anyhow!("a sentinel's scores were refused: {e}"))
    };
    let mut checks = Vec::new();
    checks.extend(
        plan.constant
            .checks("constant", &evaluate(&sentinel::Constant { n_items })?),
    );
    if !plan.random.exact.is_empty() || !plan.random.chance.is_empty() {
        let hashed = sentinel::Hashed {
            n_items,
            seed: HASH_SEED,
        };
        checks.extend(plan.random.checks("random", &evaluate(&hashed)?));
    }
    let oracle = sentinel::Oracle {
        relevant: plan.oracle_relevant,
        n_items,
        embedding: plan.oracle_embedding,
    };
    checks.extend(plan.oracle.checks("oracle", &evaluate(&oracle)?));
    let mut facts = plan.facts;
    facts.extend(
        data.notes
            .iter()
            .map(|n| ("loading".to_string(), n.clone())),
    );
    Ok(Audit {
        dataset: data.name.clone(),
        domain: data.domain(),
        facts,
        checks,
        unchecked: plan.unchecked,
    })
}

/// Audits every domain of `suite` on the data its first seed's cells train on.
pub fn of_suite(suite: &crate::suite::Suite) -> Result<Vec<Audit>> {
    let mut out = Vec::new();
    for domain in &suite.domains {
        let Some(cell) = crate::suite::expand(suite)
            .into_iter()
            .find(|c| c.domain.name == domain.name)
        else {
            continue;
        };
        let data = crate::data::load(
            &domain.name,
            &domain.config.data,
            domain.config.split.as_ref(),
            cell.stream_seed("data"),
        )?;
        out.push(audit(
            &data,
            &suite.train.ks,
            suite.train.exclude_from_ranking,
        )?);
    }
    Ok(out)
}

/// The audits as Markdown: a verdict line, then per data set its facts and every check.
pub fn markdown(audits: &[Audit]) -> String {
    let failed: usize = audits.iter().map(|a| a.failures().count()).sum();
    let total: usize = audits.iter().map(|a| a.checks.len()).sum();
    let mut out = format!(
        "# nsbench audit: {}\n\n{total} checks of the evaluation on {} data set(s), {failed} outside their tolerance.\n\
         Sentinels: `constant` (every score tied: the tie rule), `random` (a hashed uniform score per pair: the \
         chance level, within {CHANCE_TOLERANCE_SE} standard errors), `oracle` (1 for the relevant: 1 where reachable).\n\n",
        if failed == 0 { "passed" } else { "FAILED" },
        audits.len()
    );
    for a in audits {
        out.push_str(&format!(
            "## {} ({}): {}\n\n",
            a.dataset,
            a.domain,
            if a.passed() { "passed" } else { "FAILED" }
        ));
        for (fact, value) in &a.facts {
            out.push_str(&format!("- {fact}: {value}\n"));
        }
        for u in &a.unchecked {
            out.push_str(&format!("- not checked: {u}\n"));
        }
        out.push_str(
            "\n| scorer | metric | expected | observed | tolerance | verdict |\n|---|---|---:|---:|---:|---|\n",
        );
        for c in &a.checks {
            out.push_str(&format!(
                "| {} | {} | {:.6} | {:.6} | {:.1e} | {} |\n",
                c.scorer,
                c.metric,
                c.expected,
                c.observed,
                c.tolerance,
                if c.passed() { "ok" } else { "**DEVIATES**" }
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_optimistic_tie_rule_fails_the_audit() {
        // What an evaluation that ranks the constant scorer's tied targets first would report.
        let must = Expectations {
            exact: vec![("mrr".into(), 11.0 / 1001.0)],
            chance: vec![(
                "recall@20".into(),
                Expected {
                    mean: 0.02,
                    se: 0.001,
                },
            )],
        };
        let honest = must.checks(
            "constant",
            &vec![("mrr".into(), 11.0 / 1001.0), ("recall@20".into(), 0.021)],
        );
        assert!(honest.iter().all(Check::passed), "{honest:?}");
        let planted = must.checks(
            "constant",
            &vec![("mrr".into(), 1.0), ("recall@20".into(), 0.037)],
        );
        assert!(planted.iter().all(|c| !c.passed()), "{planted:?}");
        // A metric the evaluation does not report is a deviation, not a pass.
        assert!(!must.checks("constant", &Vec::new())[0].passed());
    }

    #[test]
    fn every_embedded_data_set_passes_its_audit() {
        for data in crate::data::embedded().unwrap() {
            let a = audit(&data, &[10, 20], RankingExcludes::default()).unwrap();
            assert!(a.passed(), "{}", markdown(std::slice::from_ref(&a)));
            assert!(
                a.checks.len() >= 3,
                "{}: {} checks",
                a.dataset,
                a.checks.len()
            );
        }
    }
}
