//! Figures, each as SVG and PNG, one panel per sampler family (docs/samplers.md) with the reference sampler
//! dashed in every panel, so no panel holds more than a handful of lines: per data set and metric,
//! (1) the metric against the number of negatives per positive with a 95% band over seeds, and (2)
//! convergence per ratio, against the epoch and against the training seconds. Colours are Okabe & Ito's
//! colour-blind-safe palette, each sampler kind with a fixed colour and marker in every figure. Text is
//! drawn with the bundled DejaVu Sans, so no system fonts are needed.

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

/// One line: (x, mean, half-width of its band) points.
#[derive(Clone)]
pub(super) struct Series {
    /// The sampler (series label of the results) it draws.
    pub sampler: String,
    pub label: String,
    pub look: Look,
    pub points: Vec<(f64, f64, f64)>,
}

pub(super) struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// x holds log2 of the value; ticks are labelled with the value.
    pub log2_x: bool,
    pub series: Vec<Series>,
}

/// Okabe & Ito's colour-blind-safe palette (2008), without its yellow, which vanishes on white: black
/// first, for the reference sampler.
pub(super) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 0, 0),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
];

/// Point marker of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
    OpenCircle,
    OpenTriangle,
    OpenSquare,
}

/// How one sampler looks: a colour and a marker (the pair is unique within a report).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Look {
    pub color: RGBColor,
    pub marker: Marker,
    /// The reference drawn in every panel of a faceted figure: a dashed grey-black line.
    pub dashed: bool,
}

impl Look {
    fn dashed(&self) -> bool {
        self.dashed
    }
}

const MARKERS: [Marker; 7] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
    Marker::OpenCircle,
    Marker::OpenTriangle,
    Marker::OpenSquare,
];

/// Each series label's sampler kind.
pub(super) type Kinds = HashMap<String, String>;

/// The registry entry of a series label: its kind's, else the longest kind the label starts with.
fn info_of(label: &str, kinds: &Kinds) -> Option<&'static crate::sampler::SamplerInfo> {
    let kind = kinds.get(label).map_or(label, String::as_str);
    crate::sampler::REGISTRY
        .iter()
        .find(|info| info.kind == kind)
        .or_else(|| {
            crate::sampler::REGISTRY
                .iter()
                .filter(|info| label.starts_with(&format!("{}-", info.kind)))
                .max_by_key(|info| info.kind.len())
        })
}

/// Looks of a report's samplers: a series named by its kind always gets its kind's colour and marker
/// (by registry order, so neighbours in a family differ in colour and `uniform` is the black circle in
/// every figure of every report); black belongs to `uniform` alone. Other labels (a variant of a kind, a
/// loss suffix) take the first free pair. No two samplers of a report look alike.
pub(super) fn sampler_looks(samplers: &[String], kinds: &Kinds) -> HashMap<String, Look> {
    // A series takes its kind's look when it is named by the kind, or when it is the first series of a
    // kind no series is named by (`uniform-bce` in a suite whose losses are all named).
    let kind_of = |name: &str| kinds.get(name).map_or(name, String::as_str).to_string();
    let canonical: Vec<&String> = samplers
        .iter()
        .filter(|s| {
            let kind = kind_of(s);
            **s == kind
                || (!samplers.contains(&kind)
                    && samplers.iter().find(|o| kind_of(o) == kind) == Some(*s))
        })
        .collect();
    let fixed = |name: &str| {
        if !canonical.iter().any(|c| *c == name) {
            return None;
        }
        let kind = kind_of(name);
        crate::sampler::REGISTRY
            .iter()
            .position(|info| info.kind == kind)
    };
    let others = PALETTE.len() - 1;
    let pair = |slot: usize| {
        if slot == 0 {
            (0, 0)
        } else {
            (
                1 + (slot - 1) % others,
                ((slot - 1) / others) % MARKERS.len(),
            )
        }
    };
    // (colour, marker) pairs taken, and the colours taken in each family.
    let mut used: Vec<(usize, usize)> =
        samplers.iter().filter_map(|s| fixed(s).map(pair)).collect();
    let mut family_colours: Vec<(&str, usize)> = samplers
        .iter()
        .filter_map(|s| fixed(s).map(|slot| (family_of(s, kinds), pair(slot).0)))
        .collect();
    samplers
        .iter()
        .map(|s| {
            let (c, m) = fixed(s).map(pair).unwrap_or_else(|| {
                // A variant takes a colour its family's panel does not show yet, if one is left.
                let family = family_of(s, kinds);
                let candidates = || {
                    (0..MARKERS.len())
                        .flat_map(|m| (1..PALETTE.len()).map(move |c| (c, m)))
                        .filter(|p| !used.contains(p))
                };
                let free = candidates()
                    .find(|p| !family_colours.contains(&(family, p.0)))
                    .or_else(|| candidates().next())
                    .unwrap_or((1 + used.len() % others, MARKERS.len() - 1));
                used.push(free);
                family_colours.push((family, free.0));
                free
            });
            (
                s.clone(),
                Look {
                    color: PALETTE[c],
                    marker: MARKERS[m],
                    dashed: false,
                },
            )
        })
        .collect()
}

/// The docs/samplers.md family of a series label, `other` when it names no kind.
pub(super) fn family_of(label: &str, kinds: &Kinds) -> &'static str {
    info_of(label, kinds).map_or("other", |info| info.family)
}

/// Families present among `samplers`, in registry order.
pub(super) fn families(samplers: &[String], kinds: &Kinds) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for info in crate::sampler::REGISTRY {
        if samplers.iter().any(|s| family_of(s, kinds) == info.family)
            && !out.contains(&info.family)
        {
            out.push(info.family);
        }
    }
    if samplers.iter().any(|s| family_of(s, kinds) == "other") {
        out.push("other");
    }
    out
}

/// File-name form of a metric: `recall@20` → `recall_at_20`.
fn slug(metric: &str) -> String {
    metric.replace('@', "_at_")
}

/// Every figure of `summary`: the ratio figure of each effectiveness metric and of the epoch time, and
/// the convergence figures of the headline metric and the loss; with `headline_only`, the ratio figures
/// of the headline metric and the epoch time only.
pub fn render_all(
    summary: &Summary,
    curves: &[(ResultRow, CurveRow)],
    dir: &Path,
    headline_only: bool,
) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let samplers = summary.distinct(|r| r.sampler.clone());
    let looks = sampler_looks(&samplers, &summary.kinds);
    for (kind, domain) in summary.distinct(|r| (r.domain.clone(), r.dataset.clone())) {
        // This data set's metrics only: another domain's must not choose its headline.
        let metrics: Vec<String> = summary
            .distinct(|r| (r.dataset.clone(), r.metric.clone(), r.category.clone()))
            .into_iter()
            .filter(|(d, m, c)| *d == domain && (c == "effectiveness" || m == "epoch_seconds"))
            .map(|(_, m, _)| m)
            .collect();
        let headline = super::views::headline(
            &kind,
            metrics
                .iter()
                .map(String::as_str)
                .filter(|m| *m != "epoch_seconds"),
        );
        let metrics: Vec<String> = metrics
            .into_iter()
            .filter(|m| !headline_only || *m == headline || m == "epoch_seconds")
            .collect();
        for metric in &metrics {
            let (title, panels) = ratio_panels(summary, &looks, &domain, metric);
            files.extend(save(
                dir,
                &format!("{domain}-{}-vs-ratio", slug(metric)),
                &title,
                &panels,
            )?);
        }
        for metric in [headline.as_str(), "loss"] {
            for by_seconds in [false, true] {
                for (ratio, panels) in convergence_panels(
                    &samplers,
                    &summary.kinds,
                    &looks,
                    curves,
                    &domain,
                    metric,
                    by_seconds,
                ) {
                    let title = format!(
                        "{domain}, k = {}: {metric} against {}",
                        ratio_label(ratio),
                        if by_seconds {
                            "training time"
                        } else {
                            "the epoch"
                        }
                    );
                    files.extend(save(
                        dir,
                        &format!(
                            "{domain}-{}-convergence-{}-k{}",
                            slug(metric),
                            if by_seconds { "seconds" } else { "epochs" },
                            ratio_label(ratio)
                        ),
                        &title,
                        &panels,
                    )?);
                }
            }
        }
    }
    Ok(files)
}

/// Half-width of the 95% t interval of a mean from its std over n seeds (0 for one seed).
pub(super) fn ci95(std: f64, n: usize) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    if n < 2 || !std.is_finite() {
        return 0.0;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .map(|d| d.inverse_cdf(0.975))
        .unwrap_or(1.96);
    t * std / (n as f64).sqrt()
}

/// The reference series of a panel set: the first series of kind `uniform`.
fn reference_of(series: &[Series], kinds: &Kinds) -> Option<String> {
    series
        .iter()
        .find(|s| {
            kinds
                .get(&s.sampler)
                .map_or(s.sampler == "uniform", |k| k == "uniform")
        })
        .map(|s| s.sampler.clone())
}

/// Splits `series` into one panel per sampler family, the reference (dashed) in every panel.
fn facet(
    series: Vec<Series>,
    kinds: &Kinds,
    x_label: &str,
    y_label: &str,
    log2_x: bool,
) -> Vec<Panel> {
    let reference = reference_of(&series, kinds);
    let reference = reference.as_deref();
    let labels: Vec<String> = series.iter().map(|s| s.sampler.clone()).collect();
    let reference_series = series
        .iter()
        .find(|s| Some(s.sampler.as_str()) == reference)
        .map(|s| Series {
            label: format!("{} (ref.)", s.label),
            // Black is the reference's colour, whatever loss names its series.
            look: Look {
                dashed: true,
                color: PALETTE[0],
                ..s.look
            },
            ..s.clone()
        });
    families(&labels, kinds)
        .into_iter()
        .map(|family| {
            let mut members: Vec<Series> = series
                .iter()
                .filter(|s| {
                    family_of(&s.sampler, kinds) == family && Some(s.sampler.as_str()) != reference
                })
                .cloned()
                .collect();
            if members.is_empty() {
                // The reference's own family: it alone, solid.
                members.extend(
                    series
                        .iter()
                        .filter(|s| family_of(&s.sampler, kinds) == family)
                        .cloned(),
                );
            } else if let Some(r) = &reference_series {
                members.insert(0, r.clone());
            }
            Panel {
                title: family.to_string(),
                x_label: x_label.into(),
                y_label: y_label.into(),
                log2_x,
                series: members,
            }
        })
        .filter(|p| !p.series.is_empty())
        .collect()
}

fn ratio_panels(
    summary: &Summary,
    looks: &HashMap<String, Look>,
    domain: &str,
    metric: &str,
) -> (String, Vec<Panel>) {
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
    let samplers = summary.distinct(|r| r.sampler.clone());
    let series: Vec<Series> = samplers
        .iter()
        .map(|sampler| {
            let mut ratio_free = false;
            let points: Vec<(f64, f64, f64)> = summary
                .rows
                .iter()
                .filter(|r| r.dataset == domain && r.sampler == *sampler && r.metric == metric)
                .flat_map(|r| {
                    n_seeds = n_seeds.max(r.n_seeds);
                    let band = ci95(r.std, r.n_seeds);
                    if r.ratio == ALL {
                        ratio_free = true;
                        vec![(lo, r.mean, band), (hi, r.mean, band)]
                    } else {
                        vec![((r.ratio as f64).log2(), r.mean, band)]
                    }
                })
                .collect();
            Series {
                sampler: sampler.clone(),
                look: looks[sampler],
                label: if ratio_free {
                    format!("{sampler} (k = all)")
                } else {
                    sampler.clone()
                },
                points,
            }
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let band = if n_seeds > 1 {
        format!("mean, 95% CI over {n_seeds} seeds")
    } else {
        "one seed".into()
    };
    (
        format!("{domain}: {metric} against k ({band})"),
        facet(
            series,
            &summary.kinds,
            "negatives per positive (k, log scale)",
            metric,
            true,
        ),
    )
}

/// Epoch → (value, run id) of every seed.
type ByEpoch<'a> = BTreeMap<u32, Vec<(f64, &'a str)>>;

/// Per ratio, the metric against the epoch (or the cumulative training seconds), one panel per family.
fn convergence_panels(
    samplers: &[String],
    kinds: &Kinds,
    looks: &HashMap<String, Look>,
    curves: &[(ResultRow, CurveRow)],
    domain: &str,
    metric: &str,
    by_seconds: bool,
) -> Vec<(u32, Vec<Panel>)> {
    let split = if metric == "loss" { "train" } else { "test" };
    // run id -> epoch -> seconds of training that epoch.
    let mut seconds: HashMap<&str, BTreeMap<u32, f64>> = HashMap::new();
    // (sampler, ratio) -> epoch -> (values, cumulative seconds) over seeds
    let mut groups: BTreeMap<(String, u32), ByEpoch> = BTreeMap::new();
    for (r, c) in curves {
        if r.dataset != domain {
            continue;
        }
        if c.split == "train" && c.metric == "epoch_seconds" {
            seconds
                .entry(&r.run_id)
                .or_default()
                .insert(c.epoch, c.value);
        }
        if c.metric == metric && c.split == split {
            groups
                .entry((r.sampler.clone(), r.ratio))
                .or_default()
                .entry(c.epoch)
                .or_default()
                .push((c.value, &r.run_id));
        }
    }
    let elapsed = |run: &str, epoch: u32| -> f64 {
        seconds
            .get(run)
            .map_or(0.0, |s| s.range(..=epoch).map(|(_, v)| v).sum())
    };
    let mut ratios: Vec<u32> = groups.keys().map(|(_, r)| *r).collect();
    ratios.sort_unstable();
    ratios.dedup();
    // Ratio-free cells (`all`) join every ratio's figure; a figure of their own only when alone.
    if ratios.len() > 1 {
        ratios.retain(|&r| r != ALL);
    }
    ratios
        .into_iter()
        .map(|ratio| {
            let series: Vec<Series> = samplers
                .iter()
                .filter_map(|s| {
                    groups
                        .get(&(s.clone(), ratio))
                        .or_else(|| groups.get(&(s.clone(), ALL)))
                        .map(|g| (s, g))
                })
                .map(|(s, by_epoch)| Series {
                    sampler: s.clone(),
                    label: s.clone(),
                    look: looks[s],
                    points: by_epoch
                        .iter()
                        .map(|(e, v)| {
                            let values: Vec<f64> = v.iter().map(|p| p.0).collect();
                            let (m, sd) = mean_std(&values);
                            let x = if by_seconds {
                                v.iter().map(|p| elapsed(p.1, *e)).sum::<f64>() / v.len() as f64
                            } else {
                                *e as f64
                            };
                            (x, m, ci95(sd, values.len()))
                        })
                        .collect(),
                })
                .collect();
            let panels = facet(
                series,
                kinds,
                if by_seconds {
                    "training seconds (evaluation excluded)"
                } else {
                    "epoch"
                },
                &format!("{metric} ({split})"),
                false,
            );
            (ratio, panels)
        })
        .filter(|(_, p)| !p.is_empty())
        .collect()
}

/// Print scale. Figures are drawn for 200 dpi (`DPI` in the tests): a page-wide figure (`figure*` of a two-column paper) is
/// 7 in = `PAGE_WIDTH` px, a column figure 3.3 in = `COLUMN_WIDTH` px, and no text is smaller than
/// `TEXT` px = 7.2 pt at that scale. The SVGs scale with the page.
pub(super) const PAGE_WIDTH: u32 = 1400;
pub(super) const COLUMN_WIDTH: u32 = 660;
/// Tick labels, legends, axis descriptions, annotations.
pub(super) const TEXT: u32 = 20;
/// Panel titles.
pub(super) const SUBTITLE: u32 = 22;
/// Figure titles.
pub(super) const TITLE: u32 = 24;

/// Panels per row of a page-wide figure, and the plotting part of a panel (its legend comes below).
const COLUMNS: usize = 3;
const PLOT: (u32, u32) = (PAGE_WIDTH / COLUMNS as u32, 400);
/// The figure title's band.
const TITLE_BAND: u32 = 44;

/// Draws `panels` in a grid (up to three across, a shared y range) under `title` into `<name>.svg` and
/// `<name>.png`, each panel with its own legend.
pub(super) fn save(dir: &Path, name: &str, title: &str, panels: &[Panel]) -> Result<Vec<PathBuf>> {
    let columns = panels.len().clamp(1, COLUMNS);
    let rows = panels.len().div_ceil(columns).max(1);
    let legend = legend_layout(panels);
    let panel_height = PLOT.1 + legend.0 as u32 * LEGEND_ROW + 8;
    // A one-panel figure is narrower than a long title: widen it so the title is never cut.
    let title_width = 24 + (title.chars().count() as f64 * TITLE as f64 * 0.56) as u32;
    let size = (
        (PLOT.0 * columns as u32).max(title_width),
        TITLE_BAND + panel_height * rows as u32,
    );
    save_with(
        dir,
        name,
        size,
        &Grid {
            title,
            panels,
            columns,
            rows,
            legend,
        },
    )
}

/// (rows, columns) of the legend under every panel of a figure: one layout for all, so their plotting
/// areas line up; two columns unless a label is too long for half a panel.
fn legend_layout(panels: &[Panel]) -> (usize, usize) {
    let long = panels
        .iter()
        .flat_map(|p| &p.series)
        .any(|s| s.label.chars().count() > 16);
    let columns = if long { 1 } else { 2 };
    let rows = panels
        .iter()
        .map(|p| p.series.len().div_ceil(columns))
        .max()
        .unwrap_or(0);
    (rows, columns)
}

/// Something that draws itself on a drawing area of any backend.
pub(super) trait Painter {
    fn paint<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// Paints `painter` into `<name>.svg` and `<name>.png` of `size`, each written to a temporary file and
/// renamed, so a figure is never seen half-drawn.
pub(super) fn save_with(
    dir: &Path,
    name: &str,
    size: (u32, u32),
    painter: &impl Painter,
) -> Result<Vec<PathBuf>> {
    register_font();
    std::fs::create_dir_all(dir)?;
    let svg = dir.join(format!("{name}.svg"));
    let png = dir.join(format!("{name}.png"));
    let (svg_tmp, png_tmp) = (
        atomic::temp_path_keeping_extension(&svg),
        atomic::temp_path_keeping_extension(&png),
    );
    {
        let area = SVGBackend::new(&svg_tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        painter.paint(&area)?;
        area.present().map_err(err)?;
    }
    {
        let area = BitMapBackend::new(&png_tmp, size).into_drawing_area();
        area.fill(&WHITE).map_err(err)?;
        painter.paint(&area)?;
        area.present().map_err(err)?;
    }
    std::fs::rename(&svg_tmp, &svg)?;
    std::fs::rename(&png_tmp, &png)?;
    Ok(vec![svg, png])
}

struct Grid<'a> {
    title: &'a str,
    panels: &'a [Panel],
    columns: usize,
    rows: usize,
    legend: (usize, usize),
}

impl Painter for Grid<'_> {
    fn paint<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (title, body) = root.split_vertically(TITLE_BAND);
        title
            .draw(&Text::new(
                self.title,
                (12, TITLE_BAND as i32 / 2),
                text(TITLE, HPos::Left, VPos::Center),
            ))
            .map_err(err)?;
        // Panels share the y range, so they compare at a glance.
        let y = self
            .panels
            .iter()
            .map(bounds)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), b| {
                (lo.min(b.2), hi.max(b.3))
            });
        let areas = body.split_evenly((self.rows, self.columns));
        for (area, panel) in areas.iter().zip(self.panels) {
            draw_panel(area, panel, y, self.legend)?;
        }
        Ok(())
    }
}

/// Black text of `size` px anchored at (`h`, `v`).
pub(super) fn text(size: u32, h: HPos, v: VPos) -> TextStyle<'static> {
    ("sans-serif", size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(h, v))
}

pub(super) fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
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
    let xpad =
        if panel.log2_x { 0.3 } else { (x1 - x0) * 0.02 } + if x1 - x0 < 1e-9 { 1.0 } else { 0.0 };
    let ypad = ((y1 - y0) * 0.08).max(1e-6 + y1.abs() * 0.02);
    (x0 - xpad, x1 + xpad, y0 - ypad, y1 + ypad)
}

/// A marker of `look` at a pixel position, for legends and points alike.
pub(super) fn marker_at<DB: DrawingBackend>(
    look: Look,
    (x, y): (i32, i32),
) -> DynElement<'static, DB, (i32, i32)> {
    let style = look.color.filled();
    match look.marker {
        Marker::Circle => Circle::new((x, y), 4, style).into_dyn(),
        Marker::Triangle => TriangleMarker::new((x, y), 6, style).into_dyn(),
        Marker::Square => Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], style).into_dyn(),
        Marker::Cross => Cross::new((x, y), 5, look.color.stroke_width(2)).into_dyn(),
        Marker::OpenCircle => Circle::new((x, y), 4, look.color.stroke_width(2)).into_dyn(),
        Marker::OpenTriangle => {
            TriangleMarker::new((x, y), 6, look.color.stroke_width(2)).into_dyn()
        }
        Marker::OpenSquare => {
            Rectangle::new([(x - 4, y - 4), (x + 4, y + 4)], look.color.stroke_width(2)).into_dyn()
        }
    }
}

/// Height of one legend row under a panel.
const LEGEND_ROW: u32 = 26;

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    (y0, y1): (f64, f64),
    (legend_rows, legend_columns): (usize, usize),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (x0, x1, _, _) = bounds(panel);
    // The legend goes under the plot, in two columns, where it hides no line.
    let (_, height) = area.dim_in_pixel();
    let (area, key) = area.split_vertically(height - (legend_rows as u32 * LEGEND_ROW + 6));
    let (key_width, _) = key.dim_in_pixel();
    for (i, s) in panel.series.iter().enumerate() {
        let x = 20 + (i % legend_columns) as i32 * ((key_width as i32 - 20) / 2);
        let y = 4 + (i / legend_columns) as i32 * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let style = s.look.color.stroke_width(2);
        if s.look.dashed() {
            for (a, b) in [(x, x + 8), (x + 14, x + 22)] {
                key.draw(&PathElement::new(vec![(a, y), (b, y)], style))
                    .map_err(err)?;
            }
        } else {
            key.draw(&PathElement::new(vec![(x, y), (x + 22, y)], style))
                .map_err(err)?;
            key.draw(&marker_at::<DB>(s.look, (x + 11, y)))
                .map_err(err)?;
        }
        key.draw(&Text::new(
            s.label.as_str(),
            (x + 30, y),
            text(TEXT, HPos::Left, VPos::Center),
        ))
        .map_err(err)?;
    }
    let mut chart = ChartBuilder::on(&area)
        .caption(&panel.title, ("sans-serif", SUBTITLE))
        .margin(10)
        .x_label_area_size(52)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(err)?;
    let log2 = panel.log2_x;
    let x_fmt = move |v: &f64| {
        if !log2 {
            if v.abs() >= 10.0 || (v - v.round()).abs() < 1e-6 {
                format!("{v:.0}")
            } else {
                format!("{v:.1}")
            }
        } else if (v - v.round()).abs() > 1e-6 {
            String::new()
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
            6
        })
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", TEXT))
        .axis_desc_style(("sans-serif", TEXT))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let color = s.look.color;
        // The reference's band would cover the others': its line alone.
        if s.points.len() > 1 && s.points.iter().any(|p| p.2 > 0.0) && !s.look.dashed() {
            let mut band: Vec<(f64, f64)> =
                s.points.iter().map(|&(x, m, sd)| (x, m + sd)).collect();
            band.extend(s.points.iter().rev().map(|&(x, m, sd)| (x, m - sd)));
            chart
                .draw_series(std::iter::once(Polygon::new(band, color.mix(0.12))))
                .map_err(err)?;
        }
        let mut means: Vec<(f64, f64)> = s.points.iter().map(|&(x, m, _)| (x, m)).collect();
        let look = s.look;
        if look.dashed() && means.len() == 1 {
            // A reference measured at one x only: its level across the panel, so it stays visible.
            means = vec![(x0, means[0].1), (x1, means[0].1)];
        }
        let line_style = color.stroke_width(if look.dashed() { 2 } else { 3 });
        if look.dashed() {
            chart
                .draw_series(DashedLineSeries::new(means.clone(), 9, 6, line_style))
                .map_err(err)?;
        } else {
            chart
                .draw_series(LineSeries::new(means.clone(), line_style))
                .map_err(err)?;
        }
        if !look.dashed() {
            chart
                .draw_series(
                    means
                        .iter()
                        .map(|&p| EmptyElement::at(p) + marker_at::<DB>(look, (0, 0))),
                )
                .map_err(err)?;
        }
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
        let kinds = Kinds::new();
        let looks = sampler_looks(&names, &kinds);
        let alone = sampler_looks(&["uniform".to_string()], &kinds);
        assert_eq!(
            looks["uniform"], alone["uniform"],
            "a kind's look does not depend on the company"
        );
        assert_eq!(looks["uniform"].marker, Marker::Circle);
        assert!(
            looks
                .iter()
                .all(|(name, l)| (l.color == PALETTE[0]) == (name == "uniform")),
            "black is the reference's alone"
        );
        // Every kind plus more variants than the palette has colours: still no two alike.
        let mut many: Vec<String> = crate::sampler::REGISTRY
            .iter()
            .map(|info| info.kind.to_string())
            .collect();
        // 6 colours × 7 markers and black: room for every kind and the variants that fill the rest.
        let room = 1 + 6 * 7 - crate::sampler::REGISTRY.len();
        many.extend((0..room).map(|i| format!("variant-{i}")));
        for names in [names, many] {
            let looks = sampler_looks(&names, &kinds);
            let distinct: std::collections::HashSet<_> = looks
                .values()
                .map(|l| (l.color.0, l.color.1, l.color.2, l.marker as u8))
                .collect();
            let mut pairs: Vec<_> = looks
                .iter()
                .map(|(n, l)| (l.color.0, l.color.1, l.marker as u8, n.clone()))
                .collect();
            pairs.sort();
            assert_eq!(distinct.len(), names.len(), "{pairs:?}");
        }
    }

    #[test]
    fn text_is_legible_at_print_size() {
        // At 200 dpi, 7 pt is 19.4 px; the widths are 7 and 3.3 inches.
        const DPI: f64 = 200.0;
        let points = |px: u32| px as f64 * 72.0 / DPI;
        assert!(
            points(TEXT) >= 7.0
                && points(SUBTITLE) > points(TEXT)
                && points(TITLE) > points(SUBTITLE)
        );
        assert!((PAGE_WIDTH as f64 / DPI - 7.0).abs() < 0.01);
        assert!((COLUMN_WIDTH as f64 / DPI - 3.3).abs() < 0.01);
        assert!(PLOT.0 * COLUMNS as u32 <= PAGE_WIDTH);
    }

    #[test]
    fn a_kind_named_only_with_a_loss_keeps_its_look() {
        let names: Vec<String> = ["uniform-bce", "dns-bce", "uniform-bpr"]
            .map(String::from)
            .to_vec();
        let kinds: Kinds = names
            .iter()
            .map(|n| (n.clone(), n.split('-').next().unwrap().to_string()))
            .collect();
        let looks = sampler_looks(&names, &kinds);
        assert_eq!(looks["uniform-bce"].color, PALETTE[0]);
        assert_ne!(looks["uniform-bpr"].color, PALETTE[0], "black once");
        let alone = sampler_looks(&["dns".to_string()], &Kinds::new());
        assert_eq!(looks["dns-bce"], alone["dns"]);
    }

    #[test]
    fn every_sampler_kind_has_a_family_panel() {
        let names: Vec<String> = ["uniform", "dns", "popularity-a0", "in-batch-logq", "odd"]
            .map(String::from)
            .to_vec();
        let mut kinds = Kinds::new();
        kinds.insert("mixgcf-m10".into(), "mixing".into());
        assert_eq!(
            families(&names, &kinds),
            vec!["static", "hard", "efficient", "other"]
        );
        assert_eq!(family_of("popularity-a0", &kinds), "static");
        assert_eq!(family_of("hard-debiased", &kinds), "debiased");
        assert_eq!(family_of("mixgcf-m10", &kinds), "hard");
    }
}
