//! A census of live objects: a table by type, and JSON.

use memsleuth_analysis::census::CensusModel;

use crate::units::{bytes, count, seconds};

/// The census as a table of the `top` largest types by shallow bytes.
pub fn census_text(c: &CensusModel, top: usize) -> String {
    let mut out = format!(
        "{} objects, {} (walked in {})\n",
        count(c.objects),
        bytes(c.bytes as f64),
        seconds(c.duration_s)
    );
    if !c.gc_enabled {
        out.push_str("automatic garbage collection is DISABLED (gc.disable())\n");
    }
    if c.unreachable > 0 {
        out.push_str(&format!(
            "{} objects ({}) are unreachable cycles the gc has not collected yet\n",
            count(c.unreachable),
            bytes(c.unreachable_bytes as f64)
        ));
    }
    if c.garbage > 0 {
        out.push_str(&format!(
            "{} uncollectable objects in gc.garbage\n",
            count(c.garbage)
        ));
    }
    if c.sizes_estimated > 0 {
        out.push_str(&format!(
            "{} objects measured by their basic size: their own __sizeof__ failed or was too slow\n",
            count(c.sizes_estimated)
        ));
    }
    let names: Vec<String> = c
        .types
        .iter()
        .take(top)
        .map(|t| crate::escape::printable(&t.name).into_owned())
        .collect();
    let width = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, 60);
    out.push_str(&format!(
        "\n{:<width$}  {:>12}  {:>10}  {:>10}\n",
        "type", "objects", "bytes", "retained"
    ));
    for (t, name) in c.types.iter().zip(names) {
        let name: String = if name.chars().count() > width {
            let mut s: String = name.chars().take(width - 1).collect();
            s.push('…');
            s
        } else {
            name
        };
        let retained = t
            .retained
            .map_or_else(|| "-".to_string(), |r| bytes(r as f64));
        out.push_str(&format!(
            "{:<width$}  {:>12}  {:>10}  {:>10}\n",
            name,
            count(t.count),
            bytes(t.bytes as f64),
            retained
        ));
    }
    out
}

/// The census as JSON.
pub fn census_json(c: &CensusModel) -> String {
    serde_json::to_string_pretty(c).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use memsleuth_analysis::census::CensusRow;

    fn model() -> CensusModel {
        CensusModel {
            objects: 1500,
            bytes: 2 << 20,
            duration_s: 0.05,
            gc_enabled: false,
            gc_counts: vec![800, 3, 1],
            unreachable: 40,
            unreachable_bytes: 4096,
            garbage: 0,
            sizes_estimated: 0,
            types: vec![CensusRow {
                name: "app.Session".into(),
                count: 1200,
                bytes: 1 << 20,
                retained: Some(3 << 20),
            }],
        }
    }

    #[test]
    fn text_names_types_and_gc_state() {
        let t = census_text(&model(), 10);
        assert!(t.contains("app.Session"));
        assert!(t.contains("1,200"));
        assert!(t.contains("3.0 MiB"));
        assert!(t.contains("DISABLED"));
        assert!(t.contains("unreachable cycles"));
    }

    #[test]
    fn json_round_trips_the_rows() {
        let v: serde_json::Value = serde_json::from_str(&census_json(&model())).expect("json");
        assert_eq!(v["types"][0]["name"], "app.Session");
        assert_eq!(v["types"][0]["retained"], 3 << 20);
    }
}
