//! The self-contained HTML report: every table, every figure inline (SVG as data URIs), the resolved
//! suite, the provenance of the results and the failed cells, in one file that opens anywhere offline.

use anyhow::Result;
use std::path::PathBuf;

use super::table::{html_escape, Table};
use super::Inputs;
use crate::store;

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1200px;margin:2em auto;\
padding:0 1em;color:#111;line-height:1.45}h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}\
h3{font-size:1.1em;margin-top:1.6em}table{border-collapse:collapse;margin:0.6em 0;font-size:0.9em}\
th,td{padding:0.25em 0.6em;border-bottom:1px solid #e3e3e3}thead th{border-bottom:2px solid #333}\
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}figure{margin:1.2em 0}\
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:0.9em;color:#444}\
pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;font-size:0.85em}nav li{margin:0.1em 0}";

/// The page. `sections`: (heading, tables); `figures`: the files drawn (the PNGs are embedded).
pub fn page(
    inputs: &Inputs,
    sections: &[(String, Vec<Table>)],
    paper: &[(String, Table)],
    figures: &[PathBuf],
    names: &[String],
    audit_verdict: &str,
) -> Result<String> {
    let mut body = String::new();
    let mut nav = String::from("<nav><ul>");
    let anchor = |i: usize| format!("s{i}");
    for (i, (heading, tables)) in sections.iter().enumerate() {
        nav.push_str(&format!(
            "<li><a href=\"#{}\">{}</a></li>",
            anchor(i),
            html_escape(heading)
        ));
        body.push_str(&format!(
            "<h2 id=\"{}\">{}</h2>\n",
            anchor(i),
            html_escape(heading)
        ));
        for t in tables {
            body.push_str(&t.html());
        }
    }
    nav.push_str("<li><a href=\"#paper\">Paper tables</a></li><li><a href=\"#figures\">Figures</a></li>\
                   <li><a href=\"#failures\">Failed cells</a></li><li><a href=\"#provenance\">Provenance and suites</a></li></ul></nav>");
    body.push_str("<h2 id=\"paper\">Paper tables</h2>\n<p>The tables of <code>tables/&lt;domain&gt;.tex</code> \
                   (booktabs; bold: a column's best only where it beats every other row, paired by seed; † better or worse than the reference, paired by seed, after Holm's correction).</p>\n");
    for (_, t) in paper {
        body.push_str(&t.html());
    }
    body.push_str("<h2 id=\"figures\">Figures</h2>\n");
    // The SVGs: a third of the PNGs' bytes, and sharp at any zoom.
    for svg in figures
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "svg"))
    {
        let bytes = std::fs::read(svg)?;
        let name = svg
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        body.push_str(&format!(
            "<figure><img alt=\"{0}\" src=\"data:image/svg+xml;base64,{1}\"><figcaption>{0} \
             (<code>plots/{0}.svg</code> and <code>.png</code>)</figcaption></figure>\n",
            html_escape(&name),
            base64(&bytes)
        ));
    }
    body.push_str("<h2 id=\"failures\">Failed cells</h2>\n");
    if inputs.failures.is_empty() {
        body.push_str("<p>None: every cell of the plan finished.</p>\n");
    } else {
        let mut t = Table::new(
            format!("{} failed cells", inputs.failures.len()),
            "They have no rows in the tables above; `failures.parquet` has them.",
            &["cell", "sampler", "k", "seed", "why"],
        );
        t.numeric = vec![false, false, true, true, false];
        for f in &inputs.failures {
            t.rows.push(vec![
                f.run_id.as_str().into(),
                f.sampler.as_str().into(),
                crate::suite::ratio_label(f.ratio).into(),
                f.seed.to_string().into(),
                super::describe_failure(f).into(),
            ]);
        }
        body.push_str(&t.html());
    }
    body.push_str("<h2 id=\"provenance\">Provenance and suites</h2>\n");
    for dir in &inputs.dirs {
        body.push_str(&format!(
            "<h3>{}</h3>\n<table>",
            html_escape(&dir.display().to_string())
        ));
        for (name, values) in store::read_provenance(dir)? {
            body.push_str(&format!(
                "<tr><th class=\"txt\">{}</th><td class=\"txt\">{}</td></tr>",
                html_escape(&name),
                html_escape(&values.join(", "))
            ));
        }
        body.push_str("</table>\n");
        if let Ok(suite) = std::fs::read_to_string(dir.join("suite.resolved.toml")) {
            body.push_str(&format!(
                "<details><summary>The resolved suite (<code>suite.resolved.toml</code>)</summary><pre>{}</pre></details>\n",
                html_escape(&suite)
            ));
        }
    }
    let title = format!("nsbench report: {}", names.join(", "));
    // The script records how many figures decoded, for readers and for the headless-browser test.
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{STYLE}</style></head>\n<body>\n\
         <h1>{0}</h1>\n<p>Effectiveness with seed and query-paired significance, stability, data independence and \
         budget-normalised efficiency of every sampler; {1} figures.</p>\n<p id=\"audit-verdict\"><strong>{2}</strong></p>\n{nav}\n{body}\n\
         <script>window.addEventListener('load',function(){{var n=0;for(var i=0;i<document.images.length;i++)\
         {{var m=document.images[i];if(m.complete&&m.naturalWidth>0)n++;}}document.body.setAttribute('data-figures-decoded',n);}});\
         </script>\n</body></html>\n",
        html_escape(&title),
        figures
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "svg"))
            .count(),
        html_escape(audit_verdict)
    ))
}

/// Standard base64 with padding (RFC 4648).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc_4648_examples() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64(raw.as_bytes()), encoded);
        }
    }
}
