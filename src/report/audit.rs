//! The report's checks of itself: `nsbench audit` run on the data of every input directory's resolved
//! suite (its verdict at the top of the page, each data set's checks in a table), and the suites'
//! published values (`[[expect]]`) beside what the run got.

use std::path::PathBuf;

use super::table::Table;
use crate::audit::Audit;

/// The verdict line and the tables of the audits of `dirs`' data.
pub fn section(dirs: &[PathBuf]) -> (String, Vec<Table>) {
    let mut audits: Vec<Audit> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    for dir in dirs {
        let suite = crate::suite::load(&dir.join("suite.resolved.toml"));
        match suite
            .map_err(anyhow::Error::from)
            .and_then(|s| crate::audit::of_suite(&s))
        {
            Ok(a) => audits.extend(a),
            Err(e) => missing.push(format!("{}: not audited ({e:#})", dir.display())),
        }
    }
    let deviations: usize = audits.iter().map(|a| a.failures().count()).sum();
    let checks: usize = audits.iter().map(|a| a.checks.len()).sum();
    let verdict = if audits.is_empty() {
        "Audit of the evaluation: not run (no data set could be loaded).".to_string()
    } else if deviations == 0 {
        format!(
            "Audit of the evaluation: passed ({checks} checks of sentinel scorers on {} data set(s)).",
            audits.len()
        )
    } else {
        format!(
            "Audit of the evaluation: FAILED ({deviations} of {checks} checks deviate): the metrics below \
             may be wrong."
        )
    };
    let mut summary = Table::new(
        "The audit's verdict per data set",
        "`nsbench audit` on each data set: a constant scorer (every score tied) must score what the tie rule \
         gives, a random one (a hashed uniform score per pair) the chance level within 4 standard errors, an \
         oracle 1 where 1 is reachable; through the very evaluation the cells' test metrics came from.",
        &["data set", "domain", "checks", "deviations", "verdict"],
    );
    summary.numeric = vec![false, false, true, true, false];
    for a in &audits {
        summary.rows.push(vec![
            a.dataset.as_str().into(),
            a.domain.into(),
            a.checks.len().to_string().into(),
            a.failures().count().to_string().into(),
            if a.passed() { "passed" } else { "FAILED" }.into(),
        ]);
    }
    summary.footer = missing;
    let mut tables = vec![summary];
    for a in &audits {
        let facts: Vec<String> = a
            .facts
            .iter()
            .map(|(f, v)| format!("{f}: {v}"))
            .chain(a.unchecked.iter().map(|u| format!("not checked: {u}")))
            .collect();
        let mut t = Table::new(
            format!("{}: audit", a.dataset),
            facts.join("; "),
            &[
                "scorer",
                "metric",
                "expected",
                "observed",
                "tolerance",
                "verdict",
            ],
        );
        t.numeric = vec![false, false, true, true, true, false];
        for c in &a.checks {
            t.rows.push(vec![
                c.scorer.into(),
                c.metric.as_str().into(),
                format!("{:.6}", c.expected).into(),
                format!("{:.6}", c.observed).into(),
                format!("{:.1e}", c.tolerance).into(),
                if c.passed() { "ok" } else { "DEVIATES" }.into(),
            ]);
        }
        tables.push(t);
    }
    (verdict, tables)
}

/// The published values of `dirs`' resolved suites against their results, one table (None: no suite
/// declares any).
pub fn expectations(dirs: &[PathBuf]) -> Option<Table> {
    let mut outcomes = Vec::new();
    for dir in dirs {
        let Ok(suite) = crate::suite::load(&dir.join("suite.resolved.toml")) else {
            continue;
        };
        if let Ok(rows) = crate::store::read_results(dir) {
            outcomes.extend(crate::expect::evaluate(&suite.expects, &rows));
        }
    }
    if outcomes.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Published values",
        "Each `[[expect]]` of the suite: the published value, its band (an absolute tolerance, or standard errors \
         of the seed mean), the seed mean this run got, and whether it falls inside (`nsbench check DIR --expect` \
         fails outside).",
        &["data set", "sampler", "k", "metric", "published", "band", "seeds", "this run", "verdict", "source"],
    );
    t.numeric = vec![
        false, false, true, false, true, false, true, true, false, false,
    ];
    for o in &outcomes {
        let e = &o.expect;
        t.rows.push(vec![
            e.dataset.as_str().into(),
            e.sampler.as_str().into(),
            e.k.map_or("–".into(), |k| k.to_string()).into(),
            e.metric.as_str().into(),
            format!("{:.4}", e.value).into(),
            format!("[{:.4}, {:.4}]", o.lower, o.upper).into(),
            o.n.to_string().into(),
            if o.n > 0 {
                format!("{:.4}", o.mean)
            } else {
                "–".into()
            }
            .into(),
            match &o.problem {
                Some(p) => format!("FAILED: {p}"),
                None if o.inside() => "inside".into(),
                None => "OUTSIDE".into(),
            }
            .into(),
            e.source.clone().unwrap_or_default().into(),
        ]);
    }
    Some(t)
}
