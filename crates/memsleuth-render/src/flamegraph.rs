//! A stack [`Profile`] as one self-contained interactive HTML page: a timeline of tracked heap
//! and RSS on which a time window can be selected, an icicle graph of bytes by stack (zoom,
//! search, tooltips) restricted to what was allocated in that window, and the top allocation
//! sites. No network, no external scripts or fonts: CSS, JavaScript and data are inline.
//!
//! The Rust side does the heavy lifting so that the browser stays responsive with tens of
//! thousands of deep stacks: identical frames at the same position in the call tree are merged
//! here into a compact tree (parents before children), each node carrying only what was
//! allocated in it directly, split by time bin; long memory series are downsampled keeping
//! their minima and maxima. The script then needs one pass over the leaves and one over the
//! nodes to recompute the graph for any time window, and draws on a canvas, merging frames
//! narrower than 0.1% of the view into one "smaller" cell per caller.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use memsleuth_analysis::{EndInfo, Location, Profile};
use serde::Serialize;

use crate::collapsed::NO_FRAME;
use crate::escape::printable;
use crate::html::esc;
use crate::units;

/// The viewer's script, plain JavaScript.
const SCRIPT: &str = include_str!("../assets/flamegraph.js");
/// The viewer's style sheet.
const STYLE: &str = include_str!("../assets/flamegraph.css");

/// Memory series longer than this are downsampled (min and max per bucket) for the timeline.
const MAX_SERIES_POINTS: usize = 4000;
/// Rows of the static table of allocation sites.
const TOP_SITES: usize = 20;

/// Writes the whole page; `end`, how the capture ended, is said at the top when it did not end
/// properly.
pub fn flamegraph_html(profile: &Profile, end: &EndInfo, out: &mut impl Write) -> io::Result<()> {
    let data = ViewData::from_profile(profile);
    let mut json = serde_json::to_vec(&data).map_err(io::Error::other)?;
    script_safe_json(&mut json);

    let title = crate::labels::profile_title(profile);
    let what = crate::labels::profile_what(profile);
    let mut head = String::with_capacity(STYLE.len() + 8192);
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        head,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>memsleuth · {}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n",
        esc(&title)
    );
    let _ = writeln!(
        head,
        "<header>\n<p class=\"tool\">memsleuth flame graph</p>\n<h1>{}</h1>",
        esc(&title)
    );
    let _ = writeln!(head, "<p class=\"what\">{}</p>", esc(&what));
    let total = profile.total_bytes();
    let _ = write!(
        head,
        "<p class=\"totals\"><strong>{}</strong> ({} bytes) in <strong>{}</strong> blocks from \
         {} stacks",
        esc(&units::bytes(total as f64)),
        units::count(total),
        units::count(profile.total_count()),
        units::count(profile.stacks.len() as u64)
    );
    if profile.sampled {
        let _ = write!(
            head,
            "<span class=\"badge\" title=\"allocations were sampled by bytes; values are \
             estimates\">estimated (sampled)</span>"
        );
    }
    let _ = writeln!(head, "</p>\n</header>");
    head.push_str(&crate::ending::html_banner(end));
    let _ = writeln!(
        head,
        "<noscript><p class=\"muted\">The timeline and the flame graph need JavaScript; the \
         table of allocation sites below is complete for the whole run.</p></noscript>"
    );

    // The timeline and the window selection.
    let _ = writeln!(
        head,
        "<section class=\"panel\" id=\"timeline-panel\">\n<div class=\"bar\"><h2>Memory over \
         time</h2><span id=\"window-text\" class=\"grow\">whole run</span>\
         <button id=\"whole-run\" type=\"button\" disabled>whole run</button></div>\n\
         <div id=\"timeline\"></div>\n<div class=\"legend\" id=\"legend\"></div>\n\
         <p class=\"hint\" id=\"tl-hint\">Drag across the timeline to show only the bytes \
         allocated in that window; click to pick one time bin ({}).</p>\n</section>",
        esc(&bin_width_text(profile.bin_ns))
    );

    // The flame graph.
    let _ = writeln!(
        head,
        "<section class=\"panel\" id=\"flame-panel\">\n<div class=\"bar\"><h2>Bytes by stack\
         </h2><input id=\"search\" type=\"search\" placeholder=\"search frames (text or /regex/)\" \
         aria-label=\"search frames\" spellcheck=\"false\"><span id=\"match-text\"></span>\
         <span class=\"grow\"></span><span id=\"zoom-text\"></span>\
         <button id=\"reset-zoom\" type=\"button\" disabled>reset zoom</button></div>\n\
         <div id=\"flame-wrap\"><canvas id=\"flame\" height=\"0\"></canvas></div>\n\
         <p class=\"muted\" id=\"flame-note\"></p>\n\
         <p class=\"hint\">Callers above callees; width is bytes. Hover for details, click a \
         frame to zoom into it, click an ancestor (faded) or \"reset zoom\" to go back.</p>\n\
         </section>\n<div id=\"tooltip\" hidden></div>"
    );

    // The top allocation sites, whole run; the script redraws it for a window.
    let _ = writeln!(
        head,
        "<section class=\"panel\" id=\"sites\">\n<div class=\"bar\"><h2>Top {TOP_SITES} \
         allocation sites</h2><span class=\"muted\" id=\"sites-scope\">whole run</span></div>\n\
         <table>\n<thead><tr><th class=\"num\">#</th><th>site (innermost frame)</th>\
         <th class=\"num\">bytes</th><th class=\"num\">blocks</th>\
         <th class=\"num\">% of total</th></tr></thead>\n<tbody id=\"sites-body\">"
    );
    let sites = top_sites(profile, TOP_SITES);
    if sites.is_empty() {
        let _ = writeln!(
            head,
            "<tr><td colspan=\"5\" class=\"muted\">nothing allocated</td></tr>"
        );
    }
    for (rank, (label, bytes, count)) in sites.iter().enumerate() {
        let pct = if total > 0 {
            *bytes as f64 * 100.0 / total as f64
        } else {
            0.0
        };
        let _ = writeln!(
            head,
            "<tr><td class=\"num\">{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{pct:.1}%</td></tr>",
            rank + 1,
            esc(label),
            esc(&units::bytes(*bytes as f64)),
            units::count(*count)
        );
    }
    let _ = writeln!(head, "</tbody>\n</table>\n</section>");
    let _ = write!(head, "<script type=\"application/json\" id=\"ms-data\">");

    out.write_all(head.as_bytes())?;
    out.write_all(&json)?;
    out.write_all(b"</script>\n<script>\n")?;
    out.write_all(SCRIPT.as_bytes())?;
    out.write_all(b"</script>\n</main>\n</body>\n</html>\n")?;
    Ok(())
}

/// What the page's script gets, as JSON (see the header of `assets/flamegraph.js`).
#[derive(Debug, Serialize)]
struct ViewData {
    title: String,
    what: String,
    sampled: bool,
    total_bytes: u64,
    total_count: u64,
    stacks: usize,
    bin_ns: u64,
    bins: u32,
    end_ns: u64,
    /// Distinct locations: label, and the index of the file in `files`.
    labels: Vec<String>,
    files: Vec<String>,
    loc_file: Vec<u32>,
    /// The merged call tree: node 0 is the root (parent -1, loc -1); parents come first.
    parent: Vec<i64>,
    loc: Vec<i64>,
    /// What each node allocated itself, for the nodes that did.
    leaf_node: Vec<u32>,
    leaf_bytes: Vec<u64>,
    leaf_count: Vec<u64>,
    /// Per leaf, `[bin - previous bin, bytes, count, ...]`, ascending by bin.
    leaf_bins: Vec<Vec<u64>>,
    /// `[t_ns, bytes, ...]`, downsampled.
    heap: Vec<u64>,
    rss: Vec<u64>,
}

impl ViewData {
    fn from_profile(profile: &Profile) -> Self {
        let mut sites = Sites::default();
        let canon: Vec<u32> = profile.locations.iter().map(|l| sites.id(l)).collect();

        let mut parent: Vec<i64> = vec![-1];
        let mut loc: Vec<i64> = vec![-1];
        let mut child: HashMap<(u32, u32), u32> = HashMap::new();
        let mut leaf_of: HashMap<u32, usize> = HashMap::new();
        let mut leaves: Vec<Leaf> = Vec::new();
        let mut path: Vec<u32> = Vec::new();

        for stack in &profile.stacks {
            path.clear();
            if stack.frames.is_empty() {
                path.push(sites.id(&synthetic(NO_FRAME)));
            }
            for &f in &stack.frames {
                let id = match canon.get(f as usize) {
                    Some(&id) => id,
                    None => sites.id(&synthetic("[unknown frame]")),
                };
                path.push(id);
            }
            let mut node = 0u32;
            for &site in &path {
                node = *child.entry((node, site)).or_insert_with(|| {
                    parent.push(i64::from(node));
                    loc.push(i64::from(site));
                    (parent.len() - 1) as u32
                });
            }
            match leaf_of.get(&node) {
                Some(&i) => {
                    let leaf = &mut leaves[i];
                    // saturating: a damaged capture can claim blocks of any size
                    leaf.1 = leaf.1.saturating_add(stack.bytes);
                    leaf.2 = leaf.2.saturating_add(stack.count);
                    leaf.3 = merge_bins(&leaf.3, &stack.bins);
                }
                None => {
                    leaf_of.insert(node, leaves.len());
                    leaves.push((node, stack.bytes, stack.count, stack.bins.clone()));
                }
            }
        }

        let mut data = ViewData {
            title: crate::labels::profile_title(profile),
            what: crate::labels::profile_what(profile),
            sampled: profile.sampled,
            total_bytes: profile.total_bytes(),
            total_count: profile.total_count(),
            stacks: profile.stacks.len(),
            bin_ns: profile.bin_ns,
            bins: profile.bins,
            end_ns: end_ns(profile),
            labels: sites.labels,
            files: sites.files,
            loc_file: sites.loc_file,
            parent,
            loc,
            leaf_node: Vec::with_capacity(leaves.len()),
            leaf_bytes: Vec::with_capacity(leaves.len()),
            leaf_count: Vec::with_capacity(leaves.len()),
            leaf_bins: Vec::with_capacity(leaves.len()),
            heap: downsample(&profile.heap, MAX_SERIES_POINTS),
            rss: downsample(&profile.rss, MAX_SERIES_POINTS),
        };
        for (node, bytes, count, bins) in leaves {
            data.leaf_node.push(node);
            data.leaf_bytes.push(bytes);
            data.leaf_count.push(count);
            let mut flat = Vec::with_capacity(bins.len() * 3);
            let mut prev = 0u32;
            for (bin, b, c) in bins {
                flat.extend([u64::from(bin.saturating_sub(prev)), b, c]);
                prev = bin;
            }
            data.leaf_bins.push(flat);
        }
        data
    }
}

/// What one tree node allocated itself: node, bytes, blocks, and `(bin, bytes, blocks)` by bin.
type Leaf = (u32, u64, u64, Vec<(u32, u64, u64)>);

/// Distinct locations (equal locations under different indexes are one), their labels and files.
#[derive(Debug, Default)]
struct Sites {
    ids: HashMap<Location, u32>,
    labels: Vec<String>,
    files: Vec<String>,
    file_ids: HashMap<String, u32>,
    loc_file: Vec<u32>,
}

impl Sites {
    fn id(&mut self, loc: &Location) -> u32 {
        if let Some(&id) = self.ids.get(loc) {
            return id;
        }
        let id = self.labels.len() as u32;
        // drawn and searched as shown: control characters spelled out, as in every report
        self.labels
            .push(printable(&crate::labels::frame(loc)).into_owned());
        let next_file = self.files.len() as u32;
        let file = *self.file_ids.entry(loc.file.clone()).or_insert(next_file);
        if file == next_file {
            self.files.push(printable(&loc.file).into_owned());
        }
        self.loc_file.push(file);
        self.ids.insert(loc.clone(), id);
        id
    }
}

fn synthetic(name: &str) -> Location {
    Location {
        function: name.to_string(),
        file: String::new(),
        line: 0,
        library: String::new(),
    }
}

/// Sum of two bin lists, each ascending by bin.
fn merge_bins(a: &[(u32, u64, u64)], b: &[(u32, u64, u64)]) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.0 == y.0 => {
                out.push((x.0, x.1 + y.1, x.2 + y.2));
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.0 < y.0 => {
                out.push(*x);
                i += 1;
            }
            (Some(_), Some(y)) | (None, Some(y)) => {
                out.push(*y);
                j += 1;
            }
            (Some(x), None) => {
                out.push(*x);
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The end of the time axis: the last time bin or memory reading.
fn end_ns(profile: &Profile) -> u64 {
    let bins = profile.bin_ns.saturating_mul(u64::from(profile.bins));
    let last = |s: &[(u64, u64)]| s.last().map_or(0, |&(t, _)| t);
    bins.max(last(&profile.heap)).max(last(&profile.rss))
}

/// A series flattened to `[t, v, t, v, ...]`, at most about `max_points` points: beyond that,
/// consecutive points are bucketed and each bucket keeps its lowest and highest point (in time
/// order), plus the very first and last points, so peaks and troughs survive.
fn downsample(series: &[(u64, u64)], max_points: usize) -> Vec<u64> {
    let mut out = Vec::new();
    if series.len() <= max_points || max_points < 4 {
        for &(t, v) in series {
            out.extend([t, v]);
        }
        return out;
    }
    let buckets = (max_points - 2) / 2;
    let size = series.len().div_ceil(buckets);
    let mut last_t = None;
    let mut push = |out: &mut Vec<u64>, (t, v): (u64, u64)| {
        if last_t != Some(t) {
            out.extend([t, v]);
            last_t = Some(t);
        }
    };
    if let Some(&first) = series.first() {
        push(&mut out, first);
    }
    for chunk in series.chunks(size) {
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        push(&mut out, chunk[a]);
        push(&mut out, chunk[b]);
    }
    if let Some(&last) = series.last() {
        push(&mut out, last);
    }
    out
}

/// The top allocation sites (innermost frames) by bytes: `(label, bytes, blocks)`.
fn top_sites(profile: &Profile, n: usize) -> Vec<(String, u64, u64)> {
    let mut by_site: HashMap<String, (u64, u64)> = HashMap::new();
    for stack in &profile.stacks {
        let label = match stack.frames.last() {
            None => NO_FRAME.to_string(),
            Some(&f) => profile
                .locations
                .get(f as usize)
                .map_or_else(|| "[unknown frame]".to_string(), crate::labels::frame),
        };
        let e = by_site.entry(label).or_default();
        e.0 = e.0.saturating_add(stack.bytes);
        e.1 = e.1.saturating_add(stack.count);
    }
    let mut sites: Vec<(String, u64, u64)> = by_site
        .into_iter()
        .filter(|(_, (b, c))| *b > 0 || *c > 0)
        .map(|(l, (b, c))| (l, b, c))
        .collect();
    sites.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    sites.truncate(n);
    sites
}

/// JSON made safe to sit inside `<script>`: every `<` becomes `\u003c`, so no `</script>` or
/// `<!--` can end or confuse the element. `<` only occurs inside JSON strings, where the escape
/// means the same character.
fn script_safe_json(json: &mut Vec<u8>) {
    if !json.contains(&b'<') {
        return;
    }
    let mut out = Vec::with_capacity(json.len() + 64);
    for &b in json.iter() {
        if b == b'<' {
            out.extend_from_slice(b"\\u003c");
        } else {
            out.push(b);
        }
    }
    *json = out;
}

fn bin_width_text(bin_ns: u64) -> String {
    if bin_ns == 0 {
        "no time bins".to_string()
    } else {
        format!("bins of {}", units::seconds(bin_ns as f64 / 1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collapsed::test_profiles::*;

    fn page(p: &Profile) -> String {
        page_ending(p, &EndInfo::default())
    }

    fn page_ending(p: &Profile, end: &EndInfo) -> String {
        let mut out = Vec::new();
        flamegraph_html(p, end, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_capture_cut_short_or_damaged_says_so_at_the_top() {
        let p = small();
        assert!(!page(&p).contains("class=\"warning\""));
        let cut = EndInfo {
            cut_short: true,
            ..EndInfo::default()
        };
        let html = page_ending(&p, &cut);
        let banner = html
            .find("<strong>Capture cut short</strong>")
            .expect("banner");
        assert!(
            banner < html.find("id=\"timeline-panel\"").unwrap(),
            "above the graph"
        );
        let damaged = EndInfo {
            cut_short: true,
            damage: Some("capture is corrupt at byte 4242: chunk checksum".into()),
            ..EndInfo::default()
        };
        let html = page_ending(&p, &damaged);
        assert!(html.contains("<strong>Capture damaged</strong>: capture is corrupt at byte 4242"));
    }

    #[test]
    fn control_characters_in_names_are_spelled_out() {
        let mut p = small();
        p.locations[6].function = "evil\x1b]0;pwned\x07".into();
        p.locations[3].file = "\x1b[2Jstore.py".into();
        p.program = Some("\x1b[31mapp.py".into());
        let html = page(&p);
        assert!(
            !html.contains('\x1b') && !html.contains('\x07'),
            "raw control characters"
        );
        let (data, _) = parts(&html);
        let labels: Vec<String> = serde_json::from_value(data["labels"].clone()).unwrap();
        assert!(
            labels.iter().any(|l| l == "evil\\x1b]0;pwned\\x07"),
            "{labels:?}"
        );
        let files: Vec<String> = serde_json::from_value(data["files"].clone()).unwrap();
        assert!(files.iter().any(|f| f == "\\x1b[2Jstore.py"), "{files:?}");
        assert!(html.contains("<h1>leaks in \\x1b[31mapp.py</h1>"));
    }

    /// The JSON blob and the viewer script, as the browser would see them.
    fn parts(html: &str) -> (serde_json::Value, String) {
        let start = html
            .find("<script type=\"application/json\" id=\"ms-data\">")
            .unwrap();
        let rest = &html[start..];
        let open = rest.find('>').unwrap() + 1;
        let close = rest.find("</script>").unwrap();
        let data: serde_json::Value = serde_json::from_str(&rest[open..close]).unwrap();
        let rest = &rest[close + "</script>".len()..];
        let open = rest.find("<script>").unwrap() + "<script>".len();
        let close = rest.find("</script>").unwrap();
        (data, rest[open..close].to_string())
    }

    #[test]
    fn page_is_one_self_contained_file() {
        let html = page(&small());
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for outside in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(
                !html.contains(outside),
                "page refers outside with {outside}"
            );
        }
        // Exactly two script elements: the data and the viewer, both inline.
        assert_eq!(html.matches("<script").count(), 2);
        assert_eq!(html.matches("</script>").count(), 2);
    }

    #[test]
    fn script_closing_tags_in_names_are_escaped() {
        let html = page(&small());
        // The file is `fmt</script>.py`: it is escaped in the table and in the data.
        assert!(html.contains("fmt&lt;/script&gt;.py"));
        assert!(html.contains("fmt\\u003c/script>.py"));
        let (data, _) = parts(&html);
        let labels: Vec<&str> = data["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(labels.contains(&"parse;fast (fmt</script>.py:7)"));
    }

    #[test]
    fn page_shows_header_totals_and_top_sites() {
        let mut p = small();
        let html = page(&p);
        assert!(html.contains("<h1>leaks in app.py</h1>"));
        assert!(html.contains("allocated while tracking and still alive at the end"));
        assert!(html.contains("<strong>10.0 MiB</strong> (10,489,956 bytes)"));
        assert!(html.contains("<strong>3,613</strong> blocks from 5 stacks"));
        assert!(!html.contains("estimated (sampled)"));
        let first_row = html.find("<tbody id=\"sites-body\">").unwrap();
        let rows = &html[first_row..];
        assert!(rows.contains(
            "<tr><td class=\"num\">1</td><td><code>cache_put (store.py:31)</code></td>\
             <td class=\"num\">6.0 MiB</td><td class=\"num\">600</td>\
             <td class=\"num\">60.0%</td></tr>"
        ));
        assert!(rows.contains("<code>[no Python frame]</code>"));
        p.sampled = true;
        assert!(page(&p).contains("estimated (sampled)"));
    }

    #[test]
    fn data_is_a_merged_tree_with_bins_per_leaf() {
        let p = small();
        let (data, _) = parts(&page(&p));
        let parent: Vec<i64> = serde_json::from_value(data["parent"].clone()).unwrap();
        let loc: Vec<i64> = serde_json::from_value(data["loc"].clone()).unwrap();
        let labels: Vec<String> = serde_json::from_value(data["labels"].clone()).unwrap();
        // Root, <module>, main shared by three stacks; load shared by two; then cache_put,
        // parse, listcomp, [no Python frame], weird name.
        assert_eq!(parent.len(), 9);
        assert_eq!(parent[0], -1);
        assert!(parent
            .iter()
            .enumerate()
            .skip(1)
            .all(|(i, &p)| (p as usize) < i));
        let children_of_main = parent.iter().filter(|&&x| x == 2).count();
        assert_eq!(children_of_main, 2, "load and parse;fast under main");
        assert_eq!(labels[loc[1] as usize], "<module> (app.py:1)");
        assert_eq!(labels[loc[2] as usize], "main (app.py:10)");
        let leaf_bytes: Vec<u64> = serde_json::from_value(data["leaf_bytes"].clone()).unwrap();
        assert_eq!(leaf_bytes.iter().sum::<u64>(), p.total_bytes());
        // Bins are delta-encoded: stack 0 has bins 0 and 5.
        let bins0: Vec<u64> = serde_json::from_value(data["leaf_bins"][0].clone()).unwrap();
        assert_eq!(bins0, vec![0, 1024 * 1024, 100, 5, 5 * 1024 * 1024, 500]);
        assert_eq!(data["end_ns"], 10_000_000_000u64);
        assert_eq!(data["heap"].as_array().unwrap().len(), 2 * 101);
    }

    #[test]
    fn equal_stacks_and_locations_merge() {
        let mut p = small();
        // A second index for the same location, and a stack equal to stack 2 through it.
        p.locations.push(loc("load", "store.py", 20));
        p.stacks.push(memsleuth_analysis::ProfileStack {
            frames: vec![0, 1, 7],
            bytes: 10,
            count: 1,
            bins: vec![(3, 4, 0), (9, 6, 1)],
        });
        let data = ViewData::from_profile(&p);
        assert_eq!(data.parent.len(), 9, "no new node");
        assert_eq!(data.leaf_node.len(), 5, "no new leaf");
        let i = data
            .leaf_bytes
            .iter()
            .position(|&b| b == 1024 * 1024 + 10)
            .unwrap();
        assert_eq!(data.leaf_bins[i], vec![3, 4, 0, 6, 1024 * 1024 + 6, 11]);
    }

    #[test]
    fn merging_bins_adds_equal_bins() {
        let a = [(0, 1, 1), (2, 2, 2), (5, 5, 5)];
        let b = [(1, 10, 1), (2, 20, 2), (7, 70, 7)];
        assert_eq!(
            merge_bins(&a, &b),
            vec![(0, 1, 1), (1, 10, 1), (2, 22, 4), (5, 5, 5), (7, 70, 7)]
        );
        assert_eq!(merge_bins(&[], &b), b.to_vec());
    }

    #[test]
    fn long_series_keep_their_extremes() {
        let series: Vec<(u64, u64)> = (0..100_000u64)
            .map(|i| (i, if i == 77_777 { 1_000_000 } else { i % 1000 }))
            .collect();
        let flat = downsample(&series, 4000);
        assert!(flat.len() / 2 <= 4002, "{}", flat.len() / 2);
        let points: Vec<(u64, u64)> = flat.chunks(2).map(|c| (c[0], c[1])).collect();
        assert!(points.windows(2).all(|w| w[0].0 < w[1].0), "time order");
        assert!(points.contains(&(77_777, 1_000_000)), "the spike survives");
        assert_eq!(points.first(), Some(&(0, 0)));
        assert_eq!(points.last(), Some(&(99_999, 999)));
        assert_eq!(downsample(&series[..10], 4000).len(), 20);
    }

    #[test]
    fn empty_profiles_render() {
        let html = page(&Profile::default());
        assert!(html.contains("<h1>allocations of the program</h1>"));
        assert!(html.contains("nothing allocated"));
        let (data, _) = parts(&html);
        assert_eq!(data["parent"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn big_profiles_stay_reasonably_small() {
        let p = big(10_000, 128);
        let html = page(&p);
        let (data, _) = parts(&html);
        let nodes = data["parent"].as_array().unwrap().len();
        println!(
            "10k stacks, depth <= 128: {} nodes, page {} bytes ({})",
            nodes,
            html.len(),
            units::bytes(html.len() as f64)
        );
        assert!(html.len() < 40 * 1024 * 1024);
        assert!(data["heap"].as_array().unwrap().len() <= 2 * (MAX_SERIES_POINTS + 2));
    }

    // --- the script, under node when it is installed ----------------------------------------

    fn node_available() -> bool {
        std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("memsleuth-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn script_has_no_syntax_errors() {
        if !node_available() {
            println!("skipped: `node` is not on PATH, so the script cannot be checked");
            return;
        }
        let (_, script) = parts(&page(&small()));
        assert!(!script.contains("</script"));
        let dir = temp_dir("flame-check");
        let file = dir.join("viewer.js");
        std::fs::write(&file, script).unwrap();
        let out = std::process::Command::new("node")
            .arg("--check")
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            out.status.success(),
            "node --check: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A DOM just big enough for the viewer: elements by id that record what is set on them,
    /// a canvas context that counts rectangles, and the test's assertions.
    const DOM_STUB: &str = r#"
"use strict";
const fs = require("fs");
const [html, checks] = [fs.readFileSync(process.argv[2], "utf8"), process.argv[3]];
const grab = (open) => {
  const i = html.indexOf(open);
  if (i < 0) throw new Error("missing " + open);
  const from = i + open.length;
  return html.slice(from, html.indexOf("</script>", from));
};
const dataText = grab('<script type="application/json" id="ms-data">');
const script = grab("<script>\n");
const listeners = {};
let rects = 0;
function element(id) {
  return {
    id, textContent: id === "ms-data" ? dataText : "", innerHTML: "", value: "", hidden: false,
    disabled: false, className: "", style: {}, clientWidth: 1200, width: 0, height: 0,
    attrs: {},
    setAttribute(k, v) { this.attrs[k] = String(v); },
    getAttribute(k) { return this.attrs[k] ?? null; },
    addEventListener(type, fn) { (listeners[id + ":" + type] ||= []).push(fn); },
    getBoundingClientRect() { return { left: 0, top: 0, width: 1200, height: 200 }; },
    getContext() {
      return {
        setTransform() {}, clearRect() {}, fillText() {},
        fillRect() { rects++; },
        measureText(s) { return { width: 7.2 * s.length }; },
      };
    },
  };
}
const elements = {};
globalThis.document = { getElementById: (id) => (elements[id] ||= element(id)) };
globalThis.window = globalThis;
globalThis.devicePixelRatio = 1;
globalThis.innerWidth = 1400;
globalThis.innerHeight = 900;
globalThis.addEventListener = (type, fn) => { (listeners["window:" + type] ||= []).push(fn); };
const $ = (id) => document.getElementById(id);
const fire = (key, ev) => (listeners[key] || []).forEach((fn) => fn(ev));
const time = (what, fn) => { const t = process.hrtime.bigint(); const r = fn();
  console.log(what + ": " + Number(process.hrtime.bigint() - t) / 1e6 + " ms"); return r; };
const assert = (cond, msg) => { if (!cond) { console.error("FAILED: " + msg); process.exit(1); } };
time("load and first draw", () => (0, eval)(script));
const M = window.memsleuthFlame;
assert(M, "the viewer exposes its handle");
eval(fs.readFileSync(checks, "utf8"));
console.log("rectangles drawn overall: " + rects);
console.log("ok");
"#;

    fn run_under_node(name: &str, p: &Profile, checks: &str) -> String {
        let dir = temp_dir(name);
        let page_file = dir.join("page.html");
        let stub = dir.join("stub.js");
        let checks_file = dir.join("checks.js");
        std::fs::write(&page_file, page(p)).unwrap();
        std::fs::write(&stub, DOM_STUB).unwrap();
        std::fs::write(&checks_file, checks).unwrap();
        let out = std::process::Command::new("node")
            .arg(&stub)
            .arg(&page_file)
            .arg(&checks_file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "node: {stdout}\n{stderr}");
        println!("{stdout}");
        stdout
    }

    #[test]
    fn script_runs_with_a_minimal_dom() {
        if !node_available() {
            println!("skipped: `node` is not on PATH, so the script cannot be run");
            return;
        }
        let checks = r#"
const MiB = 1024 * 1024;
let s = M.state();
assert(s.total === 10 * MiB + 4096 + 100, "whole-run total " + s.total);
assert(s.cells > 0, "cells drawn");
assert($("sites-body").innerHTML.includes("cache_put (store.py:31)"), "top sites drawn");
assert($("sites-body").innerHTML.indexOf("cache_put") < $("sites-body").innerHTML.indexOf("listcomp"),
  "sites by bytes");
assert($("sites-body").innerHTML.includes("fmt&lt;/script&gt;.py"), "site names escaped");
assert($("window-text").textContent.startsWith("whole run: 10.0 MiB"), $("window-text").textContent);
assert($("timeline").innerHTML.includes("<polyline"), "timeline lines");
assert($("timeline").innerHTML.includes('class="bars"'), "allocation-time bars");
assert($("legend").innerHTML.includes("tracked heap") && $("legend").innerHTML.includes("RSS"), "legend");

// Search: store.py holds load and cache_put, i.e. 7 MiB of the whole, counted once.
M.search("store.py");
s = M.state();
assert(s.matched === 7 * MiB, "matched " + s.matched);
assert($("match-text").textContent === "matched 70.0% of 10.0 MiB", $("match-text").textContent);
M.search("/^parse;FAST/");
assert(M.state().matched === 3 * MiB, "regex search");
M.search("/[/");
assert($("match-text").textContent === "bad regular expression", "bad regex reported");
M.search("");
assert($("match-text").textContent === "", "search cleared");

// A window: bins 5..5 hold only cache_put's second part.
M.setWindow(5, 5);
s = M.state();
assert(s.total === 5 * MiB && s.blocks === 500, "window total " + s.total);
assert($("window-text").textContent.startsWith("window 5.0 s \u2013 6.0 s: 5.0 MiB in 500 blocks"),
  $("window-text").textContent);
assert(!$("whole-run").disabled, "whole run enabled");
assert(!$("sites-body").innerHTML.includes("listcomp"), "table follows the window");
assert($("timeline").innerHTML.includes('id="tl-sel"'), "selection drawn");
M.search("store.py");
assert($("match-text").textContent === "matched 100.0% of 5.0 MiB", $("match-text").textContent);
M.search("");

// Zoom into main (node 2), then a window with nothing under it resets the zoom.
M.clearWindow();
M.zoomTo(2);
assert(M.state().zoom === 2 && $("zoom-text").textContent === "zoomed into main (app.py:10)", "zoom");
assert(!$("reset-zoom").disabled, "reset enabled");
M.setWindow(1, 1);
assert(M.state().zoom === 0, "zoom reset when empty");
M.setWindow(7, 8);
assert(M.state().total === 0 && $("flame-note").textContent.includes("Nothing"), "empty window");
M.clearWindow();
assert(M.state().window === null && $("whole-run").disabled, "whole run again");

// Dragging on the timeline selects bins: plot area is x 70..1186 for 10 s.
fire("timeline:mousedown", { button: 0, clientX: 70 + 1116 * 0.25, preventDefault() {} });
fire("window:mousemove", { clientX: 70 + 1116 * 0.55 });
fire("window:mouseup", {});
assert(JSON.stringify(M.state().window) === "[2,5]", "dragged window " + JSON.stringify(M.state().window));

// Hover and click on the canvas: row 1 is <module>, full width.
fire("flame:mousemove", { clientX: 600, clientY: 18 + 5 });
assert(!$("tooltip").hidden && $("tooltip").innerHTML.includes("&lt;module&gt; (app.py:1)"),
  "tooltip " + $("tooltip").innerHTML);
assert($("tooltip").innerHTML.includes("100.0% of total"), "tooltip share");
fire("flame:click", { clientX: 600, clientY: 18 + 5 });
assert(M.state().zoom === 1, "click zooms");
"#;
        run_under_node("flame-node-small", &small(), checks);
    }

    #[test]
    fn script_handles_big_profiles_quickly() {
        if !node_available() {
            println!("skipped: `node` is not on PATH, so the script cannot be run");
            return;
        }
        let checks = r#"
let s = M.state();
console.log("nodes " + s.nodes + ", leaves " + s.leaves + ", depth " + s.maxDepth +
  ", cells " + s.cells + ", rows " + s.rows);
assert(s.maxDepth >= 100, "deep");
assert(s.cells < 20000, "cells are capped: " + s.cells);
const t = (what, fn) => { const a = Date.now(); fn(); const ms = Date.now() - a;
  console.log(what + ": " + ms + " ms"); assert(ms < 3000, what + " took " + ms + " ms"); };
t("window", () => M.setWindow(10, 40));
assert($("window-text").textContent.startsWith("window 2.50 s \u2013 10.25 s: "), $("window-text").textContent);
assert(M.state().total > 0 && M.state().total < M.state().blocks * 1e9, "window total");
t("search", () => M.search("module_7"));
assert(M.state().matched > 0, "search matched");
t("zoom", () => M.zoomTo(1));
t("whole run", () => M.clearWindow());
"#;
        let out = run_under_node("flame-node-big", &big(10_000, 128), checks);
        assert!(out.contains("ok"));
    }

    #[test]
    #[ignore = "writes pages to /tmp for a person to look at"]
    fn write_pages_for_review() {
        std::fs::write("/tmp/flame-small.html", page(&small())).unwrap();
        std::fs::write("/tmp/flame-big.html", page(&big(10_000, 128))).unwrap();
    }
}
