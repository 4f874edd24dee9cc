//! Bakes libtorch's library directory into the binaries' run path (so `cargo run`, `cargo test` and the
//! built `nsbench` find libtorch without LD_LIBRARY_PATH) and records provenance: the git revision and
//! the libtorch version every result row carries.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let mut libtorch_version = "unknown".to_string();
    if let Ok(libtorch) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{libtorch}/lib");
        for header in [
            "include/torch/headeronly/version.h",
            "include/torch/csrc/api/include/torch/version.h",
        ] {
            let header = Path::new(&libtorch).join(header);
            println!("cargo:rerun-if-changed={}", header.display());
            if let Some(v) = std::fs::read_to_string(&header)
                .ok()
                .and_then(|t| parse_version(&t))
            {
                libtorch_version = v;
                break;
            }
        }
    }
    println!("cargo:rustc-env=NSBENCH_LIBTORCH_VERSION={libtorch_version}");

    for f in [".git/HEAD", ".git/index"] {
        if Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let rev = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(rev) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{rev}-dirty")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    };
    println!("cargo:rustc-env=NSBENCH_GIT_REV={rev}");
}

/// `MAJOR.MINOR.PATCH` from the TORCH_VERSION_* defines of a libtorch version header.
fn parse_version(header: &str) -> Option<String> {
    let part = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(&format!("#define TORCH_VERSION_{name} ")))
            .map(|v| v.trim().to_string())
    };
    Some(format!(
        "{}.{}.{}",
        part("MAJOR")?,
        part("MINOR")?,
        part("PATCH")?
    ))
}
