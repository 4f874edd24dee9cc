//! The report's own figures (SVG + PNG, the looks of `plots`): the critical-difference diagram across
//! data sets (Demšar 2006), and per data set a stability strip plot (one dot per seed), the Pareto front
//! of quality against training time, and the hardness against false-negative-rate trade-off.

use anyhow::Result;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use super::plots::{
    self, err, marker_at, sampler_looks, text, Look, Painter, COLUMN_WIDTH, PAGE_WIDTH, TEXT, TITLE,
};
use super::significance::CdDiagram;
use super::views::{DatasetView, Key};
use crate::suite::ratio_label;

/// Every report figure, in the order the HTML report shows them.
/// `decided`: the data sets where some comparison with the reference is better or worse: only there is
/// a Pareto front drawn (elsewhere the samplers are within noise of each other, and a front would
/// order noise).
pub fn render_report_figures(
    views: &[DatasetView],
    cds: &[CdDiagram],
    decided: &[String],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let samplers: Vec<String> = {
        let mut all: Vec<String> = Vec::new();
        for v in views {
            for s in v.samplers() {
                if !all.contains(&s) {
                    all.push(s);
                }
            }
        }
        all
    };
    let kinds: plots::Kinds = views
        .iter()
        .flat_map(|v| v.kinds.iter().map(|(a, b)| (a.clone(), b.clone())))
        .collect();
    let looks = sampler_looks(&samplers, &kinds);
    let mut files = Vec::new();
    for cd in cds {
        let height = 200 + 32 * cd.ranks.len().div_ceil(2) as u32 + 16 * cd.groups.len() as u32;
        let name = match cd.test {
            "Nemenyi" => "critical-difference",
            _ => "critical-difference-wilcoxon-holm",
        };
        files.extend(plots::save_with(dir, name, (PAGE_WIDTH, height), cd)?);
    }
    for view in views {
        let name = &view.name;
        let strip = Strip::of(view, &looks);
        let height = 130 + 34 * strip.rows.len() as u32;
        files.extend(plots::save_with(
            dir,
            &format!("{name}-stability-strip"),
            (COLUMN_WIDTH, height),
            &strip,
        )?);
        let front = decided.contains(name);
        let scatters = [
            (
                "pareto-time",
                if front {
                    format!(
                        "{name}: {} against training time (Pareto front dashed)",
                        view.metric
                    )
                } else {
                    format!(
                        "{name}: {} against training time (no front: no sampler differs from the reference)",
                        view.metric
                    )
                },
                "training seconds per cell",
                view.metric.as_str(),
                "train_seconds",
                view.metric.as_str(),
                Some(front),
            ),
            (
                "hardness-vs-fn-rate",
                format!("{name}: harder negatives, more false negatives?"),
                "hardness (mean percentile of the negatives among the query's candidates)",
                "false-negative rate (held-out positives drawn as negatives)",
                "hardness",
                "fn_rate",
                None,
            ),
        ];
        for (file, title, x_label, y_label, x, y, pareto) in scatters {
            let scatter = Scatter::new(
                view,
                &looks,
                title,
                (x_label, y_label),
                (&view.means_of(x), &view.means_of(y)),
                pareto,
            );
            if !scatter.points.is_empty() {
                files.extend(plots::save_with(
                    dir,
                    &format!("{name}-{file}"),
                    (PAGE_WIDTH, 820),
                    &scatter,
                )?);
            }
        }
    }
    Ok(files)
}

impl Painter for CdDiagram {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (width, _) = root.dim_in_pixel();
        let k = self.ranks.len().max(2);
        let (left, right, axis_y) = (300i32, width as i32 - 300, 110i32);
        let x_of =
            |rank: f64| left + ((rank - 1.0) / (k as f64 - 1.0) * (right - left) as f64) as i32;
        let line = BLACK.stroke_width(1);
        root.draw(&PathElement::new(
            vec![(left, axis_y), (right, axis_y)],
            line,
        ))
        .map_err(err)?;
        for r in 1..=k {
            let x = x_of(r as f64);
            root.draw(&PathElement::new(vec![(x, axis_y - 6), (x, axis_y)], line))
                .map_err(err)?;
            root.draw(&Text::new(
                r.to_string(),
                (x, axis_y - 9),
                text(TEXT, HPos::Center, VPos::Bottom),
            ))
            .map_err(err)?;
        }
        if self.cd.is_none() {
            root.draw(&Text::new(
                if self.test == "Nemenyi" {
                    format!("no Nemenyi critical difference at α = {:.2}", self.alpha)
                } else {
                    format!(
                        "bars: no pair differs by Wilcoxon signed-rank tests, Holm-corrected (α = {:.2}, {} data sets)",
                        self.alpha, self.n_datasets
                    )
                },
                (left, 24),
                text(TEXT, HPos::Left, VPos::Center),
            ))
            .map_err(err)?;
        }
        if let Some(cd) = self.cd {
            // The CD as a bar from rank 1 (cut at the axis' end when wider), its value above it.
            let (x0, x1) = (x_of(1.0), x_of(1.0 + cd).min(right));
            let bar_y = 50;
            root.draw(&PathElement::new(
                vec![(x0, bar_y), (x1, bar_y)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
            for x in [x0, x1] {
                root.draw(&PathElement::new(
                    vec![(x, bar_y - 5), (x, bar_y + 5)],
                    line,
                ))
                .map_err(err)?;
            }
            root.draw(&Text::new(
                format!(
                    "CD = {cd:.2} (Nemenyi, α = {:.2}, {} data sets){}",
                    self.alpha,
                    self.n_datasets,
                    if x_of(1.0 + cd) > right {
                        ": wider than the whole range of ranks"
                    } else {
                        ""
                    }
                ),
                (x0, bar_y - 10),
                text(TEXT, HPos::Left, VPos::Bottom),
            ))
            .map_err(err)?;
        }
        // Best half hangs to the left, the rest to the right (lowest rank = best, on the left).
        let half = self.ranks.len().div_ceil(2);
        let row = 32;
        let base = axis_y + 36 + 16 * self.groups.len() as i32;
        for (i, (name, rank)) in self.ranks.iter().enumerate() {
            let x = x_of(*rank);
            let on_left = i < half;
            let (y, end, anchor) = if on_left {
                (base + row * i as i32, left - 16, HPos::Right)
            } else {
                (
                    base + row * (self.ranks.len() - 1 - i) as i32,
                    right + 16,
                    HPos::Left,
                )
            };
            root.draw(&PathElement::new(vec![(x, axis_y), (x, y), (end, y)], line))
                .map_err(err)?;
            let label = format!("{name} ({rank:.2})");
            let at = if on_left { end - 4 } else { end + 4 };
            root.draw(&Text::new(label, (at, y), text(TEXT, anchor, VPos::Center)))
                .map_err(err)?;
        }
        // Groups not significantly different: thick bars just under the axis.
        for (g, &(first, last)) in self.groups.iter().enumerate() {
            let y = axis_y + 16 + 16 * g as i32;
            let (x0, x1) = (x_of(self.ranks[first].1) - 4, x_of(self.ranks[last].1) + 4);
            root.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                BLACK.stroke_width(4),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

/// One dot per seed of each sampler at its best k, samplers sorted by their mean, a tick at the mean.
struct Strip {
    title: String,
    metric: String,
    /// (label, look, seed values, mean), best first.
    rows: Vec<(String, Look, Vec<f64>, f64)>,
}

impl Strip {
    fn of(view: &DatasetView, looks: &HashMap<String, Look>) -> Strip {
        let mut rows: Vec<(String, Look, Vec<f64>, f64)> = view
            .best_per_sampler()
            .into_iter()
            .map(|(key, mean)| {
                (
                    format!("{} (k = {})", key.0, ratio_label(key.1)),
                    looks[&key.0],
                    view.values[&key].values().copied().collect(),
                    mean,
                )
            })
            .collect();
        rows.sort_by(|a, b| b.3.total_cmp(&a.3));
        let n = view.values.values().map(|v| v.len()).max().unwrap_or(0);
        Strip {
            title: format!("{}: one dot per seed ({n})", view.name,),
            metric: view.metric.clone(),
            rows,
        }
    }
}

/// Width for the longest of `labels` at the text size (about 0.6 em a character), so none is cut.
fn label_area(labels: &[String]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (longest * TEXT * 3 / 5 + 24).clamp(120, 520)
}

impl Painter for Strip {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let values = self.rows.iter().flat_map(|r| r.2.iter().copied());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.06).max(1e-4);
        let n = self.rows.len();
        let labels: Vec<String> = self.rows.iter().map(|r| r.0.clone()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", TITLE))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(label_area(&labels))
            .build_cartesian_2d(lo - pad..hi + pad, -0.5..n as f64 - 0.5)
            .map_err(err)?;
        let y_fmt = |y: &f64| {
            let i = y.round();
            if (y - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            // Best at the top: row 0 drawn at the highest y.
            labels
                .get(n.wrapping_sub(1).wrapping_sub(i as usize))
                .cloned()
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .y_labels(n * 2 + 1)
            .y_label_formatter(&y_fmt)
            .x_labels(5)
            .x_label_formatter(&|v: &f64| format!("{v:.3}"))
            .x_desc(self.metric.as_str())
            .label_style(("sans-serif", TEXT))
            .axis_desc_style(("sans-serif", TEXT))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(err)?;
        for (i, (_, look, seeds, mean)) in self.rows.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(*mean, y - 0.3), (*mean, y + 0.3)],
                    RGBColor(120, 120, 120).stroke_width(2),
                )))
                .map_err(err)?;
            // Seeds spread a little vertically (deterministic), so equal values stay visible.
            let m = seeds.len().max(1) as f64;
            chart
                .draw_series(seeds.iter().enumerate().map(|(j, &v)| {
                    let dy = if m > 1.0 {
                        (j as f64 / (m - 1.0) - 0.5) * 0.3
                    } else {
                        0.0
                    };
                    EmptyElement::at((v, y + dy)) + marker_at::<DB>(*look, (0, 0))
                }))
                .map_err(err)?;
        }
        Ok(())
    }
}

/// Every (sampler, k) as a point of two metrics, with a legend of samplers on the right.
struct Scatter {
    title: String,
    x_label: String,
    y_label: String,
    /// (sampler, k, look, x, y).
    points: Vec<(String, u32, Look, f64, f64)>,
    /// A time axis (positive x, log scale when it spans a decade), and whether its Pareto front (less
    /// x, more y) is drawn; None for a plain scatter.
    pareto: Option<bool>,
    legend: Vec<(String, Look)>,
}

impl Scatter {
    fn new(
        view: &DatasetView,
        looks: &HashMap<String, Look>,
        title: String,
        (x_label, y_label): (&str, &str),
        (xs, ys): (&BTreeMap<Key, f64>, &BTreeMap<Key, f64>),
        pareto: Option<bool>,
    ) -> Scatter {
        let points: Vec<(String, u32, Look, f64, f64)> = view
            .order
            .iter()
            .filter_map(|key| {
                let (x, y) = (*xs.get(key)?, *ys.get(key)?);
                (x.is_finite() && y.is_finite() && (pareto.is_none() || x > 0.0))
                    .then(|| (key.0.clone(), key.1, looks[&key.0], x, y))
            })
            .collect();
        let mut legend: Vec<(String, Look)> = Vec::new();
        for p in &points {
            if !legend.iter().any(|(s, _)| *s == p.0) {
                legend.push((p.0.clone(), p.2));
            }
        }
        Scatter {
            title,
            x_label: x_label.into(),
            y_label: y_label.into(),
            points,
            pareto,
            legend,
        }
    }

    /// Points no other point beats on both axes (less x, more y), by x.
    fn front(&self) -> Vec<(f64, f64)> {
        let mut sorted: Vec<(f64, f64)> = self.points.iter().map(|p| (p.3, p.4)).collect();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut front: Vec<(f64, f64)> = Vec::new();
        for p in sorted {
            if front.last().is_none_or(|l| p.1 > l.1) {
                front.push(p);
            }
        }
        front
    }
}

/// `v` with three significant digits (an axis' tick label at any scale).
fn three_digits(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

/// The Pareto front as a dashed staircase.
fn draw_front<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    front: &[(f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut steps = Vec::new();
    for w in front.windows(2) {
        steps.push(w[0]);
        steps.push((w[1].0, w[0].1));
    }
    steps.extend(front.last());
    chart
        .draw_series(DashedLineSeries::new(
            steps,
            7,
            5,
            RGBColor(90, 90, 90).stroke_width(2),
        ))
        .map_err(err)?;
    Ok(())
}

/// Each sampler's points joined in the order of k by a thin line of its colour, its first and last k
/// written beside them (the middle ones would crowd the figure).
fn draw_trajectories<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    chart: &mut ChartContext<'_, DB, CT>,
    points: &[(String, u32, Look, f64, f64)],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let mut samplers: Vec<&str> = Vec::new();
    for p in points {
        if !samplers.contains(&p.0.as_str()) {
            samplers.push(&p.0);
        }
    }
    for sampler in samplers {
        let mut own: Vec<&(String, u32, Look, f64, f64)> =
            points.iter().filter(|p| p.0 == sampler).collect();
        own.sort_by_key(|p| p.1);
        let look = own[0].2;
        chart
            .draw_series(LineSeries::new(
                own.iter().map(|p| (p.3, p.4)),
                look.color.mix(0.55).stroke_width(1),
            ))
            .map_err(err)?;
        let last = own.len() - 1;
        chart
            .draw_series(own.iter().enumerate().map(|(i, p)| {
                let label = if i == 0 || i == last {
                    format!("k={}", ratio_label(p.1))
                } else {
                    String::new()
                };
                EmptyElement::at((p.3, p.4))
                    + marker_at::<DB>(look, (0, 0))
                    + Text::new(label, (6, -14), ("sans-serif", TEXT))
            }))
            .map_err(err)?;
    }
    Ok(())
}

impl Painter for Scatter {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (width, _) = root.dim_in_pixel();
        let (plot, key) = root.split_horizontally(width - 250);
        let fold = |f: fn(&(String, u32, Look, f64, f64)) -> f64| {
            self.points
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let (x0, x1) = fold(|p| p.3);
        let (y0, y1) = fold(|p| p.4);
        let ypad = ((y1 - y0) * 0.08).max(1e-4);
        let mut builder = ChartBuilder::on(&plot);
        builder
            .caption(&self.title, ("sans-serif", TITLE))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(80);
        let front = self.pareto == Some(true);
        // A log axis only where the times span a decade: a narrower one would carry no tick label.
        if self.pareto.is_some() && x1 / x0 >= 10.0 {
            let mut chart = builder
                .build_cartesian_2d((x0 / 1.3..x1 * 1.3).log_scale(), y0 - ypad..y1 + ypad)
                .map_err(err)?;
            let x_label = format!("{} (log scale)", self.x_label);
            chart
                .configure_mesh()
                .x_desc(x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_label_formatter(&|v: &f64| three_digits(*v))
                .y_label_formatter(&|v: &f64| format!("{v:.3}"))
                .label_style(("sans-serif", TEXT))
                .axis_desc_style(("sans-serif", TEXT))
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(err)?;
            if front {
                draw_front(&mut chart, &self.front())?;
            }
            draw_trajectories(&mut chart, &self.points)?;
        } else {
            let xpad = ((x1 - x0) * 0.08).max(1e-4 * x1.abs().max(1e-3));
            let mut chart = builder
                .build_cartesian_2d(x0 - xpad..x1 + xpad, y0 - ypad..y1 + ypad)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_labels(6)
                .x_label_formatter(&|v: &f64| three_digits(*v))
                .y_label_formatter(&|v: &f64| format!("{v:.4}"))
                .label_style(("sans-serif", TEXT))
                .axis_desc_style(("sans-serif", TEXT))
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(err)?;
            if front {
                draw_front(&mut chart, &self.front())?;
            }
            draw_trajectories(&mut chart, &self.points)?;
        }
        for (i, (label, look)) in self.legend.iter().enumerate() {
            let (x, y) = (14, 56 + 27 * i as i32);
            key.draw(&(EmptyElement::at((x, y)) + marker_at::<DB>(*look, (0, 0))))
                .map_err(err)?;
            key.draw(&Text::new(
                label.as_str(),
                (x + 16, y),
                text(TEXT, HPos::Left, VPos::Center),
            ))
            .map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_axes_keep_readable_ticks_and_long_labels_their_room() {
        assert_eq!(three_digits(12.345), "12.3");
        assert_eq!(three_digits(0.004567), "0.00457");
        assert_eq!(three_digits(1234.5), "1234");
        let short = label_area(&["uniform (k = 4)".to_string()]);
        let long = label_area(&["popularity-a1.2e-8-smoothing1 (k = 16)".to_string()]);
        assert!(long > short && long >= 38 * TEXT * 3 / 5, "{short} {long}");
    }

    #[test]
    fn demsars_example_draws_as_a_cd_diagram_with_two_bars() {
        // Demšar 2006, §3.2.2 at α = 0.10: C4.5+m+cf, C4.5+m and C4.5+cf joined; C4.5+cf and C4.5 joined.
        let ranks: Vec<(String, f64)> = [
            ("C4.5+m+cf", 1.964),
            ("C4.5+m", 2.000),
            ("C4.5+cf", 2.893),
            ("C4.5", 3.143),
        ]
        .map(|(n, r)| (n.to_string(), r))
        .to_vec();
        let sorted: Vec<f64> = ranks.iter().map(|r| r.1).collect();
        let cd = crate::stats::nemenyi_cd(4, 14, 0.10);
        let diagram = CdDiagram {
            groups: crate::stats::cd_groups(&sorted, cd.unwrap()),
            ranks,
            cd,
            alpha: 0.10,
            n_datasets: 14,
            test: "Nemenyi",
        };
        assert_eq!(diagram.groups, vec![(0, 2), (2, 3)]);
        let dir = std::env::var_os("NSBENCH_KEEP_FIGURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::env::temp_dir().join(format!("nsbench-cd-{}", std::process::id()))
            });
        let files = plots::save_with(&dir, "demsar-cd", (PAGE_WIDTH, 330), &diagram).unwrap();
        for f in files {
            assert!(
                std::fs::metadata(&f).unwrap().len() > 1000,
                "{}",
                f.display()
            );
        }
    }
}
