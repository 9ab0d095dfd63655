//! `memsleuth live`: one screen of the verdict on a capture as it is being written, drawn with
//! ratatui. The terminal, the keys and the refresh are the command's; this draws a model.

use std::path::Path;

use memsleuth_analysis::allocs::LeakReport;
use memsleuth_analysis::{ProgramVerdict, VerdictKind};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState, Wrap,
};
use ratatui::Frame;

use crate::allocs::{site_label, verdict_cell};
use crate::units::{bytes, count, seconds};

/// The order of the sites table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveSort {
    /// Live bytes, largest first.
    Bytes,
    /// Growth rate of the sites judged growing first, then live bytes.
    Growth,
    /// Live blocks, most first.
    Blocks,
}

impl LiveSort {
    pub fn next(self) -> LiveSort {
        match self {
            LiveSort::Bytes => LiveSort::Growth,
            LiveSort::Growth => LiveSort::Blocks,
            LiveSort::Blocks => LiveSort::Bytes,
        }
    }

    fn word(self) -> &'static str {
        match self {
            LiveSort::Bytes => "bytes",
            LiveSort::Growth => "growth",
            LiveSort::Blocks => "blocks",
        }
    }
}

/// What one frame of the live view shows.
#[derive(Debug)]
pub struct LiveView<'a> {
    /// The verdict on what the capture holds so far; `None` before its first allocation.
    pub verdict: Option<&'a ProgramVerdict>,
    /// The capture's path as the user gave it.
    pub capture: &'a Path,
    pub sort: LiveSort,
    /// Index into [`sorted_sites`].
    pub selected: usize,
    /// Show the selected site's largest stack.
    pub show_stack: bool,
    /// Why the capture cannot be read now (it is read again at the next refresh).
    pub problem: Option<&'a str>,
}

/// The sites of `r` in the order `sort` asks, as indexes into `r.leaks.sites`.
pub fn sorted_sites(r: &LeakReport, sort: LiveSort) -> Vec<usize> {
    let sites = &r.leaks.sites;
    let mut order: Vec<usize> = (0..sites.len()).collect();
    match sort {
        LiveSort::Bytes => {}
        LiveSort::Blocks => order.sort_by_key(|&i| std::cmp::Reverse(sites[i].blocks)),
        LiveSort::Growth => order.sort_by(|&a, &b| {
            let rate = |i: usize| {
                sites[i]
                    .verdict
                    .as_ref()
                    .filter(|v| v.kind == VerdictKind::Growing)
                    .map_or(f64::NEG_INFINITY, |v| v.rate)
            };
            rate(b)
                .total_cmp(&rate(a))
                .then(sites[b].bytes.cmp(&sites[a].bytes))
        }),
    }
    order
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, v: &LiveView<'_>) {
    let area = frame.area();
    let Some(verdict) = v.verdict else {
        let text = match v.problem {
            Some(p) => format!("memsleuth live · {}\n\n{p}", v.capture.display()),
            None => format!(
                "memsleuth live · {}\n\nwaiting for the first allocations to reach the capture \
                 (its recorder flushes at least every 50 ms) …\n\nq: quit",
                v.capture.display()
            ),
        };
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), area);
        return;
    };
    let Some(r) = verdict.leaks.as_ref() else {
        return;
    };
    let growing_types: Vec<_> = verdict
        .growth
        .as_ref()
        .map(|g| g.growing_types().collect())
        .unwrap_or_default();
    let types_height = if growing_types.is_empty() {
        0
    } else {
        (growing_types.len().min(5) + 2) as u16
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(1),
            Constraint::Length(5),
            Constraint::Length(9),
            Constraint::Min(6),
            Constraint::Length(types_height),
            Constraint::Length(1),
        ])
        .split(area);
    frame.render_widget(Paragraph::new(title_line(r, v)), rows[0]);
    frame.render_widget(verdict_box(verdict, v.capture), rows[1]);
    let (rss, heap) = (chart_points(&r.rss), chart_points(&r.heap.series));
    frame.render_widget(memory_chart(r, &rss, &heap), rows[2]);
    let order = sorted_sites(r, v.sort);
    if v.show_stack {
        let halves = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(55), Constraint::Percentage(45)])
            .split(rows[3]);
        sites_table(frame, halves[0], r, &order, v);
        frame.render_widget(stack_box(r, order.get(v.selected).copied()), halves[1]);
    } else {
        sites_table(frame, rows[3], r, &order, v);
    }
    if types_height > 0 {
        frame.render_widget(types_box(&growing_types), rows[4]);
    }
    let keys = format!(
        "q quit · s sort (now: {}) · ↑/↓ select · enter stack · refreshes every second",
        v.sort.word()
    );
    frame.render_widget(
        Paragraph::new(keys).style(Style::default().fg(Color::DarkGray)),
        rows[5],
    );
}

fn title_line(r: &LeakReport, v: &LiveView<'_>) -> Line<'static> {
    let c = &r.capture;
    let state = if c.end.reason.is_some() {
        "finished"
    } else {
        "recording"
    };
    let mut spans = vec![
        Span::styled(
            "memsleuth live",
            Style::default().add_modifier(Modifier::BOLD),
        ),
        // what changes first, so a narrow terminal cuts the command, not the state
        Span::raw(format!(
            " · {state} · {} · {} · {} (pid {})",
            seconds(c.duration()),
            v.capture.display(),
            crate::summary::command(&c.argv, 50),
            c.pid,
        )),
    ];
    if let Some(p) = v.problem {
        spans.push(Span::styled(
            format!(" · {p}"),
            Style::default().fg(Color::Red),
        ));
    }
    Line::from(spans)
}

fn verdict_box<'a>(verdict: &ProgramVerdict, capture: &Path) -> Paragraph<'a> {
    let base = std::env::current_dir().ok();
    let text = crate::verdict::verdict_lines(verdict, capture, base.as_deref());
    // the headline and the first finding's first line: the rest is `report verdict`'s
    let lines: Vec<Line<'a>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(2)
        .map(|l| Line::from(l.trim().to_string()))
        .collect();
    let color = match verdict.state {
        memsleuth_analysis::State::Leaking => Color::Red,
        _ => Color::Green,
    };
    Paragraph::new(lines).wrap(Wrap { trim: true }).block(
        Block::default()
            .borders(Borders::ALL)
            .title("verdict so far")
            .border_style(Style::default().fg(color)),
    )
}

/// `(seconds, bytes)` points of a `(ns, bytes)` series, for the chart.
fn chart_points(series: &[(u64, u64)]) -> Vec<(f64, f64)> {
    series
        .iter()
        .map(|&(t, b)| (t as f64 / 1e9, b as f64))
        .collect()
}

fn memory_chart<'a>(r: &LeakReport, rss: &'a [(f64, f64)], heap: &'a [(f64, f64)]) -> Chart<'a> {
    let end = r.capture.duration().max(0.001);
    let top = rss
        .iter()
        .chain(heap.iter())
        .map(|p| p.1)
        .fold(1.0f64, f64::max)
        * 1.05;
    let last = |s: &[(f64, f64)]| s.last().map_or(0.0, |p| p.1);
    let datasets = vec![
        Dataset::default()
            .name(format!("RSS {}", bytes(last(rss))))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Cyan))
            .data(rss),
        Dataset::default()
            .name(format!("tracked heap {}", bytes(last(heap))))
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::default().fg(Color::Yellow))
            .data(heap),
    ];
    Chart::new(datasets)
        .block(Block::default().borders(Borders::ALL).title("memory"))
        .x_axis(
            Axis::default()
                .bounds([0.0, end])
                .labels(vec![Span::raw("0 s"), Span::raw(seconds(end))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(vec![Span::raw("0"), Span::raw(bytes(top))]),
        )
}

fn sites_table(
    frame: &mut Frame<'_>,
    area: Rect,
    r: &LeakReport,
    order: &[usize],
    v: &LiveView<'_>,
) {
    let base = std::env::current_dir().ok();
    let site_width = area.width.saturating_sub(48).max(20) as usize;
    let rows: Vec<Row<'_>> = order
        .iter()
        .map(|&i| {
            let s = &r.leaks.sites[i];
            let verdict = verdict_cell(s.verdict.as_ref(), s.dismissed);
            let style = if s.growing() && s.dismissed.is_none() {
                Style::default().fg(Color::Red)
            } else {
                Style::default()
            };
            Row::new(vec![
                Cell::from(bytes(s.bytes as f64)),
                Cell::from(count(s.blocks)),
                Cell::from(site_label(&s.location, base.as_deref(), site_width)),
                Cell::from(verdict),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Min(20),
            Constraint::Length(26),
        ],
    )
    .header(
        Row::new(vec!["bytes", "blocks", "site", "verdict"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .block(Block::default().borders(Borders::ALL).title(format!(
        "live memory by allocation site, sorted by {} ({} sites)",
        v.sort.word(),
        count(order.len() as u64)
    )));
    let mut state = TableState::default();
    if !order.is_empty() {
        state.select(Some(v.selected.min(order.len() - 1)));
    }
    frame.render_stateful_widget(table, area, &mut state);
}

fn stack_box(r: &LeakReport, site: Option<usize>) -> Paragraph<'static> {
    let mut lines = Vec::new();
    if let Some(i) = site {
        let s = &r.leaks.sites[i];
        if let Some(stack) = s.stacks.first().and_then(|&k| r.leaks.stacks.get(k)) {
            lines.push(Line::from(format!(
                "{} in {} blocks, innermost first:",
                bytes(stack.bytes as f64),
                count(stack.blocks)
            )));
            for &f in stack.frames.iter().rev() {
                if let Some(loc) = r.leaks.locations.get(f as usize) {
                    lines.push(Line::from(format!("← {}", crate::labels::frame(loc))));
                }
            }
        }
    }
    Paragraph::new(lines).wrap(Wrap { trim: false }).block(
        Block::default()
            .borders(Borders::ALL)
            .title("stack of the selected site"),
    )
}

fn types_box(types: &[&memsleuth_analysis::growth::TypeGrowth]) -> Paragraph<'static> {
    let lines: Vec<Line<'static>> = types
        .iter()
        .take(5)
        .map(|t| {
            let rate = t
                .verdict
                .as_ref()
                .map(|v| crate::growth::count_rate(v.rate))
                .unwrap_or_default();
            Line::from(format!(
                "{:<40} {:>16}  {} alive",
                crate::escape::printable(&t.name),
                rate,
                count(t.to_count)
            ))
        })
        .collect();
    Paragraph::new(lines).block(
        Block::default()
            .borders(Borders::ALL)
            .title("growing types (censuses)"),
    )
}
