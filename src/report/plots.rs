//! Figures, each as SVG and PNG: per domain and metric, (1) the metric against the number of negatives
//! per positive, one line per sampler with a ±1 std band over seeds, and (2) convergence: the metric
//! against the epoch, one panel per ratio. Text is drawn with the bundled DejaVu Sans, so no system
//! fonts are needed.

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Once;

use super::summary::{mean_std, Summary};
use crate::store::{atomic, CurveRow, ResultRow};
use crate::suite::{ratio_label, ALL};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Cannot fail for the bundled font; a failure would show as a drawing error below.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One line: (x, mean, std) points.
struct Series {
    label: String,
    look: Look,
    points: Vec<(f64, f64, f64)>,
}

struct Panel {
    title: String,
    x_label: String,
    y_label: String,
    /// x holds log2 of the value; ticks are labelled with the value.
    log2_x: bool,
    series: Vec<Series>,
}

/// Tableau 20: ten strong colours, then their light variants.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(255, 152, 150),
    RGBColor(197, 176, 213),
    RGBColor(196, 156, 148),
    RGBColor(247, 182, 210),
    RGBColor(199, 199, 199),
    RGBColor(219, 219, 141),
    RGBColor(158, 218, 229),
];

/// Point marker of a line; lines with other markers than the circle are also dashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Circle,
    Triangle,
    Square,
}

/// How one sampler's line looks: a colour and a marker (the pair is unique within a report).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Look {
    color: RGBColor,
    marker: Marker,
}

impl Look {
    fn dashed(&self) -> bool {
        self.marker != Marker::Circle
    }
}

const MARKERS: [Marker; 3] = [Marker::Circle, Marker::Triangle, Marker::Square];

/// Looks of a report's samplers: a sampler named by its kind always gets its kind's colour (by registry
/// order) and a solid line with circles, so `uniform` looks the same in every report; other labels (two
/// samplers of one kind) take the first free colour, and once the palette is used up, a colour again
/// with another marker and a dashed line. No two samplers of a report look alike.
fn sampler_looks(samplers: &[String]) -> HashMap<String, Look> {
    let fixed = |name: &str| {
        crate::sampler::REGISTRY
            .iter()
            .position(|info| info.kind == name)
    };
    // (colour slot, marker) pairs taken.
    let mut used: Vec<(usize, usize)> = samplers
        .iter()
        .filter_map(|s| fixed(s).map(|slot| (slot % PALETTE.len(), slot / PALETTE.len())))
        .collect();
    samplers
        .iter()
        .map(|s| {
            let (slot, marker) = fixed(s).map_or_else(
                || {
                    let free = (0..MARKERS.len())
                        .flat_map(|m| (0..PALETTE.len()).map(move |c| (c, m)))
                        .find(|pair| !used.contains(pair))
                        .unwrap_or((used.len() % PALETTE.len(), MARKERS.len() - 1));
                    used.push(free);
                    free
                },
                // Past the palette, kinds wrap around with the next marker.
                |slot| (slot % PALETTE.len(), slot / PALETTE.len()),
            );
            let look = Look {
                color: PALETTE[slot],
                marker: MARKERS[marker],
            };
            (s.clone(), look)
        })
        .collect()
}

/// File-name form of a metric: `recall@20` → `recall_at_20`.
fn slug(metric: &str) -> String {
    metric.replace('@', "_at_")
}

pub fn render_all(
    summary: &Summary,
    curves: &[(ResultRow, CurveRow)],
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let looks = sampler_looks(&summary.distinct(|r| r.sampler.clone()));
    for domain in summary.distinct(|r| r.dataset.clone()) {
        let metrics: Vec<String> = summary
            .distinct(|r| (r.metric.clone(), r.category.clone()))
            .into_iter()
            .filter(|(m, c)| c == "effectiveness" || m == "epoch_seconds")
            .map(|(m, _)| m)
            .collect();
        for metric in &metrics {
            let panel = ratio_panel(summary, &looks, &domain, metric);
            files.extend(save(
                dir,
                &format!("{domain}-{}-vs-ratio", slug(metric)),
                (900, 600),
                &[panel],
            )?);
        }
        let convergence_metrics: Vec<&String> =
            metrics.iter().filter(|m| *m != "epoch_seconds").collect();
        for metric in convergence_metrics
            .into_iter()
            .chain(std::iter::once(&"loss".to_string()))
        {
            let panels = convergence_panels(summary, &looks, curves, &domain, metric);
            if panels.is_empty() {
                continue;
            }
            let width = (420 * panels.len() as u32).max(900);
            files.extend(save(
                dir,
                &format!("{domain}-{}-convergence", slug(metric)),
                (width, 520),
                &panels,
            )?);
        }
    }
    Ok(files)
}

fn ratio_panel(
    summary: &Summary,
    looks: &HashMap<String, Look>,
    domain: &str,
    metric: &str,
) -> Panel {
    let mut n_seeds = 0;
    // A ratio-free sampler (ratio `all`) is a level across the ratios the others were run at.
    let log_ratios: Vec<f64> = summary
        .rows
        .iter()
        .filter(|r| r.dataset == domain && r.ratio != ALL)
        .map(|r| (r.ratio as f64).log2())
        .collect();
    let (lo, hi) = log_ratios
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) };
    let series = summary
        .distinct(|r| r.sampler.clone())
        .into_iter()
        .map(|sampler| {
            let mut ratio_free = false;
            let points: Vec<(f64, f64, f64)> = summary
                .rows
                .iter()
                .filter(|r| r.dataset == domain && r.sampler == sampler && r.metric == metric)
                .flat_map(|r| {
                    n_seeds = n_seeds.max(r.n_seeds);
                    if r.ratio == ALL {
                        ratio_free = true;
                        vec![(lo, r.mean, r.std), (hi, r.mean, r.std)]
                    } else {
                        vec![((r.ratio as f64).log2(), r.mean, r.std)]
                    }
                })
                .collect();
            Series {
                look: looks[&sampler],
                label: if ratio_free {
                    format!("{sampler} (k = all)")
                } else {
                    sampler
                },
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    Panel {
        title: format!(
            "{domain}: {metric} (mean ± std over {n_seeds} seed{})",
            if n_seeds == 1 { "" } else { "s" }
        ),
        x_label: "negatives per positive (k, log scale)".into(),
        y_label: metric.into(),
        log2_x: true,
        series,
    }
}

fn convergence_panels(
    summary: &Summary,
    looks: &HashMap<String, Look>,
    curves: &[(ResultRow, CurveRow)],
    domain: &str,
    metric: &str,
) -> Vec<Panel> {
    let split = if metric == "loss" { "train" } else { "test" };
    // (sampler, ratio) -> epoch -> values over seeds
    let mut groups: BTreeMap<(String, u32), BTreeMap<u32, Vec<f64>>> = BTreeMap::new();
    for (r, c) in curves {
        if r.dataset == domain && c.metric == metric && c.split == split {
            groups
                .entry((r.sampler.clone(), r.ratio))
                .or_default()
                .entry(c.epoch)
                .or_default()
                .push(c.value);
        }
    }
    let samplers = summary.distinct(|r| r.sampler.clone());
    let mut ratios: Vec<u32> = groups.keys().map(|(_, r)| *r).collect();
    // Ratio-free cells (`all`) in the last panel.
    ratios.sort_unstable_by_key(|&r| if r == ALL { u32::MAX } else { r });
    ratios.dedup();
    ratios
        .into_iter()
        .map(|ratio| Panel {
            title: format!("{domain}, k = {}", ratio_label(ratio)),
            x_label: "epoch".into(),
            y_label: format!("{metric} ({split})"),
            log2_x: false,
            series: samplers
                .iter()
                .filter_map(|s| groups.get(&(s.clone(), ratio)).map(|g| (s, g)))
                .map(|(s, by_epoch)| Series {
                    label: s.clone(),
                    look: looks[s],
                    points: by_epoch
                        .iter()
                        .map(|(e, v)| {
                            let (m, sd) = mean_std(v);
                            (*e as f64, m, sd)
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

/// Draws `panels` side by side into `<name>.svg` and `<name>.png`, with one legend for all of them in a
/// column on the right (`size` is the panels' part; the legend widens the figure).
fn save(dir: &Path, name: &str, size: (u32, u32), panels: &[Panel]) -> Result<Vec<PathBuf>> {
    let entries = legend_entries(panels);
    let legend = LegendLayout::new(entries.len(), size.1);
    let size = (size.0 + legend.width(), size.1);
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    // Drawn to temporary files and renamed, so a figure is never seen half-drawn.
    let (svg_tmp, png_tmp) = (
        atomic::temp_path_keeping_extension(&svg),
        atomic::temp_path_keeping_extension(&png),
    );
    draw(
        SVGBackend::new(&svg_tmp, size).into_drawing_area(),
        panels,
        &entries,
        &legend,
    )?;
    draw(
        BitMapBackend::new(&png_tmp, size).into_drawing_area(),
        panels,
        &entries,
        &legend,
    )?;
    std::fs::rename(&svg_tmp, &svg)?;
    std::fs::rename(&png_tmp, &png)?;
    Ok(vec![svg, png])
}

/// Every label of `panels` once, in order of first appearance.
fn legend_entries(panels: &[Panel]) -> Vec<(String, Look)> {
    let mut entries: Vec<(String, Look)> = Vec::new();
    for s in panels.iter().flat_map(|p| &p.series) {
        if !entries.iter().any(|(label, _)| *label == s.label) {
            entries.push((s.label.clone(), s.look));
        }
    }
    entries
}

/// The legend's columns: as many rows as fit the figure's height, then another column.
struct LegendLayout {
    rows: usize,
    columns: usize,
}

impl LegendLayout {
    const TOP: i32 = 48;
    const ROW: i32 = 20;
    const COLUMN: u32 = 190;

    fn new(entries: usize, height: u32) -> LegendLayout {
        let rows = ((height as i32 - Self::TOP - 20) / Self::ROW).max(1) as usize;
        LegendLayout {
            rows,
            columns: entries.div_ceil(rows),
        }
    }

    fn width(&self) -> u32 {
        self.columns as u32 * Self::COLUMN
    }
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    panels: &[Panel],
    entries: &[(String, Look)],
    legend: &LegendLayout,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(err)?;
    let (width, _) = root.dim_in_pixel();
    let (plots, key) = root.split_horizontally(width - legend.width());
    // Side-by-side panels share the y range, so they compare at a glance.
    let y = panels
        .iter()
        .map(bounds)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| {
            (lo.min(b.2), hi.max(b.3))
        });
    let areas = plots.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel, y)?;
    }
    let font = ("sans-serif", 14)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (i, (label, look)) in entries.iter().enumerate() {
        let x = 8 + (i / legend.rows) as i32 * LegendLayout::COLUMN as i32;
        let y = LegendLayout::TOP + (i % legend.rows) as i32 * LegendLayout::ROW;
        let style = look.color.stroke_width(2);
        if look.dashed() {
            for dash in [(x, x + 8), (x + 14, x + 22)] {
                key.draw(&PathElement::new(vec![(dash.0, y), (dash.1, y)], style))
                    .map_err(err)?;
            }
        } else {
            key.draw(&PathElement::new(vec![(x, y), (x + 22, y)], style))
                .map_err(err)?;
        }
        let (mx, style) = (x + 11, look.color.filled());
        match look.marker {
            Marker::Circle => key.draw(&Circle::new((mx, y), 3, style)),
            Marker::Triangle => key.draw(&TriangleMarker::new((mx, y), 5, style)),
            Marker::Square => key.draw(&Rectangle::new([(mx - 3, y - 3), (mx + 3, y + 3)], style)),
        }
        .map_err(err)?;
        key.draw(&Text::new(label.as_str(), (x + 30, y), font.clone()))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing failed: {e:?}")
}

fn bounds(panel: &Panel) -> (f64, f64, f64, f64) {
    let pts = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, m, sd) in pts {
        let sd = if sd.is_finite() { sd } else { 0.0 };
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(m - sd), y1.max(m + sd));
    }
    if !x0.is_finite() {
        return (0.0, 1.0, 0.0, 1.0);
    }
    let xpad = if panel.log2_x { 0.3 } else { 0.0 } + if x1 - x0 < 1e-9 { 1.0 } else { 0.0 };
    let ypad = ((y1 - y0) * 0.08).max(1e-6 + y1.abs() * 0.02);
    (x0 - xpad, x1 + xpad, y0 - ypad, y1 + ypad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    (y0, y1): (f64, f64),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x0, x1, _, _) = bounds(panel);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let log2 = panel.log2_x;
    let x_fmt = move |v: &f64| {
        if (v - v.round()).abs() > 1e-6 {
            String::new()
        } else if !log2 {
            format!("{v:.0}")
        } else {
            format!("{}", 2f64.powi(v.round() as i32))
        }
    };
    let y_fmt = |v: &f64| format!("{v:.3}");
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(if log2 {
            ((x1 - x0).ceil() as usize + 1).max(2)
        } else {
            8
        })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let color = s.look.color;
        if s.points.len() > 1 && s.points.iter().any(|p| p.2 > 0.0) {
            let mut band: Vec<(f64, f64)> =
                s.points.iter().map(|&(x, m, sd)| (x, m + sd)).collect();
            band.extend(s.points.iter().rev().map(|&(x, m, sd)| (x, m - sd)));
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.15))))
                .map_err(err)?;
        }
        let means = s.points.iter().map(|&(x, m, _)| (x, m));
        if s.look.dashed() {
            chart
                .draw_series(DashedLineSeries::new(
                    means.clone(),
                    8,
                    5,
                    color.stroke_width(2),
                ))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(means.clone(), color.stroke_width(2)))
                .map_err(err)?;
        }
        let style = color.filled();
        match s.look.marker {
            Marker::Circle => chart.draw_series(means.map(|p| Circle::new(p, 3, style))),
            Marker::Triangle => chart.draw_series(means.map(|p| TriangleMarker::new(p, 5, style))),
            Marker::Square => chart.draw_series(
                means.map(|p| EmptyElement::at(p) + Rectangle::new([(-3, -3), (3, 3)], style)),
            ),
        }
        .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_look_and_no_two_samplers_share_one() {
        let names: Vec<String> = [
            "popularity",
            "in-batch-logq",
            "uniform",
            "popularity-a0",
            "dns",
        ]
        .map(String::from)
        .to_vec();
        let looks = sampler_looks(&names);
        let alone = sampler_looks(&["uniform".to_string()]);
        assert_eq!(
            looks["uniform"], alone["uniform"],
            "a kind's look does not depend on the company"
        );
        assert_eq!(looks["uniform"].marker, Marker::Circle);
        // Every kind plus more variants than the palette has colours: still no two alike.
        let mut many: Vec<String> = crate::sampler::REGISTRY
            .iter()
            .map(|info| info.kind.to_string())
            .collect();
        many.extend((0..25).map(|i| format!("variant-{i}")));
        for names in [names, many] {
            let looks = sampler_looks(&names);
            let distinct: std::collections::HashSet<_> = looks
                .values()
                .map(|l| (l.color.0, l.color.1, l.color.2, l.marker as u8))
                .collect();
            assert_eq!(distinct.len(), names.len(), "{names:?}");
        }
    }

    #[test]
    fn the_legend_takes_another_column_when_one_is_full() {
        let one = LegendLayout::new(20, 600);
        assert_eq!((one.columns, one.width()), (1, LegendLayout::COLUMN));
        let two = LegendLayout::new(40, 520);
        assert!(two.columns >= 2 && two.rows * two.columns >= 40);
        assert_eq!(LegendLayout::new(0, 520).width(), 0);
    }
}
