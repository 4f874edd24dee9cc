//! One table, three renderings: Markdown (report.md, the CI summary), LaTeX (booktabs, ready to
//! `\input`) and HTML (the self-contained report). Sections compute a `Table` once; nothing downstream
//! re-parses text.

/// One cell: its text, whether it is the best of its column (bold) and whether it differs significantly
/// from the reference (a dagger).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub text: String,
    pub bold: bool,
    pub dagger: bool,
}

impl Cell {
    pub fn new(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            ..Cell::default()
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell::new(text)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Heading of the table's section.
    pub title: String,
    /// What the table shows and how to read it (plain text; `code` in backticks).
    pub note: String,
    pub header: Vec<String>,
    /// Columns aligned right (numbers); the others left.
    pub numeric: Vec<bool>,
    pub rows: Vec<Vec<Cell>>,
    /// Lines after the table (plain text).
    pub footer: Vec<String>,
}

impl Table {
    pub fn new(title: impl Into<String>, note: impl Into<String>, header: &[&str]) -> Table {
        Table {
            title: title.into(),
            note: note.into(),
            header: header.iter().map(|h| h.to_string()).collect(),
            numeric: header.iter().enumerate().map(|(i, _)| i > 0).collect(),
            rows: Vec::new(),
            footer: Vec::new(),
        }
    }

    pub fn markdown(&self, level: usize) -> String {
        let mut out = format!("{} {}\n\n", "#".repeat(level), self.title);
        if !self.note.is_empty() {
            out.push_str(&self.note);
            out.push_str("\n\n");
        }
        out.push_str(&format!("| {} |\n|", self.header.join(" | ")));
        for &n in &self.numeric {
            out.push_str(if n { "---:|" } else { "---|" });
        }
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    let text = c.text.replace('|', "\\|");
                    let text = if c.bold { format!("**{text}**") } else { text };
                    if c.dagger {
                        format!("{text} †")
                    } else {
                        text
                    }
                })
                .collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        for line in &self.footer {
            out.push('\n');
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
        out
    }

    pub fn html(&self) -> String {
        let mut out = format!("<section>\n<h3>{}</h3>\n", html_escape(&self.title));
        if !self.note.is_empty() {
            out.push_str(&format!("<p>{}</p>\n", html_inline(&self.note)));
        }
        out.push_str("<table>\n<thead><tr>");
        for (h, &n) in self.header.iter().zip(&self.numeric) {
            out.push_str(&format!(
                "<th class=\"{}\">{}</th>",
                if n { "num" } else { "txt" },
                html_escape(h)
            ));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, c) in row.iter().enumerate() {
                let mut text = html_escape(&c.text);
                if c.bold {
                    text = format!("<b>{text}</b>");
                }
                if c.dagger {
                    text.push_str("<sup>†</sup>");
                }
                let class = if self.numeric.get(i).copied().unwrap_or(false) {
                    "num"
                } else {
                    "txt"
                };
                out.push_str(&format!("<td class=\"{class}\">{text}</td>"));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n");
        for line in &self.footer {
            out.push_str(&format!("<p>{}</p>\n", html_inline(line)));
        }
        out.push_str("</section>\n");
        out
    }

    /// A `table` float with booktabs rules; `label` becomes `\label{tab:<label>}`.
    pub fn latex(&self, label: &str) -> String {
        let spec: String = self
            .numeric
            .iter()
            .map(|&n| if n { 'r' } else { 'l' })
            .collect();
        // Four or more columns of `mean ± std` do not fit one column of a two-column page: such a table
        // spans the page (`table*`; the same as `table` in one-column layouts).
        let spreads = self.rows.iter().flatten().any(|c| c.text.contains(" ± "));
        let env = if spreads && self.numeric.iter().filter(|&&n| n).count() >= 4 {
            "table*"
        } else {
            "table"
        };
        let mut out = format!(
            "\\begin{{{env}}}[t]\n\\centering\n\\small\n\\setlength{{\\tabcolsep}}{{4pt}}\n\\caption{{{}}}\n\\label{{tab:{label}}}\n\\begin{{tabular}}{{{spec}}}\n\\toprule\n",
            latex_escape(&self.title)
        );
        let header: Vec<String> = self.header.iter().map(|h| latex_escape(h)).collect();
        out.push_str(&format!("{} \\\\\n\\midrule\n", header.join(" & ")));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| {
                    // `mean ± std` as mean with a subscript spread: narrow enough for a column.
                    let mut text = match c.text.split_once(" ± ") {
                        Some((mean, spread)) if c.bold => format!(
                            "\\textbf{{{}}}\\textsubscript{{$\\pm${}}}",
                            latex_escape(mean),
                            latex_escape(spread)
                        ),
                        Some((mean, spread)) => format!(
                            "{}\\textsubscript{{$\\pm${}}}",
                            latex_escape(mean),
                            latex_escape(spread)
                        ),
                        None if c.bold => format!("\\textbf{{{}}}", latex_escape(&c.text)),
                        None => latex_escape(&c.text),
                    };
                    // The dagger sticks out to the right, so the numbers of a column stay aligned.
                    if c.dagger {
                        text.push_str("\\rlap{$^\\dagger$}");
                    }
                    text
                })
                .collect();
            out.push_str(&format!("{} \\\\\n", cells.join(" & ")));
        }
        out.push_str("\\bottomrule\n\\end{tabular}\n");
        if !self.note.is_empty() {
            out.push_str(&format!(
                "\\par\\smallskip\\footnotesize {}\n",
                latex_escape(&self.note)
            ));
        }
        out.push_str(&format!("\\end{{{env}}}\n"));
        out
    }
}

pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escaped text with `code` spans.
fn html_inline(text: &str) -> String {
    html_escape(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// Text safe in LaTeX's text mode, with the symbols the tables use written as math.
pub fn latex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '`' => {}
            '±' => out.push_str("$\\pm$"),
            'Δ' => out.push_str("$\\Delta$"),
            'χ' => out.push_str("$\\chi$"),
            '²' => out.push_str("$^2$"),
            '≥' => out.push_str("$\\geq$"),
            '≤' => out.push_str("$\\leq$"),
            '†' => out.push_str("$^\\dagger$"),
            '×' => out.push_str("$\\times$"),
            '−' => out.push('-'),
            '–' => out.push_str("--"),
            'τ' => out.push_str("$\\tau$"),
            'ρ' => out.push_str("$\\rho$"),
            'α' => out.push_str("$\\alpha$"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(
            "d: ndcg@20",
            "Mean ± std; `uniform` is the reference.",
            &["sampler", "k = 1"],
        );
        t.rows
            .push(vec!["uniform".into(), "0.2000 ± 0.0010".into()]);
        t.rows.push(vec![
            "dns_x".into(),
            Cell {
                text: "0.2500 ± 0.0020".into(),
                dagger: true,
                ..Cell::default()
            },
        ]);
        t.rows[1][1].bold = true;
        t
    }

    #[test]
    fn a_bold_cell_is_bold_in_every_rendering() {
        let t = sample();
        assert!(t.rows[1][1].bold && !t.rows[0][1].bold);
        let md = t.markdown(2);
        assert!(md.contains("| dns_x | **0.2500 ± 0.0020** † |"), "{md}");
        assert!(md.contains("|---|---:|"), "{md}");
        let tex = t.latex("d");
        assert!(
            tex.contains("\\toprule") && tex.contains("\\bottomrule"),
            "{tex}"
        );
        assert!(
            tex.contains(
                "dns\\_x & \\textbf{0.2500}\\textsubscript{$\\pm$0.0020}\\rlap{$^\\dagger$} \\\\"
            ),
            "{tex}"
        );
        let html = t.html();
        assert!(
            html.contains("<b>0.2500 ± 0.0020</b><sup>†</sup>"),
            "{html}"
        );
        assert!(html.contains("<code>uniform</code>"), "{html}");
    }
}
