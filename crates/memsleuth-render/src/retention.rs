//! Retention paths (who keeps an object alive) as text, JSON, Graphviz DOT and a self-drawn SVG.
//!
//! Several paths often lead to the same or to neighbouring objects through a shared prefix
//! (one module dict holding many sessions); the pictures key objects by address so a shared
//! object is drawn once and the paths read as a tree.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use memsleuth_analysis::heap::{PathStep, RetentionPath, RootKind};

use crate::html::esc;
use crate::plot::{clean_text, truncate};
use crate::units;

/// Longest repr the text form prints; reprs are meant to be short, this guards the terminal.
const TEXT_REPR_MAX: usize = 100;
/// Longest edge and type names the text form aligns on; longer ones are cut.
const TEXT_EDGE_MAX: usize = 40;
const TEXT_TYPE_MAX: usize = 32;
/// Longest repr in a DOT label (Graphviz sizes boxes to labels, so a huge one ruins the layout).
const DOT_REPR_MAX: usize = 80;

fn kind_words(kind: RootKind) -> &'static str {
    match kind {
        RootKind::Module => "module",
        RootKind::ThreadFrame => "thread frame",
        RootKind::GcGarbage => "gc.garbage",
        RootKind::HeldFromC => "held from C",
        RootKind::Unreachable => "unreachable",
    }
}

/// What a root kind means, for the second line of a root box (its first is the root's words).
fn kind_meaning(kind: RootKind) -> &'static str {
    match kind {
        RootKind::Module => "reachable from sys.modules",
        RootKind::ThreadFrame => "a running frame holds it",
        RootKind::GcGarbage => "listed in gc.garbage",
        RootKind::HeldFromC => "referenced from C",
        RootKind::Unreachable => "garbage not yet collected",
    }
}

/// Fill and stroke of a root box: one hue per kind, so a picture of many paths shows at a
/// glance which are held by modules, which by running frames, which by C.
fn kind_colours(kind: RootKind) -> (&'static str, &'static str) {
    match kind {
        RootKind::Module => ("#dbeafe", "#1d4ed8"),
        RootKind::ThreadFrame => ("#dcfce7", "#15803d"),
        RootKind::GcGarbage => ("#fef3c7", "#b45309"),
        RootKind::HeldFromC => ("#ede9fe", "#6d28d9"),
        RootKind::Unreachable => ("#e5e7eb", "#374151"),
    }
}

const TARGET_COLOURS: (&str, &str) = ("#fee2e2", "#dc2626");
const OBJECT_COLOURS: (&str, &str) = ("#ffffff", "#9ca3af");

fn size(n: u64) -> String {
    units::bytes(n as f64)
}

// --- text ------------------------------------------------------------------------------------

/// The paths for a terminal, one block per path: the root in words, then each object with the
/// edge that reaches it, its type, shallow size and repr, arrows aligned:
///
/// ```text
/// module app.cache
///                 module       72 B  <module 'app.cache'>
///   .CACHE      → dict     36.1 KiB  dict (1,204 items)
///   ['user:42'] → Session     312 B  <Session object at 0x7f3a10>  (target)
/// ```
///
/// Several paths are numbered (`path 2 of 3: ...`) and separated by a blank line.
pub fn paths_text(paths: &[RetentionPath]) -> String {
    if paths.is_empty() {
        return "no retention path found\n".to_string();
    }
    let mut out = String::new();
    for (i, path) in paths.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let root = clean_text(&path.root);
        if paths.len() > 1 {
            let _ = writeln!(out, "path {} of {}: {root}", i + 1, paths.len());
        } else {
            let _ = writeln!(out, "{root}");
        }
        let edges: Vec<String> = path
            .steps
            .iter()
            .map(|s| truncate(&clean_text(&s.edge), TEXT_EDGE_MAX))
            .collect();
        let types: Vec<String> = path
            .steps
            .iter()
            .map(|s| truncate(&clean_text(&s.type_name), TEXT_TYPE_MAX))
            .collect();
        let sizes: Vec<String> = path.steps.iter().map(|s| size(s.size)).collect();
        let ew = edges.iter().map(|e| e.chars().count()).max().unwrap_or(0);
        let tw = types.iter().map(|t| t.chars().count()).max().unwrap_or(0);
        let sw = sizes.iter().map(String::len).max().unwrap_or(0);
        let last = path.steps.len().saturating_sub(1);
        for (j, step) in path.steps.iter().enumerate() {
            let arrow = if j == 0 { " " } else { "→" };
            let repr = truncate(&clean_text(&step.repr), TEXT_REPR_MAX);
            let mut line = format!(
                "  {:<ew$} {arrow} {:<tw$}  {:>sw$}  {repr}",
                edges[j], types[j], sizes[j]
            );
            if j == last {
                line.push_str("  (target)");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

// --- JSON ------------------------------------------------------------------------------------

/// The paths as a JSON array, exactly the model's fields.
pub fn paths_json(paths: &[RetentionPath]) -> String {
    serde_json::to_string_pretty(paths).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

// --- the merged graph the pictures draw ------------------------------------------------------

/// What a box stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Root(RootKind),
    Object,
    Target,
}

#[derive(Debug)]
struct Node<'a> {
    role: Role,
    /// The path step, `None` for a root description.
    step: Option<&'a PathStep>,
    /// The root's words, for a root description.
    root: &'a str,
    /// Where the layered layout puts the box: column (which path opened it), row (depth).
    col: usize,
    row: usize,
}

/// The nodes and edges of all paths, shared objects (same address) and shared roots (same
/// kind and words) merged, duplicate edges dropped; in first-seen order so output is stable.
#[derive(Debug, Default)]
struct Merged<'a> {
    nodes: Vec<Node<'a>>,
    /// from, to, label (empty for the root-to-first-object link)
    edges: Vec<(usize, usize, &'a str)>,
    cols: usize,
    rows: usize,
}

#[derive(Debug, PartialEq, Eq, Hash)]
enum Key<'a> {
    Root(RootKind, &'a str),
    Addr(u64),
    /// An object without a known address is never merged.
    Step(usize, usize),
}

fn merge(paths: &[RetentionPath]) -> Merged<'_> {
    let mut m = Merged::default();
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut seen_edges: HashSet<(usize, usize, &str)> = HashSet::new();
    let mut occupied: HashSet<(usize, usize)> = HashSet::new();
    for (p, path) in paths.iter().enumerate() {
        let keys: Vec<Key<'_>> = path
            .steps
            .iter()
            .enumerate()
            .map(|(j, step)| {
                if step.addr != 0 {
                    Key::Addr(step.addr)
                } else {
                    Key::Step(p, j)
                }
            })
            .collect();
        // a path gets its own column only if it brings a box not drawn yet
        let mut col = None;
        let mut place = |m: &mut Merged<'_>, row: usize| -> (usize, usize) {
            let mut c = *col.get_or_insert(m.cols);
            if c == m.cols {
                m.cols += 1;
            }
            // a path that rejoins drawn objects at a shallower depth may come back to a row
            // its column already uses; that box goes in a column of its own
            if !occupied.insert((c, row)) {
                c = m.cols;
                m.cols += 1;
                occupied.insert((c, row));
            }
            m.rows = m.rows.max(row + 1);
            (c, row)
        };
        let root_key = Key::Root(path.root_kind, &path.root);
        let mut prev = match index.get(&root_key) {
            Some(&i) => i,
            None => {
                // right above its first object when that is drawn already, so the link is one
                // row long like every other
                let row = keys
                    .first()
                    .and_then(|k| index.get(k))
                    .map_or(0, |&i| m.nodes[i].row.saturating_sub(1));
                let (col, row) = place(&mut m, row);
                m.nodes.push(Node {
                    role: Role::Root(path.root_kind),
                    step: None,
                    root: &path.root,
                    col,
                    row,
                });
                index.insert(root_key, m.nodes.len() - 1);
                m.nodes.len() - 1
            }
        };
        let last = path.steps.len().saturating_sub(1);
        for ((j, step), key) in path.steps.iter().enumerate().zip(keys) {
            let i = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let row = m.nodes[prev].row + 1;
                    let (col, row) = place(&mut m, row);
                    m.nodes.push(Node {
                        role: Role::Object,
                        step: Some(step),
                        root: "",
                        col,
                        row,
                    });
                    index.insert(key, m.nodes.len() - 1);
                    m.nodes.len() - 1
                }
            };
            // the end of any path is highlighted, even where another path passes through
            if j == last {
                m.nodes[i].role = Role::Target;
            }
            let label = if j == 0 { "" } else { step.edge.as_str() };
            if prev != i && seen_edges.insert((prev, i, label)) {
                m.edges.push((prev, i, label));
            }
            prev = i;
        }
    }
    m
}

// --- DOT -------------------------------------------------------------------------------------

/// A DOT double-quoted string. Control characters are already gone (`clean_text`); line breaks
/// wanted in a label are added by the caller as `\n` after quoting each piece.
fn dot_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

fn dot_id(i: usize, node: &Node<'_>) -> String {
    match node.step {
        Some(step) if step.addr != 0 => format!("n{:x}", step.addr),
        Some(_) => format!("s{i}"),
        None => format!("r{i}"),
    }
}

/// The paths as a Graphviz digraph (`dot -Tsvg`), objects keyed by address so shared prefixes
/// merge, edges labelled with how each object refers to the next.
pub fn paths_dot(paths: &[RetentionPath]) -> String {
    let m = merge(paths);
    let mut out = String::from(
        "digraph retention {\n  rankdir=TB;\n  \
         node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", fontsize=10];\n  \
         edge [fontname=\"Helvetica\", fontsize=9];\n",
    );
    let ids: Vec<String> = m
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| dot_id(i, n))
        .collect();
    for (node, id) in m.nodes.iter().zip(&ids) {
        let (label, (fill, stroke), extra) = match (node.role, node.step) {
            (Role::Root(kind), _) => (
                format!(
                    "{}\\n{}",
                    dot_quote(kind_words(kind)),
                    dot_quote(&clean_text(node.root))
                ),
                kind_colours(kind),
                ", shape=box, style=\"filled,bold\"",
            ),
            (role, Some(step)) => (
                format!(
                    "{} · {}\\n{}",
                    dot_quote(&clean_text(&step.type_name)),
                    size(step.size),
                    dot_quote(&truncate(&clean_text(&step.repr), DOT_REPR_MAX))
                ),
                if role == Role::Target {
                    TARGET_COLOURS
                } else {
                    OBJECT_COLOURS
                },
                if role == Role::Target {
                    ", penwidth=2"
                } else {
                    ""
                },
            ),
            (_, None) => continue,
        };
        let _ = writeln!(
            out,
            "  {id} [label=\"{label}\", fillcolor=\"{fill}\", color=\"{stroke}\"{extra}];"
        );
    }
    for &(from, to, label) in &m.edges {
        if label.is_empty() {
            let _ = writeln!(out, "  {} -> {} [style=dashed];", ids[from], ids[to]);
        } else {
            let _ = writeln!(
                out,
                "  {} -> {} [label=\"{}\"];",
                ids[from],
                ids[to],
                dot_quote(&clean_text(label))
            );
        }
    }
    out.push_str("}\n");
    out
}

// --- SVG -------------------------------------------------------------------------------------

const BOX_W: f64 = 300.0;
const BOX_H: f64 = 44.0;
const COL_GAP: f64 = 60.0;
/// Room between rows for the arrow and its label.
const ROW_GAP: f64 = 50.0;
const MARGIN: f64 = 16.0;
const PAD: f64 = 10.0;
const FONT: f64 = 12.0;
/// Characters that fit on a box line: the font is monospace, about 0.6 em a character.
const LINE_CHARS: usize = ((BOX_W - 2.0 * PAD) / (FONT * 0.6)) as usize;
const EDGE_LABEL_CHARS: usize = 28;
/// Longest text in a box's hover tooltip.
const TOOLTIP_MAX: usize = 200;

fn box_origin(node: &Node<'_>) -> (f64, f64) {
    (
        MARGIN + node.col as f64 * (BOX_W + COL_GAP),
        MARGIN + node.row as f64 * (BOX_H + ROW_GAP),
    )
}

/// Where the segment from the centre of a box in direction `(dx, dy)` leaves the box.
fn border_point(cx: f64, cy: f64, dx: f64, dy: f64) -> (f64, f64) {
    let tx = if dx == 0.0 {
        f64::INFINITY
    } else {
        (BOX_W / 2.0) / dx.abs()
    };
    let ty = if dy == 0.0 {
        f64::INFINITY
    } else {
        (BOX_H / 2.0) / dy.abs()
    };
    let t = tx.min(ty);
    (cx + t * dx, cy + t * dy)
}

/// Text for a box line: control characters replaced, cut to the box, escaped for XML.
fn line_text(s: &str, max: usize) -> String {
    esc(&truncate(&clean_text(s), max))
}

/// The paths as a self-contained SVG picture: one rounded box per object (type, size, repr),
/// arrows labelled with the edge, root boxes coloured by kind, targets in red. The layout is
/// layered: a row per depth from the root, a column per path that brings new objects, so paths
/// sharing a prefix branch off the column that drew it.
pub fn paths_svg(paths: &[RetentionPath]) -> String {
    let m = merge(paths);
    let cols = m.cols.max(1);
    let rows = m.rows.max(1);
    let width = 2.0 * MARGIN + cols as f64 * BOX_W + (cols - 1) as f64 * COL_GAP;
    let height = 2.0 * MARGIN + rows as f64 * BOX_H + (rows - 1) as f64 * ROW_GAP;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"ui-monospace, Menlo, Consolas, \
         'DejaVu Sans Mono', monospace\" font-size=\"{FONT}\">"
    );
    out.push_str(
        "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" \
         markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\">\
         <path d=\"M0,0 L10,5 L0,10 z\" fill=\"#4b5563\"/></marker></defs>\n",
    );
    let _ = writeln!(
        out,
        "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    if m.nodes.is_empty() {
        let _ = writeln!(
            out,
            "<text x=\"{MARGIN}\" y=\"{:.0}\" fill=\"#4b5563\">no retention path found</text>",
            MARGIN + FONT
        );
    }

    // arrows first, so boxes cover their ends; their labels last, over everything
    let mut labels = String::new();
    for &(from, to, label) in &m.edges {
        let (a, b) = (&m.nodes[from], &m.nodes[to]);
        let (ax, ay) = box_origin(a);
        let (bx, by) = box_origin(b);
        let dash = if label.is_empty() {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let label_at = if b.row == a.row + 1 {
            // the usual case, one row down: a tree-like elbow (down, across, down) so branches
            // to other columns leave from the same stub; the label sits by the last leg, below
            // the horizontal one
            let (x1, y1) = (ax + BOX_W / 2.0, ay + BOX_H);
            let (x2, y2) = (bx + BOX_W / 2.0, by);
            let ym = y1 + ROW_GAP / 2.0;
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1},{y1:.1} V{ym:.1} H{x2:.1} V{y2:.1}\" fill=\"none\" \
                 stroke=\"#4b5563\" stroke-width=\"1.3\"{dash} marker-end=\"url(#arrow)\"/>"
            );
            (x2 + 6.0, (ym + y2) / 2.0 + 4.0, "start")
        } else {
            // a merge at another depth: straight, from border to border
            let (acx, acy) = (ax + BOX_W / 2.0, ay + BOX_H / 2.0);
            let (bcx, bcy) = (bx + BOX_W / 2.0, by + BOX_H / 2.0);
            let (dx, dy) = (bcx - acx, bcy - acy);
            let (x1, y1) = border_point(acx, acy, dx, dy);
            let (x2, y2) = border_point(bcx, bcy, -dx, -dy);
            let _ = writeln!(
                out,
                "<path d=\"M{x1:.1},{y1:.1} L{x2:.1},{y2:.1}\" fill=\"none\" \
                 stroke=\"#4b5563\" stroke-width=\"1.3\"{dash} marker-end=\"url(#arrow)\"/>"
            );
            if dy.abs() < 1.0 {
                // across one row: above the line, centred, so the arrow stays visible
                ((x1 + x2) / 2.0, y1 - 6.0, "middle")
            } else {
                ((x1 + x2) / 2.0 + 6.0, (y1 + y2) / 2.0 + 4.0, "start")
            }
        };
        if !label.is_empty() {
            // haloed in white so it stays legible where it crosses another arrow
            let (lx, ly, anchor) = label_at;
            let _ = writeln!(
                labels,
                "<text x=\"{lx:.1}\" y=\"{ly:.1}\" text-anchor=\"{anchor}\" font-size=\"11\" \
                 fill=\"#374151\" stroke=\"#ffffff\" stroke-width=\"3\" \
                 paint-order=\"stroke\">{}</text>",
                line_text(label, EDGE_LABEL_CHARS)
            );
        }
    }

    for node in &m.nodes {
        let (x, y) = box_origin(node);
        let (fill, stroke, stroke_width) = match node.role {
            Role::Root(kind) => {
                let (f, s) = kind_colours(kind);
                (f, s, 2.0)
            }
            Role::Target => (TARGET_COLOURS.0, TARGET_COLOURS.1, 2.5),
            Role::Object => (OBJECT_COLOURS.0, OBJECT_COLOURS.1, 1.0),
        };
        // first line: bold title, with the size right-aligned in the same line when known;
        // second line: the description
        let (title, size_text, second, second_colour, tooltip) = match (node.role, node.step) {
            (Role::Root(kind), _) => (
                truncate(&clean_text(node.root), LINE_CHARS),
                String::new(),
                kind_meaning(kind).to_string(),
                stroke,
                format!("{} ({})", node.root, kind_meaning(kind)),
            ),
            (_, Some(step)) => {
                let size = size(step.size);
                // the size always shows; the type name gives way
                let room = LINE_CHARS.saturating_sub(size.len() + 2).max(4);
                (
                    truncate(&clean_text(&step.type_name), room),
                    size.clone(),
                    truncate(&clean_text(&step.repr), LINE_CHARS),
                    "#374151",
                    format!(
                        "{} at 0x{:x}, {size}: {}",
                        step.type_name, step.addr, step.repr
                    ),
                )
            }
            (_, None) => continue,
        };
        let _ = writeln!(
            out,
            "<g><title>{}</title>\n<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{BOX_W}\" \
             height=\"{BOX_H}\" rx=\"8\" ry=\"8\" fill=\"{fill}\" stroke=\"{stroke}\" \
             stroke-width=\"{stroke_width}\"/>",
            line_text(&tooltip, TOOLTIP_MAX)
        );
        let first_y = y + PAD + FONT * 0.85;
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{first_y:.1}\" font-weight=\"bold\" fill=\"#111827\">{}</text>",
            x + PAD,
            esc(&title)
        );
        if !size_text.is_empty() {
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{first_y:.1}\" text-anchor=\"end\" fill=\"#6b7280\">{}</text>",
                x + BOX_W - PAD,
                esc(&size_text)
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{second_colour}\">{}</text>\n</g>",
            x + PAD,
            first_y + FONT * 1.5,
            esc(&second)
        );
    }
    out.push_str(&labels);
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(edge: &str, type_name: &str, repr: &str, addr: u64, size: u64) -> PathStep {
        PathStep {
            edge: edge.to_string(),
            type_name: type_name.to_string(),
            repr: repr.to_string(),
            addr,
            size,
        }
    }

    /// Two sessions held by one module-level cache dict, and a buffer held by a running frame.
    fn sample() -> Vec<RetentionPath> {
        let module = step("", "module", "<module 'app.cache'>", 0x10, 72);
        let dict = step(".CACHE", "dict", "dict (1,204 items)", 0x20, 36_960);
        vec![
            RetentionPath {
                root_kind: RootKind::Module,
                root: "module app.cache".into(),
                steps: vec![
                    module.clone(),
                    dict.clone(),
                    step(
                        "['user:42']",
                        "Session",
                        "<Session object at 0x30>",
                        0x30,
                        312,
                    ),
                ],
            },
            RetentionPath {
                root_kind: RootKind::Module,
                root: "module app.cache".into(),
                steps: vec![
                    module,
                    dict,
                    step(
                        "['user:\"7\"']",
                        "Session",
                        "<Session object at 0x40>",
                        0x40,
                        312,
                    ),
                ],
            },
            RetentionPath {
                root_kind: RootKind::ThreadFrame,
                root: "thread MainThread, frame serve (app.py:12)".into(),
                steps: vec![
                    step("", "frame", "<frame serve>", 0x50, 400),
                    step(
                        "local 'buf'",
                        "bytearray",
                        "bytearray(1048576)",
                        0x60,
                        1_048_633,
                    ),
                ],
            },
        ]
    }

    #[test]
    fn text_reads_root_then_edges_in_order() {
        let paths = sample();
        let text = paths_text(&paths[..1]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "module app.cache", "{text}");
        assert!(
            lines[1].contains("module") && lines[1].contains("72 B"),
            "{text}"
        );
        assert!(
            lines[2].contains(".CACHE") && lines[2].contains("→ dict"),
            "{text}"
        );
        assert!(lines[2].contains("36.1 KiB") && lines[2].contains("dict (1,204 items)"));
        assert!(lines[3].contains("['user:42']") && lines[3].contains("→ Session"));
        assert!(lines[3].ends_with("(target)"), "{text}");
        assert_eq!(lines.len(), 4);
        // arrows line up, whatever the edge lengths
        let col = |l: &str| l.find('→').expect("arrow");
        assert_eq!(col(lines[2]), col(lines[3]));

        let all = paths_text(&paths);
        assert!(all.starts_with("path 1 of 3: module app.cache\n"), "{all}");
        let frame = all.find("path 3 of 3: thread MainThread, frame serve (app.py:12)");
        let buf = all.find("local 'buf'");
        assert!(frame.is_some() && buf > frame, "{all}");
        assert!(all.contains("1.0 MiB"), "{all}");
        assert_eq!(all.matches("(target)").count(), 3);
        assert_eq!(paths_text(&[]), "no retention path found\n");
    }

    #[test]
    fn text_keeps_a_hostile_repr_on_one_line() {
        let mut paths = sample();
        paths[0].steps[2].repr = format!("line\nbreak{}", "x".repeat(10_000));
        let text = paths_text(&paths[..1]);
        assert_eq!(text.lines().count(), 4);
        assert!(text.len() < 1_000);
        assert!(text.contains('…'));
    }

    #[test]
    fn json_is_the_model() {
        let json: serde_json::Value =
            serde_json::from_str(&paths_json(&sample())).expect("valid JSON");
        let paths = json.as_array().expect("array");
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[0]["root_kind"], "module");
        assert_eq!(paths[2]["root_kind"], "thread_frame");
        assert_eq!(paths[0]["steps"][1]["edge"], ".CACHE");
        assert_eq!(paths[0]["steps"][2]["addr"], 0x30);
    }

    #[test]
    fn dot_merges_shared_objects_and_escapes() {
        let mut paths = sample();
        paths[1].steps[2].repr = "a \"quoted\" C:\\path\nnext".into();
        let dot = paths_dot(&paths);
        assert!(dot.starts_with("digraph retention {\n") && dot.ends_with("}\n"));
        let node_lines: Vec<&str> = dot
            .lines()
            .filter(|l| l.contains("[label=") && !l.contains("->"))
            .collect();
        // 2 roots; module, dict, 2 sessions, frame, bytearray
        assert_eq!(node_lines.len(), 8, "{dot}");
        assert_eq!(dot.matches("  n20 [label=").count(), 1, "{dot}");
        let edge_lines = dot.lines().filter(|l| l.contains("->")).count();
        // root->module, module->dict, dict->42, dict->7, root->frame, frame->buf
        assert_eq!(edge_lines, 6, "{dot}");
        assert!(dot.contains("n20 -> n30 [label=\"['user:42']\"];"), "{dot}");
        assert!(dot.contains("[label=\"['user:\\\"7\\\"']\"]"), "{dot}");
        assert!(
            dot.contains("a \\\"quoted\\\" C:\\\\path\\\\nnext"),
            "{dot}"
        );
        // every statement stays on one line
        for line in dot.lines().skip(1) {
            assert!(line.ends_with(';') || line == "}", "{line:?}");
        }
        assert!(dot.contains("n40 [label=") && dot.contains("penwidth=2"));
    }

    /// Well-formedness of the subset of XML the SVG uses: elements nest, attribute values are
    /// quoted, `&` starts only the five predefined entities, no control characters.
    fn check_xml(xml: &str) {
        assert!(
            !xml.chars().any(|c| c.is_control() && c != '\n'),
            "control character in XML"
        );
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = xml;
        let check_text = |t: &str| {
            let mut parts = t.split('&');
            parts.next();
            for p in parts {
                assert!(
                    ["amp;", "lt;", "gt;", "quot;", "#39;"]
                        .iter()
                        .any(|e| p.starts_with(e)),
                    "bad entity in {t:?}"
                );
            }
        };
        while let Some(start) = rest.find('<') {
            check_text(&rest[..start]);
            let end = rest[start..].find('>').expect("tag closes") + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop(), Some(name), "closing {name}");
                continue;
            }
            let self_closing = tag.ends_with('/');
            let tag = tag.trim_end_matches('/');
            let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
                    && !name.is_empty(),
                "bad element name {name:?}"
            );
            assert_eq!(
                attrs.matches('"').count() % 2,
                0,
                "unbalanced quotes: {tag}"
            );
            check_text(attrs);
            if stack.is_empty() {
                roots += 1;
            }
            if !self_closing {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
        assert_eq!(roots, 1);
        assert!(rest.trim().is_empty());
    }

    fn texts(svg: &str) -> Vec<&str> {
        svg.split("<text ")
            .skip(1)
            .map(|t| {
                let t = &t[t.find('>').expect("text tag") + 1..];
                &t[..t.find("</text>").expect("closed")]
            })
            .collect()
    }

    #[test]
    fn svg_draws_shared_objects_once_and_escapes_labels() {
        let paths = sample();
        let svg = paths_svg(&paths);
        check_xml(&svg);
        // 2 roots + 6 objects
        assert_eq!(svg.matches("<rect x=").count(), 8, "{svg}");
        assert_eq!(svg.matches("marker-end=").count(), 6);
        let texts = texts(&svg);
        for label in [
            ".CACHE",
            "[&#39;user:42&#39;]",
            "[&#39;user:&quot;7&quot;&#39;]",
            "local &#39;buf&#39;",
            "&lt;Session object at 0x30&gt;",
            "dict (1,204 items)",
            "module app.cache",
            "reachable from sys.modules",
            "thread MainThread, frame serve (app.p…",
            "a running frame holds it",
        ] {
            assert!(texts.contains(&label), "{label} not among {texts:?}");
        }
        assert_eq!(texts.iter().filter(|&&t| t == "Session").count(), 2);
        assert_eq!(texts.iter().filter(|&&t| t == "312 B").count(), 2);
        // the two roots differ in colour, the targets are red
        assert!(svg.contains("#1d4ed8") && svg.contains("#15803d"));
        assert_eq!(svg.matches(TARGET_COLOURS.1).count(), 3);
    }

    #[test]
    fn svg_truncates_a_huge_repr() {
        let mut paths = sample();
        paths.truncate(1);
        paths[0].steps[2].repr = format!("<{}&\u{1}>", "x".repeat(10_000));
        paths[0].steps[1].edge = "e".repeat(500);
        let svg = paths_svg(&paths);
        check_xml(&svg);
        assert!(svg.len() < 6_000, "{} bytes", svg.len());
        let texts = texts(&svg);
        let repr = texts
            .iter()
            .find(|t| t.starts_with("&lt;xxx"))
            .expect("repr drawn");
        assert_eq!(repr.chars().count(), LINE_CHARS + 3, "{repr}");
        assert!(repr.ends_with('…'));
        let edge = texts.iter().find(|t| t.starts_with("eee")).expect("edge");
        assert_eq!(edge.chars().count(), EDGE_LABEL_CHARS);
        for t in &texts {
            let visible = t
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            assert!(visible.chars().count() <= LINE_CHARS, "{t}");
        }
    }

    #[test]
    fn svg_of_nothing_is_still_a_picture() {
        let svg = paths_svg(&[]);
        check_xml(&svg);
        assert!(svg.contains("no retention path found"));
    }
}
