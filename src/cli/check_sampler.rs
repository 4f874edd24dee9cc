//! `nsbench check-sampler`: the sampler contract every built-in passes, run on one sampler in every
//! domain it runs in, with a verdict (exit 0 kept, 1 broken, 2 bad input).

use anyhow::Result;

use crate::error::SamplerError;
use crate::sampler::{contract, SamplerConfig};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A sampler kind (`dns`), a `[[sampler]]` table inline ('{ kind = "dns", candidates = 20 }'), or a
    /// Python file (`my_sampler.py`, with --class).
    sampler: String,
    /// The class of a Python file.
    #[arg(long, default_value = "Sampler")]
    class: String,
    /// Only this domain (rec, kg, graph, text, vision) [default: every domain the sampler runs in].
    #[arg(long)]
    domain: Option<String>,
    /// Negatives per positive.
    #[arg(long, default_value_t = 8)]
    k: usize,
}

pub fn execute(args: Args) -> Result<()> {
    let config = if args.sampler.ends_with(".py") {
        let c = crate::sampler::PythonConfig {
            path: args.sampler.clone().into(),
            class: args.class.clone(),
            ..Default::default()
        };
        SamplerConfig::Python(c.resolved(std::path::Path::new(".")).map_err(|message| {
            SamplerError::Invalid {
                sampler: "python",
                message,
            }
        })?)
    } else {
        parse(&args.sampler)?
    };
    let info = config.info();
    let invalid = |message: String| SamplerError::Invalid {
        sampler: info.kind,
        message,
    };
    if let Some((key, message)) = config.problems().into_iter().next() {
        return Err(invalid(format!("{key}: {message}")).into());
    }
    if let Some(d) = args.domain.as_deref().filter(|d| !info.domains.contains(d)) {
        return Err(invalid(format!(
            "runs in {} only, not in {d}",
            info.domains.join(", ")
        ))
        .into());
    }
    if args.k == 0 {
        return Err(invalid("--k must be 1 or more".into()).into());
    }
    let mut text = format!(
        "## nsbench check-sampler: {}\n\n| domain | promise | verdict |\n|---|---|---|\n",
        config.params_tag()
    );
    let mut broken = 0;
    let domains: Vec<&str> = match args.domain.as_deref() {
        Some(d) => vec![d],
        None => info.domains.to_vec(),
    };
    for (domain, p) in contract::check_embedded(&config, &domains, args.k)? {
        let verdict = match &p.broken {
            None => "kept".to_string(),
            Some(how) => {
                broken += 1;
                format!(
                    "**broken**: {}",
                    how.replace('|', "\\|").replace('\n', " ⏎ ")
                )
            }
        };
        text.push_str(&format!("| {domain} | {} | {verdict} |\n", p.name));
    }
    print!("{text}");
    if broken > 0 {
        eprintln!("{broken} promises broken: the sampler cannot enter a grid");
        std::process::exit(1);
    }
    println!("\nevery promise kept");
    Ok(())
}

/// A kind name, or an inline `[[sampler]]` table.
fn parse(text: &str) -> Result<SamplerConfig> {
    let source = if text.trim_start().starts_with('{') {
        format!("sampler = {text}")
    } else {
        format!("sampler = {{ kind = {text:?} }}")
    };
    #[derive(serde::Deserialize)]
    struct One {
        sampler: SamplerConfig,
    }
    toml::from_str::<One>(&source)
        .map(|o| o.sampler)
        .map_err(|e| {
            SamplerError::Invalid {
                sampler: "check-sampler",
                message: format!(
                    "{text:?} is not a sampler: {}; `nsbench list samplers` lists the kinds",
                    e.message()
                ),
            }
            .into()
        })
}
