//! `memsleuth report KIND FILE`: reports made from a capture.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

/// Make a report from a capture file.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    kind: ReportKind,
}

#[derive(Debug, Subcommand)]
enum ReportKind {
    /// The verdict and key figures of a capture
    Summary {
        /// Capture file (.msl)
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Plot memory over time: total, per process, and the fitted trend
    #[command(after_help = "Examples:\n  \
        memsleuth report timeline out.msl                 writes out-timeline.svg\n  \
        memsleuth report timeline out.msl -o mem.png      PNG, for chat and tickets\n  \
        memsleuth report timeline out.msl --html          one self-contained page\n  \
        memsleuth report timeline out.msl --json          the series, for scripts")]
    Timeline {
        /// Capture file (.msl)
        file: PathBuf,
        /// Output picture: .svg, .png or .html [default: <capture>-timeline.svg]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write a self-contained HTML page (default name <capture>-timeline.html)
        #[arg(long)]
        html: bool,
        /// Print the series and verdicts as JSON on stdout instead of drawing
        #[arg(long, conflicts_with_all = ["output", "html"])]
        json: bool,
    },
}

fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    file.with_file_name(format!("{stem}{suffix}"))
}

/// A capture cut short at a flush boundary (its recorder was killed) is expected and only worth
/// a warning. A damaged one (truncated inside a chunk, or corrupt) is reported up to the damage
/// and then fails, so scripts notice.
fn finish(report: &memsleuth_analysis::TimelineReport) -> i32 {
    if let Some(damage) = &report.timeline.end.damage {
        crate::err(&format!(
            "memsleuth: error: {damage}; the report covers what was read before it\n"
        ));
        crate::EXIT_ERROR
    } else {
        if report.timeline.end.cut_short {
            crate::err("memsleuth: warning: the capture was cut short (no trailer): its recorder was killed or crashed; reporting up to its last flush\n");
        }
        0
    }
}

pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    let report = match &args.kind {
        ReportKind::Summary { file, .. } | ReportKind::Timeline { file, .. } => {
            super::load_report(file)?
        }
    };
    match args.kind {
        ReportKind::Summary { file, json } => {
            let shown = file.display().to_string();
            if json {
                crate::out(&format!(
                    "{}\n",
                    memsleuth_render::summary::summary_json(&report, Some(&shown))
                ));
            } else {
                crate::out(&memsleuth_render::summary::summary_text(
                    &report,
                    Some(&shown),
                ));
            }
        }
        ReportKind::Timeline {
            file,
            output,
            html,
            json,
        } => {
            if json {
                let text = serde_json::to_string(&report).context("cannot encode JSON")?;
                crate::out(&format!("{text}\n"));
                return Ok(finish(&report));
            }
            let output = output.unwrap_or_else(|| {
                sibling(
                    &file,
                    if html {
                        "-timeline.html"
                    } else {
                        "-timeline.svg"
                    },
                )
            });
            let ext = output
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let write = |text: String| {
                std::fs::write(&output, text).with_context(|| {
                    format!(
                        "cannot write {}; choose another path with -o",
                        output.display()
                    )
                })
            };
            match (html, ext.as_str()) {
                (true, _) | (false, "html" | "htm") => {
                    write(memsleuth_render::html::timeline_html(&report)?)?
                }
                (false, "svg") => write(memsleuth_render::plot::timeline_svg(&report)?)?,
                (false, "png") => memsleuth_render::plot::timeline_png(&report, &output)
                    .with_context(|| format!("cannot write {}", output.display()))?,
                (false, other) => bail!(
                    "cannot tell the picture format from `.{other}`; use -o with .svg, .png or .html"
                ),
            }
            crate::err(&format!("wrote {}\n", output.display()));
        }
    }
    Ok(finish(&report))
}
