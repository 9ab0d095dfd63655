//! The memory timeline as a picture: one drawing routine, rendered to SVG or PNG.
//!
//! The picture answers "is my process leaking?" at a glance: the total RSS of the observed tree
//! (bold), the total of the verdict's metric when it is not RSS (dashed), one thin line per
//! process of a tree, the verdict's fitted trend over its analysed window, the warm-up shaded,
//! user marks as thin vertical lines, and the verdict in words, coloured, under the title.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memsleuth_analysis::{TimelineReport, Verdict, VerdictKind};
use plotters::coord::Shift;
use plotters::element::EmptyElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, RGBAColor};

use crate::units;

/// Width of the picture, pixels.
pub const WIDTH: u32 = 1200;
/// Height of the picture, pixels.
pub const HEIGHT: u32 = 600;

/// Why a picture could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The embedded font could not be loaded by the text renderer.
    #[error("cannot load the embedded DejaVu Sans font for plot text")]
    Font,
    /// The plotting library failed while drawing.
    #[error("cannot draw the plot: {0}")]
    Draw(String),
    /// The picture could not be written to its destination.
    #[error("cannot write {}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// The timeline picture as a self-contained SVG document (`<svg ...>...</svg>`).
pub fn timeline_svg(report: &TimelineReport) -> Result<String, RenderError> {
    register_fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_timeline(&root, report)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// Writes the timeline picture as a PNG file at `path` (any file name; the file is replaced
/// atomically, so a reader never sees half a picture).
pub fn timeline_png(report: &TimelineReport, path: &Path) -> Result<(), RenderError> {
    register_fonts()?;
    // The bitmap encoder picks the format from the file extension, so draw to a sibling file
    // with a `.png` name and move it into place.
    let tmp = temp_png_path(path);
    let result = (|| {
        let root = BitMapBackend::new(&tmp, (WIDTH, HEIGHT)).into_drawing_area();
        draw_timeline(&root, report)?;
        root.present().map_err(|e| RenderError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        RenderError::Write {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    })
}

fn temp_png_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plot".to_string());
    path.with_file_name(format!(".{name}.{}.tmp.png", std::process::id()))
}

/// Registers DejaVu Sans as plotters' "sans-serif" family, once per process.
fn register_fonts() -> Result<(), RenderError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let regular = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let bold =
            plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
        regular.is_ok() && bold.is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(RenderError::Font)
    }
}

fn draw_err<E: std::fmt::Display>(e: E) -> RenderError {
    RenderError::Draw(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Words shared with the HTML page.

/// The verdict in capitals with its evidence: `GROWING +1.2 MiB/s (95% CI 1.1–1.3)`.
pub(crate) fn verdict_headline(v: &Verdict) -> String {
    let word = v.kind.as_str().to_uppercase();
    match v.kind {
        VerdictKind::Growing if v.rate.is_finite() => {
            let mut s = format!("{word} {}", units::rate(v.rate));
            if let Some(ci) = rate_interval(v.rate, v.rate_low, v.rate_high) {
                s.push_str(&format!(" (95% CI {ci})"));
            }
            s
        }
        VerdictKind::Plateau if v.net_change.is_finite() && v.net_change != 0.0 => {
            format!("{word} after {}", units::signed_bytes(v.net_change))
        }
        VerdictKind::Sawtooth if v.releases > 0 => {
            let s = if v.releases == 1 { "" } else { "s" };
            format!("{word}, {} release{s}", v.releases)
        }
        _ => word,
    }
}

/// `1.1–1.3`, both ends in the unit `units::rate` picks for `rate`, so they read alongside it.
fn rate_interval(rate: f64, low: f64, high: f64) -> Option<String> {
    if !(low.is_finite() && high.is_finite()) {
        return None;
    }
    let (scale, _) = byte_unit(rate.abs());
    let fmt = |x: f64| {
        let v = x / scale;
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    Some(format!("{}–{}", fmt(low), fmt(high)))
}

/// The colour that goes with a verdict: red for growth, amber for plateau and sawtooth, green
/// for stable, grey when there is nothing to say.
pub(crate) fn verdict_rgb(kind: VerdictKind) -> (u8, u8, u8) {
    match kind {
        VerdictKind::Growing => (200, 30, 30),
        VerdictKind::Plateau | VerdictKind::Sawtooth => (200, 125, 0),
        VerdictKind::Stable => (30, 135, 60),
        VerdictKind::Inconclusive => (115, 115, 115),
    }
}

/// The command line of a process or capture, one line, without control characters.
pub(crate) fn command_line(argv: &[String]) -> String {
    clean_text(&argv.join(" "))
}

/// Spells out control characters (which are not allowed in XML, even escaped), as every report
/// shows them: `\x1b`.
pub(crate) fn clean_text(s: &str) -> String {
    crate::escape::printable(s).into_owned()
}

/// At most `max` characters, ending in `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The scale and name of the binary unit that suits values up to `max` bytes.
fn byte_unit(max: f64) -> (f64, &'static str) {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut scale = 1.0;
    let mut unit = 0;
    while max.is_finite() && max / scale >= 1024.0 && unit + 1 < UNITS.len() {
        scale *= 1024.0;
        unit += 1;
    }
    (scale, UNITS[unit])
}

/// The scale (seconds per unit) and name of the time unit that suits a span of `span` seconds.
fn time_unit(span: f64) -> (f64, &'static str) {
    if span < 2.0 {
        (0.001, "ms")
    } else if span < 300.0 {
        (1.0, "s")
    } else if span < 3.0 * 3600.0 {
        (60.0, "min")
    } else {
        (3600.0, "h")
    }
}

/// A tick value without float noise: `2.5`, `0.3`, `40`.
fn tick_number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".to_string();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// The scene: what to draw, in seconds and bytes, before any pixel is involved.

const MAX_NAMED_PROCESSES: usize = 6;
const PROCESS_PALETTE: [(u8, u8, u8); MAX_NAMED_PROCESSES] = [
    (148, 103, 189), // purple
    (0, 150, 136),   // teal
    (140, 86, 75),   // brown
    (214, 80, 170),  // pink
    (90, 100, 120),  // slate
    (0, 115, 170),   // dark cyan
];
const TOTAL_RSS_RGB: (u8, u8, u8) = (25, 50, 120);
const METRIC_RGB: (u8, u8, u8) = (60, 130, 220);
const OTHER_PROCESS_RGB: (u8, u8, u8) = (185, 185, 185);
const MARK_RGB: (u8, u8, u8) = (110, 70, 150);
/// Points per drawn series at most; beyond that a min/max decimation keeps spikes visible.
const MAX_DRAWN_POINTS: usize = 2400;

#[derive(Debug, Clone, Copy, PartialEq)]
enum LineKind {
    TotalRss,
    Metric,
    Process(usize),
    OtherProcess,
}

#[derive(Debug, Clone)]
struct Line {
    kind: LineKind,
    /// Legend label; `None` for lines that share a legend entry with another.
    label: Option<String>,
    /// (seconds, bytes), finite, in time order.
    points: Vec<(f64, f64)>,
}

/// The verdict's fitted line, as drawn.
#[derive(Debug, Clone)]
struct Trend {
    /// (seconds, bytes) at both ends.
    from: (f64, f64),
    to: (f64, f64),
    label: String,
}

#[derive(Debug, Clone)]
struct Scene {
    title: String,
    facts: String,
    subtitle: String,
    verdict_rgb: (u8, u8, u8),
    lines: Vec<Line>,
    /// Legend label of the grey "other processes" lines, when there are any.
    others_label: Option<String>,
    trend: Option<Trend>,
    /// Warm-up region in seconds.
    warmup: Option<(f64, f64)>,
    marks: Vec<(f64, String)>,
    x_range: (f64, f64),
    /// Largest value drawn, bytes (never zero).
    y_max: f64,
    empty: bool,
}

fn finite_points(it: impl Iterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    it.filter(|(t, y)| t.is_finite() && y.is_finite()).collect()
}

/// Keeps at most about `max` points: per bucket of consecutive points, the lowest and highest,
/// in time order, plus the very first and last.
fn decimate(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max || max < 4 {
        return points;
    }
    let buckets = max / 2 - 1;
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max + 2);
    if let Some(first) = points.first() {
        out.push(*first);
    }
    for chunk in points.chunks(size) {
        let mut lo = 0;
        let mut hi = 0;
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[a]);
        if b != a {
            out.push(chunk[b]);
        }
    }
    if let Some(last) = points.last() {
        out.push(*last);
    }
    out
}

fn build_scene(report: &TimelineReport) -> Scene {
    let tl = &report.timeline;
    let command = command_line(&tl.argv);
    let title = if command.is_empty() {
        format!("memsleuth · pid {}", tl.pid)
    } else {
        format!("memsleuth · {}", truncate(&command, 160))
    };

    let mut facts = vec![units::seconds(tl.end.duration.max(0.0))];
    facts.push(format!(
        "{} sample{}",
        tl.end.samples,
        if tl.end.samples == 1 { "" } else { "s" }
    ));
    if tl.interval.is_finite() && tl.interval > 0.0 {
        facts.push(format!("every {}", units::seconds(tl.interval)));
    }
    let facts = facts.join(" · ");

    let metric = report.total_metric.to_uppercase();
    let tree = tl.processes.len() > 1;
    let mut subtitle = verdict_headline(&report.verdict);
    subtitle.push_str(&format!(" in {}", crate::labels::verdict_scope(report)));
    if let Some(ending) = crate::ending::short(&tl.end) {
        subtitle.push_str(&format!(" · {ending}"));
    }

    let mut lines = Vec::new();
    let total_rss = finite_points(tl.total.iter().map(|p| (p.t, p.rss as f64)));
    let metric_total: Option<Vec<(f64, f64)>> = (report.total_metric != "rss").then(|| {
        let metric = report.total_metric;
        finite_points(tl.total.iter().map(|p| (p.t, p.get(metric) as f64)))
    });
    let empty = total_rss.is_empty();
    if !total_rss.is_empty() {
        lines.push(Line {
            kind: LineKind::TotalRss,
            label: Some(if tree { "total RSS" } else { "RSS" }.to_string()),
            points: decimate(total_rss, MAX_DRAWN_POINTS),
        });
    }
    if let Some(points) = metric_total {
        // A metric that could not be read sums to zero everywhere: nothing worth a line.
        if points.iter().any(|p| p.1 > 0.0) {
            lines.push(Line {
                kind: LineKind::Metric,
                label: Some(format!("{}{metric}", if tree { "total " } else { "" })),
                points: decimate(points, MAX_DRAWN_POINTS),
            });
        }
    }

    let mut others_label = None;
    if tree {
        let series: Vec<(usize, f64)> = tl
            .processes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let max = p
                    .points
                    .iter()
                    .filter_map(|q| q.rss)
                    .max()
                    .map(|m| m as f64)?;
                Some((i, max))
            })
            .collect();
        // Name the largest processes; the rest share one grey legend entry.
        let mut by_size = series.clone();
        by_size.sort_by(|a, b| b.1.total_cmp(&a.1));
        let named_limit = if series.len() > MAX_NAMED_PROCESSES {
            MAX_NAMED_PROCESSES - 1
        } else {
            MAX_NAMED_PROCESSES
        };
        let named: Vec<usize> = by_size.iter().take(named_limit).map(|s| s.0).collect();
        let mut colour = 0;
        let mut other_count = 0;
        let mut others = Vec::new();
        for (i, _) in &series {
            let p = &tl.processes[*i];
            let points = decimate(
                finite_points(
                    p.points
                        .iter()
                        .filter_map(|q| q.rss.map(|r| (q.t, r as f64))),
                ),
                MAX_DRAWN_POINTS,
            );
            if named.contains(i) {
                let cmd = command_line(&p.argv);
                let label = if cmd.is_empty() {
                    format!("pid {}", p.pid)
                } else {
                    format!("pid {} {cmd}", p.pid)
                };
                lines.push(Line {
                    kind: LineKind::Process(colour),
                    label: Some(truncate(&label, 40)),
                    points,
                });
                colour += 1;
            } else {
                other_count += 1;
                others.push(Line {
                    kind: LineKind::OtherProcess,
                    label: None,
                    points,
                });
            }
        }
        if other_count > 0 {
            others_label = Some(format!(
                "{other_count} other process{}",
                if other_count == 1 { "" } else { "es" }
            ));
        }
        // Others first so the named lines are drawn over them.
        others.append(&mut lines.split_off(0));
        lines = others;
    }

    let v = &report.verdict;
    let trend = if v.kind != VerdictKind::Inconclusive
        && v.window_start.is_finite()
        && v.window_end.is_finite()
        && v.window_end > v.window_start
        && v.rate.is_finite()
        && v.intercept.is_finite()
    {
        let at = |t: f64| v.intercept + v.rate * (t - v.window_start);
        let (mut t0, mut t1) = (v.window_start, v.window_end);
        // The axis starts at zero bytes: cut the line where it would go below.
        if at(t0) < 0.0 || at(t1) < 0.0 {
            if v.rate == 0.0 || (at(t0) < 0.0 && at(t1) < 0.0) {
                t1 = t0;
            } else {
                let zero = v.window_start - v.intercept / v.rate;
                if at(t0) < 0.0 {
                    t0 = zero;
                } else {
                    t1 = zero;
                }
            }
        }
        (t1 > t0).then(|| Trend {
            from: (t0, at(t0)),
            to: (t1, at(t1)),
            label: format!(
                "trend ({}): {}",
                crate::labels::verdict_scope(report),
                units::rate(v.rate)
            ),
        })
    } else {
        None
    };

    let marks: Vec<(f64, String)> = tl
        .marks
        .iter()
        .filter(|(t, _)| t.is_finite())
        .map(|(t, l)| (*t, truncate(&clean_text(l), 24)))
        .collect();

    // X: from the capture start to its end (or the last thing to draw).
    let mut x_min = 0.0f64;
    let mut x_max = if tl.end.duration.is_finite() {
        tl.end.duration
    } else {
        0.0
    };
    let mut y_max = 0.0f64;
    for line in &lines {
        for &(t, y) in &line.points {
            x_min = x_min.min(t);
            x_max = x_max.max(t);
            y_max = y_max.max(y);
        }
    }
    if let Some(Trend {
        from: (t0, y0),
        to: (t1, y1),
        ..
    }) = &trend
    {
        x_min = x_min.min(*t0);
        x_max = x_max.max(*t1);
        y_max = y_max.max(*y0).max(*y1);
    }
    for (t, _) in &marks {
        x_min = x_min.min(*t);
        x_max = x_max.max(*t);
    }
    if x_max - x_min <= 0.0 || !(x_max - x_min).is_finite() {
        let step = if tl.interval.is_finite() && tl.interval > 0.0 {
            tl.interval
        } else {
            1.0
        };
        x_max = x_min + step.max(1.0);
    }
    if !(y_max.is_finite() && y_max > 0.0) {
        y_max = 1024.0;
    }

    let warmup = (v.kind != VerdictKind::Inconclusive
        && v.warmup > 0.0
        && v.window_start.is_finite()
        && v.window_start > x_min)
        .then(|| (x_min, v.window_start.min(x_max)));

    Scene {
        title,
        facts,
        subtitle,
        verdict_rgb: verdict_rgb(v.kind),
        lines,
        others_label,
        trend,
        warmup,
        marks,
        x_range: (x_min, x_max),
        y_max,
        empty,
    }
}

// ---------------------------------------------------------------------------------------------
// Drawing.

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

fn line_style(kind: LineKind) -> ShapeStyle {
    match kind {
        LineKind::TotalRss => rgb(TOTAL_RSS_RGB).stroke_width(3),
        LineKind::Metric => rgb(METRIC_RGB).stroke_width(2),
        LineKind::Process(i) => rgb(PROCESS_PALETTE[i % PROCESS_PALETTE.len()]).stroke_width(2),
        LineKind::OtherProcess => rgb(OTHER_PROCESS_RGB).stroke_width(1),
    }
}

/// What a legend entry shows next to its label.
#[derive(Debug, Clone, Copy)]
enum Swatch {
    Solid(ShapeStyle),
    Dashed(ShapeStyle),
    /// A short thick band, for shaded regions.
    Band(RGBAColor),
    /// A short vertical tick, for marks.
    Tick(ShapeStyle),
}

/// Two polylines and the style they are drawn in.
type Strokes = (Vec<(i32, i32)>, Vec<(i32, i32)>, ShapeStyle);

impl Swatch {
    /// Two strokes relative to the legend entry's anchor, 26 px wide in all.
    fn strokes(self) -> Strokes {
        let full = vec![(0, 0), (26, 0)];
        match self {
            Swatch::Solid(s) => (full.clone(), full, s),
            Swatch::Dashed(s) => (vec![(0, 0), (9, 0)], vec![(15, 0), (26, 0)], s),
            Swatch::Band(c) => (full.clone(), full, c.stroke_width(12)),
            Swatch::Tick(s) => (vec![(13, -7), (13, 7)], vec![(13, -7), (13, 7)], s),
        }
    }
}

/// `text`, cut with `…` until it is at most `max` pixels wide in `style`.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    max: i32,
) -> Result<String, RenderError> {
    let mut chars = text.chars().count();
    let mut out = text.to_string();
    loop {
        let (w, _) = area.estimate_text_size(&out, style).map_err(draw_err)?;
        if w as i32 <= max || chars <= 1 {
            return Ok(out);
        }
        // Cut roughly in proportion, then refine one character at a time.
        let guess = (chars as i64 * i64::from(max.max(0)) / i64::from(w.max(1))) as usize;
        chars = guess.clamp(1, chars - 1);
        out = truncate(text, chars);
    }
}

fn draw_timeline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    report: &TimelineReport,
) -> Result<(), RenderError> {
    let scene = build_scene(report);
    root.fill(&WHITE).map_err(draw_err)?;

    let (header, body) = root.split_vertically(76);
    let title_font = FontDesc::new(FontFamily::SansSerif, 23.0, FontStyle::Bold);
    let facts_style = TextStyle::from(FontDesc::new(
        FontFamily::SansSerif,
        15.0,
        FontStyle::Normal,
    ))
    .color(&RGBColor(100, 100, 100))
    .pos(Pos::new(HPos::Right, VPos::Top));
    let verdict_colour = rgb(scene.verdict_rgb);
    let subtitle_font = FontDesc::new(FontFamily::SansSerif, 18.0, FontStyle::Bold);
    let (facts_w, _) = root
        .estimate_text_size(&scene.facts, &facts_style)
        .map_err(draw_err)?;
    let title_style = title_font.color(&RGBColor(20, 20, 20));
    let title_room = WIDTH as i32 - 24 - 30 - facts_w as i32 - 32;
    let title = fit_text(root, &scene.title, &title_style, title_room)?;
    header
        .draw(&Text::new(title, (24, 14), title_style))
        .map_err(draw_err)?;
    header
        .draw(&Text::new(
            scene.facts.clone(),
            (WIDTH as i32 - 30, 18),
            facts_style,
        ))
        .map_err(draw_err)?;
    let subtitle_style = subtitle_font.color(&verdict_colour);
    let subtitle = fit_text(root, &scene.subtitle, &subtitle_style, WIDTH as i32 - 54)?;
    header
        .draw(&Text::new(subtitle, (24, 47), subtitle_style))
        .map_err(draw_err)?;

    let (x_scale, x_unit) = time_unit(scene.x_range.1 - scene.x_range.0);
    let (y_scale, y_unit) = byte_unit(scene.y_max);
    let xs = |t: f64| t / x_scale;
    let ys = |b: f64| b / y_scale;
    let x_lo = xs(scene.x_range.0);
    let x_hi = xs(scene.x_range.1);

    // Legend entries, in reading order (the legend is drawn last, by hand, so its order does
    // not follow the drawing's z-order).
    let trend_style = verdict_colour.stroke_width(2);
    let warmup_fill = RGBAColor(120, 120, 120, 0.13);
    let mark_style = rgb(MARK_RGB).mix(0.55).stroke_width(1);
    let mut legend: Vec<(String, Swatch)> = Vec::new();
    for line in scene.lines.iter().filter(|l| l.kind == LineKind::TotalRss) {
        if let Some(label) = &line.label {
            legend.push((label.clone(), Swatch::Solid(line_style(line.kind))));
        }
    }
    for line in scene.lines.iter().filter(|l| l.kind == LineKind::Metric) {
        if let Some(label) = &line.label {
            legend.push((label.clone(), Swatch::Dashed(line_style(line.kind))));
        }
    }
    if let Some(trend) = &scene.trend {
        legend.push((
            trend.label.clone(),
            Swatch::Dashed(verdict_colour.stroke_width(3)),
        ));
    }
    for line in &scene.lines {
        if let (LineKind::Process(_), Some(label)) = (line.kind, &line.label) {
            legend.push((label.clone(), Swatch::Solid(line_style(line.kind))));
        }
    }
    if let Some(label) = &scene.others_label {
        legend.push((
            label.clone(),
            Swatch::Solid(line_style(LineKind::OtherProcess)),
        ));
    }
    if scene.warmup.is_some() {
        legend.push((
            "warm-up, not used for the verdict".to_string(),
            Swatch::Band(warmup_fill),
        ));
    }
    if !scene.marks.is_empty() {
        let n = scene.marks.len();
        legend.push((
            format!("{n} mark{}", if n == 1 { "" } else { "s" }),
            Swatch::Tick(rgb(MARK_RGB).stroke_width(1)),
        ));
    }
    let legend_font = FontDesc::new(FontFamily::SansSerif, 14.0, FontStyle::Normal);
    let legend_margin = 10u32;
    let swatch_area = 34u32;
    // The legend box's size, from the same text layout that draws its labels.
    let legend_style = TextStyle::from(legend_font.clone());
    let mut legend_text = MultiLineText::<(i32, i32), &str>::new((0, 0), &legend_style);
    for (label, _) in &legend {
        legend_text.push_line(label.as_str());
    }
    let (text_w, text_h) = if legend.is_empty() {
        (0, 0)
    } else {
        legend_text.estimate_dimension().map_err(draw_err)?
    };
    let legend_size = (
        f64::from(text_w) + f64::from(swatch_area + 2 * legend_margin),
        f64::from(text_h) + f64::from(2 * legend_margin),
    );

    // Mark labels go in a strip above the plotting area, where they hide nothing.
    let label_marks = !scene.marks.is_empty() && scene.marks.len() <= 20;
    let mut builder = ChartBuilder::on(&body);
    builder
        .margin_left(12)
        .margin_right(30)
        .margin_top(if label_marks { 24 } else { 8 })
        .margin_bottom(10)
        .x_label_area_size(48)
        .y_label_area_size(92);
    let plot_px = {
        let probe = builder
            .build_cartesian_2d(x_lo..x_hi, 0f64..1.0)
            .map_err(draw_err)?;
        let (w, h) = probe.plotting_area().dim_in_pixel();
        (f64::from(w), f64::from(h))
    };
    let placement = place_legend(&scene, plot_px, legend_size);
    let y_top = match &placement {
        Placement::Inside(_, top) | Placement::Outside(top) => *top,
    };
    if matches!(placement, Placement::Outside(_)) {
        // No room inside without hiding data: the legend gets a column right of the plot.
        builder.margin_right(legend_size.0 as i32 + 24);
    }
    let y_hi = ys(y_top);
    let mut chart = builder
        .build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)
        .map_err(draw_err)?;
    let (plot_x, plot_y) = chart.plotting_area().get_pixel_range();
    let legend_at = match placement {
        Placement::Inside((x, y), _) => (plot_x.start + x as i32, plot_y.start + y as i32),
        Placement::Outside(_) => (plot_x.end + 14, plot_y.start),
    };

    let x_fmt = |v: &f64| format!("{} {x_unit}", tick_number(*v));
    let y_fmt = |v: &f64| {
        if *v == 0.0 {
            "0".to_string()
        } else {
            format!("{} {y_unit}", tick_number(*v))
        }
    };
    let label_font = FontDesc::new(FontFamily::SansSerif, 14.0, FontStyle::Normal);
    let desc_font = FontDesc::new(FontFamily::SansSerif, 15.0, FontStyle::Normal);
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(8)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .x_desc("time since start")
        .y_desc("memory")
        .label_style(label_font.color(&RGBColor(60, 60, 60)))
        .axis_desc_style(desc_font.color(&RGBColor(60, 60, 60)))
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(RGBColor(243, 243, 243))
        .axis_style(RGBColor(120, 120, 120))
        .draw()
        .map_err(draw_err)?;

    // Warm-up shading, under everything else.
    if let Some((w0, w1)) = scene.warmup {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(xs(w0), 0.0), (xs(w1), y_hi)],
                warmup_fill.filled(),
            )))
            .map_err(draw_err)?;
    }

    // Marks: thin vertical lines (just ticks at the bottom when there are many), labelled in the
    // strip above the plotting area where labels do not collide.
    if !scene.marks.is_empty() {
        let top = if scene.marks.len() > 50 {
            y_hi * 0.03
        } else {
            y_hi
        };
        chart
            .draw_series(
                scene
                    .marks
                    .iter()
                    .map(|(t, _)| PathElement::new(vec![(xs(*t), 0.0), (xs(*t), top)], mark_style)),
            )
            .map_err(draw_err)?;
    }
    if label_marks {
        let mark_font = FontDesc::new(FontFamily::SansSerif, 12.0, FontStyle::Normal);
        let mut right_edge = i32::MIN;
        for (t, label) in &scene.marks {
            let (px, py) = chart.backend_coord(&(xs(*t), y_hi));
            let (w, _) = root
                .estimate_text_size(label, &TextStyle::from(mark_font.clone()))
                .map_err(draw_err)?;
            // Labels start at their line; near the right edge they end there instead.
            let mut x = px - 1;
            if x + w as i32 > WIDTH as i32 - 4 {
                x = px - w as i32 + 1;
            }
            let end = x + w as i32;
            if label.is_empty() || x <= right_edge + 8 {
                continue;
            }
            right_edge = end;
            root.draw(&Text::new(
                label.clone(),
                (x, py - 17),
                mark_font.color(&rgb(MARK_RGB)),
            ))
            .map_err(draw_err)?;
            root.draw(&PathElement::new(
                vec![(px, py - 4), (px, py)],
                rgb(MARK_RGB),
            ))
            .map_err(draw_err)?;
        }
    }

    // Lines: other processes, named processes, then the totals on top.
    for line in &scene.lines {
        let style = line_style(line.kind);
        let points: Vec<(f64, f64)> = line.points.iter().map(|&(t, y)| (xs(t), ys(y))).collect();
        if points.len() == 1 {
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, style.filled())))
                .map_err(draw_err)?;
        } else if line.kind == LineKind::Metric {
            chart
                .draw_series(DashedLineSeries::new(points, 10, 6, style))
                .map_err(draw_err)?;
        } else {
            chart
                .draw_series(LineSeries::new(points, style))
                .map_err(draw_err)?;
        }
    }

    if let Some(Trend {
        from: (t0, y0),
        to: (t1, y1),
        ..
    }) = &scene.trend
    {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(xs(*t0), ys(*y0)), (xs(*t1), ys(*y1))],
                14,
                6,
                trend_style,
            ))
            .map_err(draw_err)?;
    }

    if scene.empty {
        let note = TextStyle::from(FontDesc::new(
            FontFamily::SansSerif,
            22.0,
            FontStyle::Normal,
        ))
        .color(&RGBColor(130, 130, 130))
        .pos(Pos::new(HPos::Center, VPos::Center));
        chart
            .draw_series(std::iter::once(Text::new(
                "no samples".to_string(),
                ((x_lo + x_hi) / 2.0, y_hi / 2.0),
                note,
            )))
            .map_err(draw_err)?;
    }

    if !legend.is_empty() {
        let (x, y) = legend_at;
        let (w, h) = (legend_size.0 as i32, legend_size.1 as i32);
        root.draw(&Rectangle::new(
            [(x, y), (x + w, y + h)],
            WHITE.mix(0.94).filled(),
        ))
        .map_err(draw_err)?;
        root.draw(&Rectangle::new(
            [(x, y), (x + w, y + h)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))
        .map_err(draw_err)?;
        let line_h = f64::from(text_h) / legend.len() as f64;
        let margin = legend_margin as i32;
        for (i, (label, swatch)) in legend.iter().enumerate() {
            let top = y + margin + (i as f64 * line_h).round() as i32;
            let mid = top + (line_h / 2.0).round() as i32 - 2;
            let (a, b, style) = swatch.strokes();
            root.draw(
                &(EmptyElement::at((x + margin, mid))
                    + PathElement::new(a, style)
                    + PathElement::new(b, style)),
            )
            .map_err(draw_err)?;
            root.draw(&Text::new(
                label.as_str(),
                (x + margin + swatch_area as i32, top),
                legend_font.color(&RGBColor(30, 30, 30)),
            ))
            .map_err(draw_err)?;
        }
    }
    Ok(())
}

/// Where the legend goes, and how high the y axis reaches (bytes) with it there.
#[derive(Debug)]
enum Placement {
    /// Top-left corner of the box, pixels from the plotting area's top-left corner.
    Inside((f64, f64), f64),
    /// In a column right of the plotting area.
    Outside(f64),
}

/// Finds a place for the legend box (`legend`, pixels) in the plotting area (`plot`, pixels)
/// where it hides no data: a corner (upper left first), else anywhere along the left or right
/// edge, else an upper corner after raising the y axis (as long as the data keeps most of the
/// height), else outside, right of the plot.
fn place_legend(scene: &Scene, plot: (f64, f64), legend: (f64, f64)) -> Placement {
    let default_top = scene.y_max * 1.12;
    let (t0, t1) = scene.x_range;
    let span = t1 - t0;
    if !(span.is_finite() && span > 0.0 && plot.0 > 0.0 && plot.1 > 0.0) {
        return Placement::Inside((5.0, 5.0), default_top);
    }
    if legend.0 + 10.0 > plot.0 || legend.1 + 10.0 > plot.1 {
        return Placement::Outside(default_top);
    }
    let x_px = |t: f64| (t - t0) / span * plot.0;

    // Samples along every drawn line: (x in pixels from the left, value in bytes).
    let mut polylines: Vec<Vec<(f64, f64)>> =
        scene.lines.iter().map(|l| l.points.clone()).collect();
    if let Some(trend) = &scene.trend {
        polylines.push(vec![trend.from, trend.to]);
    }
    let mut samples: Vec<(f64, f64)> = Vec::new();
    for line in &polylines {
        if let [only] = line.as_slice() {
            samples.push((x_px(only.0), only.1));
        }
        for pair in line.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let dx = (x_px(b.0) - x_px(a.0)).abs();
            let dy = (b.1 - a.1).abs() / default_top * plot.1;
            let steps = (dx.max(dy) / 3.0).ceil().clamp(1.0, 2000.0) as usize;
            for k in 0..=steps {
                let f = k as f64 / steps as f64;
                samples.push((x_px(a.0 + f * (b.0 - a.0)), a.1 + f * (b.1 - a.1)));
            }
        }
    }

    let pad = 6.0;
    // Data hidden by the box with its top-left corner at (x, y) when the axis reaches `top`.
    let hidden = |x: f64, y: f64, top: f64| {
        samples
            .iter()
            .filter(|p| {
                let py = (1.0 - p.1 / top) * plot.1;
                p.0 >= x - pad
                    && p.0 <= x + legend.0 + pad
                    && py >= y - pad
                    && py <= y + legend.1 + pad
            })
            .count()
    };
    let (left, right) = (5.0, plot.0 - legend.0 - 5.0);
    let (upper, lower) = (5.0, plot.1 - legend.1 - 5.0);
    let corners = [(left, upper), (right, upper), (right, lower), (left, lower)];
    for (x, y) in corners {
        if hidden(x, y, default_top) == 0 {
            return Placement::Inside((x, y), default_top);
        }
    }
    let mut y = upper + 8.0;
    while y < lower {
        for x in [left, right] {
            if hidden(x, y, default_top) == 0 {
                return Placement::Inside((x, y), default_top);
            }
        }
        y += 8.0;
    }

    // Raise the axis until the data under an upper corner passes below the box.
    let box_frac = (legend.1 + upper + pad) / plot.1;
    let max_in = |x: f64| {
        samples
            .iter()
            .filter(|p| p.0 >= x - pad && p.0 <= x + legend.0 + pad)
            .fold(0.0f64, |m, p| m.max(p.1))
    };
    let need = |x: f64| max_in(x) / (1.0 - box_frac) * 1.02;
    let (x, top) = if need(left) <= need(right) {
        (left, need(left))
    } else {
        (right, need(right))
    };
    if box_frac < 0.5 && top.is_finite() && top <= scene.y_max * 1.75 {
        return Placement::Inside((x, upper), top.max(default_top));
    }
    Placement::Outside(default_top)
}

#[cfg(test)]
pub(crate) mod test_models {
    //! Hand-built reports for the renderers' tests.

    use memsleuth_analysis::{
        EndCause, EndInfo, Exit, Point, ProcessSeries, ProcessVerdict, Timeline, TimelineReport,
        TotalPoint, Verdict, VerdictKind, VerdictReason,
    };

    const MIB: f64 = 1024.0 * 1024.0;

    pub fn verdict(kind: VerdictKind, rate: f64, window: (f64, f64), intercept: f64) -> Verdict {
        Verdict {
            kind,
            rate,
            rate_low: rate * 0.92,
            rate_high: rate * 1.08,
            p_value: 0.0001,
            warmup: window.0,
            window_start: window.0,
            window_end: window.1,
            intercept,
            net_change: rate * (window.1 - window.0),
            releases: 0,
            points: 100,
            reason: reason_of(kind),
        }
    }

    /// A reason that goes with `kind`, for models whose words are not under test.
    pub fn reason_of(kind: VerdictKind) -> VerdictReason {
        match kind {
            VerdictKind::Growing => VerdictReason::Growing,
            VerdictKind::Plateau => VerdictReason::Plateau {
                filled: 20.0 * MIB,
                level: 50.0 * MIB,
            },
            VerdictKind::Sawtooth => VerdictReason::Sawtooth { range: 10.0 * MIB },
            VerdictKind::Stable => VerdictReason::NoMaterialChange { spread: 0.2 * MIB },
            VerdictKind::Inconclusive => VerdictReason::TooFewAfterWarmup { need: 8 },
        }
    }

    fn point(t: f64, rss: f64, pss: f64) -> Point {
        Point {
            t,
            rss: Some(rss as u64),
            vms: Some(rss as u64 * 3),
            uss: Some((pss * 0.9) as u64),
            pss: Some(pss as u64),
            swap: Some(0),
            peak: Some(rss as u64),
            ..Point::default()
        }
    }

    fn totals(processes: &[ProcessSeries]) -> Vec<TotalPoint> {
        let n = processes.iter().map(|p| p.points.len()).max().unwrap_or(0);
        (0..n)
            .map(|i| {
                let live: Vec<&Point> = processes.iter().filter_map(|p| p.points.get(i)).collect();
                TotalPoint {
                    t: live[0].t,
                    rss: live.iter().map(|p| p.rss.unwrap_or(0)).sum(),
                    uss: live.iter().map(|p| p.uss.unwrap_or(0)).sum(),
                    pss: live.iter().map(|p| p.pss.unwrap_or(0)).sum(),
                    swap: 0,
                    processes: live.len() as u32,
                    ..TotalPoint::default()
                }
            })
            .collect()
    }

    fn report(
        argv: &[&str],
        processes: Vec<ProcessSeries>,
        metric: &'static str,
        verdict: Verdict,
        per_process: Vec<ProcessVerdict>,
    ) -> TimelineReport {
        let total = totals(&processes);
        let duration = total.last().map(|p| p.t).unwrap_or(0.0);
        let peak = total.iter().map(|p| p.rss).max().unwrap_or(0);
        TimelineReport {
            timeline: Timeline {
                pid: processes.first().map(|p| p.pid).unwrap_or(4242),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                python_version: "3.12.3".into(),
                hostname: "devbox".into(),
                start_unix_ns: 1_700_000_000_000_000_000,
                interval: 0.1,
                processes,
                total: total.clone(),
                marks: vec![],
                end: EndInfo {
                    reason: Some(EndCause::TargetExited),
                    cut_short: false,
                    damage: None,
                    target_exit: Exit::Code(0),
                    samples: total.len() as u64,
                    dropped: 0,
                    flushes: 3,
                    duration,
                },
            },
            total_metric: metric,
            metric,
            verdict,
            verdict_pid: None,
            processes: per_process,
            peak,
            peak_at: duration,
            peak_rss_hwm: peak,
            per_mark: None,
        }
    }

    /// One Python process growing 1.2 MiB/s after a 6 s warm-up, with three marks.
    pub fn growing() -> TimelineReport {
        let points: Vec<Point> = (0..=300)
            .map(|i| {
                let t = i as f64 * 0.1;
                // Start-up to 40 MiB, then steady growth with some noise.
                let warm = 40.0 * MIB * (1.0 - (-t / 1.5).exp());
                let growth = if t > 6.0 { 1.2 * MIB * (t - 6.0) } else { 0.0 };
                let noise = ((i * 7919) % 13) as f64 * 0.08 * MIB;
                let rss = 12.0 * MIB + warm + growth + noise;
                point(t, rss, rss * 0.85)
            })
            .collect();
        let series = ProcessSeries {
            pid: 4242,
            ppid: 1,
            argv: vec![
                "python".into(),
                "leaky_server.py".into(),
                "--port=8000".into(),
            ],
            root: true,
            points,
            exited_at: Some(30.0),
            exit: Exit::Code(0),
        };
        let v = verdict(VerdictKind::Growing, 1.2 * MIB, (6.0, 30.0), 52.4 * MIB);
        let pv = ProcessVerdict {
            pid: 4242,
            metric: "rss",
            verdict: v.clone(),
            max: series
                .points
                .iter()
                .filter_map(|p| p.rss)
                .max()
                .unwrap_or(0),
            last: series.points.last().and_then(|p| p.rss).unwrap_or(0),
        };
        let mut r = report(
            &["python", "leaky_server.py", "--port=8000"],
            vec![series],
            "rss",
            v,
            vec![pv],
        );
        r.timeline.marks = vec![
            (8.0, "iteration 1".into()),
            (16.0, "iteration 2".into()),
            (24.0, "iteration 3".into()),
            (30.0, "done".into()),
        ];
        r
    }

    /// A parent that stays flat and two workers: one leaking, one plateauing. Verdict on PSS.
    pub fn tree() -> TimelineReport {
        let mk = |pid: u32, ppid: u32, argv: &[&str], f: &dyn Fn(f64) -> f64| ProcessSeries {
            pid,
            ppid,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            root: ppid == 1,
            points: (0..=600)
                .map(|i| {
                    let t = i as f64 * 0.1;
                    let rss = f(t);
                    point(t, rss, rss * 0.7)
                })
                .collect(),
            exited_at: None,
            exit: Exit::Unknown,
        };
        let parent = mk(
            1000,
            1,
            &["python", "-m", "celery", "worker", "--concurrency=2"],
            &|t| (60.0 + (t * 3.0).sin()) * MIB,
        );
        let leaky = mk(
            1001,
            1000,
            &[
                "python",
                "-m",
                "celery",
                "worker",
                "--child",
                "--queue=<script>x</script>",
            ],
            &|t| (45.0 + 0.8 * t) * MIB,
        );
        let cache = mk(1002, 1000, &["python", "child.py"], &|t| {
            (30.0 + 50.0 * (1.0 - (-t / 8.0).exp())) * MIB
        });
        let pv = |s: &ProcessSeries, kind: VerdictKind, rate: f64| ProcessVerdict {
            pid: s.pid,
            metric: "rss",
            verdict: verdict(
                kind,
                rate,
                (12.0, 60.0),
                s.points[120].rss.unwrap_or(0) as f64,
            ),
            max: s.points.iter().filter_map(|p| p.rss).max().unwrap_or(0),
            last: s.points.last().and_then(|p| p.rss).unwrap_or(0),
        };
        let per = vec![
            pv(&parent, VerdictKind::Stable, 0.0),
            pv(&leaky, VerdictKind::Growing, 0.8 * MIB),
            pv(&cache, VerdictKind::Plateau, 0.02 * MIB),
        ];
        let total_at_12 =
            (60.0 + (36.0f64).sin() + 45.0 + 9.6 + 30.0 + 50.0 * (1.0 - (-1.5f64).exp()))
                * MIB
                * 0.7;
        let v = verdict(VerdictKind::Growing, 0.62 * MIB, (12.0, 60.0), total_at_12);
        report(
            &["python", "-m", "celery", "worker", "--concurrency=2"],
            vec![parent, leaky, cache],
            "pss",
            v,
            per,
        )
    }

    /// Ten processes over a long capture (20 000 samples each), stable in sum.
    pub fn many() -> TimelineReport {
        let processes: Vec<ProcessSeries> = (0..10u32)
            .map(|k| ProcessSeries {
                pid: 2000 + k,
                ppid: if k == 0 { 1 } else { 2000 },
                argv: vec!["python".into(), format!("worker_{k}.py")],
                root: k == 0,
                points: (0..20_000)
                    .map(|i| {
                        let t = i as f64 * 0.05;
                        let saw = ((i + k as usize * 97) % 400) as f64 / 400.0;
                        let rss = (20.0 + 8.0 * k as f64 + 6.0 * saw) * MIB;
                        point(t, rss, rss * 0.6)
                    })
                    .collect(),
                exited_at: None,
                exit: Exit::Unknown,
            })
            .collect();
        let mut v = verdict(VerdictKind::Stable, 0.0, (200.0, 999.95), 300.0 * MIB);
        v.rate_low = -1000.0;
        v.rate_high = 1000.0;
        let mut r = report(&["python", "pool.py"], processes, "pss", v, vec![]);
        r.timeline.interval = 0.05;
        r
    }

    /// A capture with no samples at all.
    pub fn empty() -> TimelineReport {
        let v = Verdict {
            kind: VerdictKind::Inconclusive,
            rate: f64::NAN,
            rate_low: f64::NAN,
            rate_high: f64::NAN,
            p_value: f64::NAN,
            warmup: 0.0,
            window_start: 0.0,
            window_end: 0.0,
            intercept: f64::NAN,
            net_change: 0.0,
            releases: 0,
            points: 0,
            reason: VerdictReason::NoSamples,
        };
        report(&["python", "quick.py"], vec![], "rss", v, vec![])
    }

    /// The growing capture, cut short by a recorder crash at 12 s.
    pub fn cut_short() -> TimelineReport {
        let mut r = growing();
        r.timeline.total.retain(|p| p.t <= 12.0);
        for p in &mut r.timeline.processes {
            p.points.retain(|q| q.t <= 12.0);
            p.exited_at = None;
            p.exit = Exit::Unknown;
        }
        r.timeline.marks.retain(|m| m.0 <= 12.0);
        r.timeline.end.cut_short = true;
        r.timeline.end.reason = None;
        r.timeline.end.damage = Some("truncated chunk at byte 81920".into());
        r.timeline.end.duration = 12.0;
        r.timeline.end.samples = r.timeline.total.len() as u64;
        r.verdict.window_end = 12.0;
        r
    }

    /// A single sample, and absurd sizes: one process at u64::MAX, another at zero.
    pub fn extremes() -> TimelineReport {
        let mk = |pid: u32, rss: u64| ProcessSeries {
            pid,
            ppid: 1,
            argv: vec![],
            root: pid == 1,
            points: vec![Point {
                t: 0.0,
                rss: Some(rss),
                ..Point::default()
            }],
            exited_at: None,
            exit: Exit::Unknown,
        };
        let mut r = empty();
        r.timeline.processes = vec![mk(1, u64::MAX), mk(2, 0)];
        r.timeline.total = vec![TotalPoint {
            t: 0.0,
            rss: u64::MAX,
            ..TotalPoint::default()
        }];
        r.metric = "pss";
        r.total_metric = "pss";
        r
    }
}

#[cfg(test)]
mod tests {
    use super::test_models::*;
    use super::*;

    /// A minimal well-formedness check: every opened tag is closed in order.
    pub(crate) fn tags_balance(xml: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = xml;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                return false;
            };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name.trim()) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                stack.push(name);
            }
        }
        stack.is_empty()
    }

    #[test]
    fn svg_of_a_growing_process_names_the_verdict() {
        let svg = timeline_svg(&growing()).unwrap();
        assert!(svg.trim_start().starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(tags_balance(&svg));
        assert!(svg.contains("GROWING +1.2 MiB/s (95% CI 1.1–1.3)"));
        assert!(svg.contains("memsleuth · python leaky_server.py --port=8000"));
        assert!(svg.contains("trend (RSS): +1.2 MiB/s"));
        assert!(svg.contains("iteration 2"));
        // Axis labels use one unit for the whole axis.
        assert!(svg.contains("\n80 MiB\n"), "y ticks in MiB");
        assert!(svg.contains("\n30 s\n"), "x ticks in seconds");
        // A single process gets no per-process line of its own.
        assert!(!svg.contains("pid 4242"));
    }

    #[test]
    fn svg_of_a_tree_has_a_legend_entry_per_process() {
        let svg = timeline_svg(&tree()).unwrap();
        assert!(tags_balance(&svg));
        assert!(svg.contains("GROWING"));
        assert!(svg.contains("total PSS"));
        assert!(svg.contains("total RSS"));
        assert!(svg.contains("pid 1002 python child.py"));
        // Labels are cut to about 40 characters, and what they contain is escaped.
        assert!(svg.contains("pid 1001 python -m celery worker --chil…"));
        assert!(!svg.contains("<script>"));
    }

    #[test]
    fn empty_and_extreme_captures_draw_without_panicking() {
        let svg = timeline_svg(&empty()).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("no samples"));
        assert!(svg.contains("INCONCLUSIVE"));
        let svg = timeline_svg(&extremes()).unwrap();
        assert!(tags_balance(&svg));
        assert!(svg.contains("PiB"));
        let dir = std::env::temp_dir().join(format!("memsleuth-plot-x-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        timeline_png(&empty(), &dir.join("empty.png")).unwrap();
        timeline_png(&extremes(), &dir.join("extremes.png")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn many_processes_share_one_legend_entry_beyond_the_named_ones() {
        let report = many();
        let scene = build_scene(&report);
        assert!(scene
            .lines
            .iter()
            .all(|l| l.points.len() <= MAX_DRAWN_POINTS + 2));
        let svg = timeline_svg(&report).unwrap();
        assert!(svg.contains("STABLE"));
        assert!(svg.contains("5 other processes"));
        assert!(svg.contains("pid 2009 python worker_9.py"));
        assert!(!svg.contains("pid 2001 python worker_1.py"));
        // Minutes for a 1000 s capture.
        assert!(svg.contains(" min\n"));
    }

    #[test]
    fn decimation_keeps_extremes_and_ends() {
        let points: Vec<(f64, f64)> = (0..10_000)
            .map(|i| (i as f64, if i == 5_000 { 1e9 } else { (i % 7) as f64 }))
            .collect();
        let d = decimate(points, 100);
        assert!(d.len() <= 102);
        assert_eq!(d.first(), Some(&(0.0, 0.0)));
        assert_eq!(d.last(), Some(&(9_999.0, (9_999 % 7) as f64)));
        assert!(d.contains(&(5_000.0, 1e9)));
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn long_commands_are_cut_to_fit_the_title_line() {
        let mut report = tree();
        report.timeline.argv = vec!["python".into(), "x".repeat(300)];
        let svg = timeline_svg(&report).unwrap();
        let title = svg
            .lines()
            .find(|l| l.starts_with("memsleuth · python xxx"))
            .unwrap();
        assert!(title.ends_with('…'));
        let n = title.chars().count();
        assert!((40..100).contains(&n), "{n} characters");
        assert!(svg.contains("60.0 s · 601 samples · every 100 ms"));
    }

    #[test]
    fn cut_short_and_damaged_captures_say_so() {
        let svg = timeline_svg(&cut_short()).unwrap();
        assert!(svg.contains("capture damaged"));
        let mut killed = cut_short();
        killed.timeline.end.damage = None;
        let svg = timeline_svg(&killed).unwrap();
        assert!(svg.contains("capture cut short"));
    }

    #[test]
    fn verdict_words() {
        let mib = 1024.0 * 1024.0;
        let mut v = verdict(VerdictKind::Plateau, 0.0, (1.0, 2.0), 0.0);
        v.net_change = 20.0 * mib;
        assert_eq!(verdict_headline(&v), "PLATEAU after +20.0 MiB");
        v.kind = VerdictKind::Stable;
        assert_eq!(verdict_headline(&v), "STABLE");
        v.kind = VerdictKind::Sawtooth;
        v.releases = 3;
        assert_eq!(verdict_headline(&v), "SAWTOOTH, 3 releases");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(tick_number(0.30000000000000004), "0.3");
        assert_eq!(tick_number(40.0), "40");
        assert_eq!(clean_text("a\u{1b}[0mb"), "a\\x1b[0mb");
    }

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR");
        let w = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
        let h = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
        (w, h)
    }

    #[test]
    fn png_is_written_at_1200_by_600_whatever_the_file_name() {
        let dir = std::env::temp_dir().join(format!("memsleuth-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["timeline.png", "timeline-without-extension"] {
            let path = dir.join(name);
            timeline_png(&growing(), &path).unwrap();
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(png_size(&bytes), (1200, 600));
        }
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let missing = dir.join("no-such-dir").join("x.png");
        let err = timeline_png(&growing(), &missing).unwrap_err();
        assert!(err.to_string().contains("x.png"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Writes the pictures to look at: /tmp/plot-growing.png, /tmp/plot-tree.png and friends.
    #[test]
    #[ignore = "writes pictures to /tmp for a person to look at"]
    fn write_pictures_for_review() {
        for (name, report) in [
            ("growing", growing()),
            ("tree", tree()),
            ("empty", empty()),
            ("cut-short", cut_short()),
            ("extremes", extremes()),
            ("many", many()),
            ("long-title", {
                let mut r = cut_short();
                r.timeline.argv = vec!["python".into(), "-c".into(), "y".repeat(300)];
                r
            }),
        ] {
            let path = PathBuf::from(format!("/tmp/plot-{name}.png"));
            timeline_png(&report, &path).unwrap();
            std::fs::write(
                format!("/tmp/plot-{name}.svg"),
                timeline_svg(&report).unwrap(),
            )
            .unwrap();
        }
    }
}
