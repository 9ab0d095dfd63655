//! `memsleuth report KIND FILE`: reports made from a capture.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use memsleuth_analysis::allocs::{
    AllocTable, CaptureInfo, DiffOptions, DiffReport, LeakOptions, LeakReport, PeakOptions,
    PeakReport, ProfileKind, TableOptions,
};
use memsleuth_analysis::growth::{CensusPick, GrowthOptions, GrowthReport};
use memsleuth_analysis::{
    AnalysisError, EndInfo, Profile, ProgramVerdict, TimelineReport, VerdictOptions,
};
use memsleuth_format::{Capture, ExitStatus};

use super::read_error;
use memsleuth_render::allocs as text;
use memsleuth_render::ending::{self, Ending, Missing};

/// Make a report from a capture file.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    kind: ReportKind,
    /// Native frames of allocations the C allocator made (`run --native`): `boundary`, the
    /// program's own C line below the Python line that called it; `none`; or `all` of them
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "WHICH",
        default_value = "boundary"
    )]
    native_frames: super::NativeFramesArg,
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
        /// Output picture, by its extension: .svg, .png or .html; a name without one (a device
        /// such as /dev/stdout) gets SVG, or HTML with --html [default: <capture>-timeline.svg]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Write a self-contained HTML page (default name <capture>-timeline.html)
        #[arg(long)]
        html: bool,
        /// Print the series and verdicts as JSON on stdout instead of drawing
        #[arg(long, conflicts_with_all = ["output", "html"])]
        json: bool,
    },
    /// The one verdict: is the program leaking, what grows, where, and who holds it
    #[command(
        long_about = "The one verdict on a capture: leaking, no leak or inconclusive, with \
            every finding ranked by evidence.\n\n\
            It weighs every signal the capture holds over the program's own time (up to the end \
            of its main code; its shutdown and memsleuth's exit work are left out): allocation \
            sites whose live bytes keep growing, what holds their objects (a reference from C \
            turns the finding into `held-from-c`), the gc turned off while unreachable cycles \
            pile up, types whose instances keep growing, RSS growing beyond the tracked heap \
            (memory allocated in C), open file descriptors and threads. A growing site counts \
            only when its growth matters: at least 64 KiB, and either 256 KiB/s or a quarter \
            of the heap's growth; the others are listed as not counted, with the reason.\n\n\
            `memsleuth run` prints the same verdict at exit. --json prints it for machines \
            (schema in docs/verdict.md); --check exits 3 when the program leaks, for CI.",
        after_help = "Examples:\n  \
            memsleuth report verdict out.msl            the verdict and its evidence\n  \
            memsleuth report verdict out.msl --json     for scripts (docs/verdict.md)\n  \
            memsleuth report verdict out.msl --check    exit 3 when leaking"
    )]
    Verdict {
        /// Capture file (.msl)
        file: PathBuf,
        /// Print JSON instead of text (schema: docs/verdict.md)
        #[arg(long)]
        json: bool,
        /// Exit with status 3 when the verdict is "leaking"
        #[arg(long)]
        check: bool,
    },
    /// Memory allocated while tracking and still alive at exit, by line, with a leak verdict
    #[command(
        long_about = "Memory allocated while tracking and still alive at exit, by line.\n\n\
            Needs a capture with allocation events (`memsleuth run`). Every block allocated \
            while tracking and never freed is grouped by its allocation site (the innermost \
            Python frame: file, line, function) and by full stack, largest first.\n\n\
            Memory alive at exit is not always a leak: caches, module state and interned \
            objects stay on purpose. So each top site's live bytes are followed from its first \
            allocation to the end, in windows: a site that keeps growing is `growing` (a leak, \
            with its rate), one that filled up and stopped is `plateau` (a cache), one allocated \
            once is `stable`, one allocated too briefly to tell is `inconclusive`. The headline \
            names the growing sites.",
        after_help = "Examples:\n  \
            memsleuth report leaks out.msl                 the top 10 sites and their verdicts\n  \
            memsleuth report leaks out.msl --top 30        more sites\n  \
            memsleuth report leaks out.msl --at 1m30s      what was alive 90 s into the run\n  \
            memsleuth report leaks out.msl --json          for scripts: sites, verdicts, stacks"
    )]
    Leaks {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// Take the leaks at this time instead of at exit: seconds since the start (12.5, 1m30s)
        #[arg(long, value_name = "SECONDS", value_parser = parse_at)]
        at: Option<u64>,
        /// How many sites to list (0: all)
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Windows the run is cut into to judge the sites, at least N and up to 2N as its length
        /// allows; a site is judged on those of its own life (0: no verdicts)
        #[arg(long, value_name = "N", default_value_t = memsleuth_analysis::allocs::DEFAULT_WINDOWS)]
        windows: u32,
    },
    /// What was alive at the high-water mark of the tracked heap, by line
    #[command(
        long_about = "What was alive at the high-water mark of the tracked heap, by line.\n\n\
            Finds the moment the memory allocated while tracking peaked, and groups every block \
            alive then by allocation site and stack: what to shrink to lower the peak. Reads the \
            capture twice.",
        after_help = "Examples:\n  \
            memsleuth report peak out.msl\n  \
            memsleuth report peak out.msl --top 25 --json"
    )]
    Peak {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// How many sites to list (0: all)
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Every allocation made while tracking, per line: allocated, freed, still alive
    #[command(
        long_about = "Every allocation made while tracking, per line.\n\n\
            For each allocation site: bytes and blocks allocated, freed, and still alive at the \
            end, most allocated first. Allocation churn (much allocated, all freed) costs time, \
            not memory; `report leaks` shows only what stays.",
        after_help = "Examples:\n  \
            memsleuth report table out.msl\n  \
            memsleuth report table out.msl --top 0 --json    every site, for scripts"
    )]
    Table {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// How many sites to list (0: all)
        #[arg(long, value_name = "N", default_value_t = 20)]
        top: usize,
    },
    /// Every allocation made while tracking, as a call tree with shares of the total
    #[command(
        long_about = "Every allocation made while tracking, as a call tree.\n\n\
            Each line is a call path with its share of all bytes allocated, the bytes allocated \
            under it and what of that is still alive at the end. Calls under 0.5% of the total \
            are folded into one line per parent.",
        after_help = "Examples:\n  \
            memsleuth report tree out.msl\n  \
            memsleuth report tree out.msl --depth 4\n  \
            memsleuth report tree out.msl --json --depth 0   the whole tree, nested"
    )]
    Tree {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Levels of calls to show (0: all)
        #[arg(long, value_name = "N", default_value_t = 12)]
        depth: usize,
    },
    /// An interactive flame graph of leaks, the peak or all allocations (one HTML file)
    #[command(
        long_about = "An interactive flame graph, as one self-contained HTML file.\n\n            Shows bytes by call stack: what is still alive at exit (`leaks`, the default), what             was alive at the peak of the tracked heap (`peak`), or everything allocated             (`all`). Above it, tracked heap and RSS over time: drag across the timeline to see             only what was allocated in that window. Click a frame to zoom, search by name or             /regex/. Opens offline: no network, no external files.",
        after_help = "Examples:\n  \
            memsleuth report flamegraph out.msl                writes out-leaks.html\n  \
            memsleuth report flamegraph out.msl --of peak\n  \
            memsleuth report flamegraph out.msl -o leaks.html"
    )]
    Flamegraph {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// What the graph shows
        #[arg(long = "of", value_enum, default_value_t = Of::Leaks)]
        of: Of,
        /// Output file [default: <capture>-<of>.html]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Export stacks for other tools: JSON, folded stacks, or pprof
    #[command(
        long_about = "Export the stacks of leaks, the peak or all allocations for other tools.\n\n            `collapsed`: Brendan Gregg's folded stacks, one `frame;frame;frame bytes` line per             stack (flamegraph.pl, inferno, speedscope). `pprof`: gzipped profile.proto that             `go tool pprof` and Grafana Pyroscope read (in-use space and objects). `json`: the             stack profile as memsleuth models it.",
        after_help = "Examples:\n  \
            memsleuth report export out.msl --format collapsed > leaks.folded\n  \
            memsleuth report export out.msl --format pprof -o leaks.pb.gz && go tool pprof -top leaks.pb.gz\n  \
            memsleuth report export out.msl --format json --of all"
    )]
    Export {
        /// Capture file (.msl) written by `memsleuth run`
        file: PathBuf,
        /// Output format
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// What to export
        #[arg(long = "of", value_enum, default_value_t = Of::Leaks)]
        of: Of,
        /// Output file [default: stdout; pprof is binary and needs -o]
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Which types of live objects keep growing, and where they were allocated
    #[command(
        long_about = "Which types of live Python objects keep growing, and where they were \
            allocated.\n\n\
            Needs a capture with object censuses: `memsleuth run` takes them, as does \
            `memsleuth.Tracker(path, census=1.0)` from Python (`memsleuth.census()` and its \
            `diff()` compare two censuses in the program itself). For each type it shows the instances and \
            bytes at two censuses (the first and the last, or --from and --to) and a verdict \
            from its count over every census between them: `growing`, with a rate in objects \
            per second, when it rises census after census; `warm-up only` when it grew once and \
            then stayed (start-up, a cache that filled); `stable`, `plateau` or `sawtooth` \
            otherwise. With fewer than 4 censuses there is no trend to judge: the report is a \
            plain difference between the two, as objgraph's show_growth is, and says so.\n\n\
            When the capture also has allocation events, the sampled instances of each growing \
            type are traced to the line that allocated them, with the calls that led there. \
            Notes on the garbage collector follow: collection disabled, unreachable cycles \
            piling up, uncollectable objects in gc.garbage.",
        after_help = "Examples:\n  \
            memsleuth report growth out.msl                    growing types, rates and sites\n  \
            memsleuth report growth out.msl --from=#3          from the third census on\n  \
            memsleuth report growth out.msl --from 30 --to 1m30s   the censuses nearest 30 s and 90 s\n  \
            memsleuth report growth out.msl --top 0 --json     every type, for scripts\n\n\
            A census is chosen by number, #1 being the first (write --from=#3 or quote '#3': a \
            lone # starts a shell comment), or by a time since the start (12.5, 1m30s), which \
            picks the census taken closest to it."
    )]
    Growth {
        /// Capture file (.msl) with object censuses
        file: PathBuf,
        /// How many types to list (0: all)
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// First census compared: #N (#1 is the first) or a time since the start (12.5, 1m30s) [default: the first]
        #[arg(long, value_name = "CENSUS", value_parser = parse_census)]
        from: Option<CensusPick>,
        /// Last census compared, whose instances are traced to their allocation sites: #N or a time [default: the last]
        #[arg(long, value_name = "CENSUS", value_parser = parse_census)]
        to: Option<CensusPick>,
    },
    /// Sites that leak more in capture B than in capture A (for CI)
    #[command(
        long_about = "Sites that leak more in capture B than in capture A.\n\n\
            Compares what is still alive at exit in two captures of the same program (say, the \
            main branch and a pull request), site by site (matched by function, file and line), \
            largest growth first. With --fail-over, exits with code 3 when B leaks more than A by \
            more than the given amount, so a CI job fails on a new leak.",
        after_help = "Examples:\n  \
            memsleuth report diff main.msl pr.msl\n  \
            memsleuth report diff main.msl pr.msl --fail-over 1MiB   exit 3 if B leaks 1 MiB more\n  \
            memsleuth report diff main.msl pr.msl --json\n\n\
            Exit codes: 0 fine, 3 growth over --fail-over, 1 a capture could not be read."
    )]
    Diff {
        /// The baseline capture (.msl)
        a: PathBuf,
        /// The capture to compare with it (.msl)
        b: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
        /// Exit with code 3 when B leaks more than this more than A (bytes; K, M, G are powers of 1024: 500K, 1MiB)
        #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
        fail_over: Option<u64>,
        /// How many sites to list (0: all)
        #[arg(long, value_name = "N", default_value_t = 10)]
        top: usize,
    },
    /// The small-object allocator (pymalloc): arenas, pools, size classes, fragmentation
    #[command(
        long_about = "The small-object allocator (pymalloc): arenas, pools, size classes, and \
            whether the memory it holds is growth or fragmentation.\n\n\
            CPython serves every allocation of up to 512 bytes (most objects) from pymalloc: \
            blocks of one size class in pools, pools in arenas (1 MiB each from Python 3.10, \
            256 KiB before). An arena goes back to the operating system only when every block \
            in it is free, so a few long-lived objects scattered over many arenas keep them all: \
            RSS stays high although Python has freed the objects. That is fragmentation, not a \
            leak, and this report says when it is the case (blocks in use fill under half of \
            the arenas and more than 4 MiB is idle).\n\n\
            Needs a capture with pymalloc snapshots: `memsleuth run` records them with each \
            census, as does `memsleuth.Tracker(path, census=1.0)` from Python \
            (`memsleuth.pymalloc()` returns one snapshot in the program itself). The report shows the \
            latest snapshot, the size classes that hold at least 1% of the bytes in use, what \
            changed since the first snapshot (size classes whose bytes in use moved by more \
            than 64 KiB and 5%), and whether the number of allocated blocks keeps growing, \
            which is what a leak of Python objects looks like from here.",
        after_help = "Examples:\n  \
            memsleuth report pymalloc out.msl           the latest snapshot and the verdict\n  \
            memsleuth report pymalloc out.msl --json    every figure, exact, for scripts\n\n\
            See also: `memsleuth report growth` for the types of objects that grow."
    )]
    Pymalloc {
        /// Capture file (.msl) with pymalloc snapshots
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// The garbage collector: collections and pauses per generation, and what to fix
    #[command(
        long_about = "The cyclic garbage collector: collections and pauses per generation, and \
            what needs fixing.\n\n\
            Reference counting frees most objects at once; objects in reference cycles wait for \
            the cyclic collector, which runs by generation (0, the youngest, most often) and \
            pauses the program while it runs. From a capture's collections this report shows, \
            per generation, how many ran, what they freed, and their pauses: total, share of \
            the run, p50, p99 and longest. From its censuses, the collector's state.\n\n\
            Findings, when they apply: automatic gc was disabled (seen by a census, or inferred \
            when nothing was collected in a long run while the allocation count stayed past the \
            threshold); unreachable cycles piling up from census to census; uncollectable \
            objects in gc.garbage; pauses over 100 ms.\n\n\
            Needs a capture recorded by `memsleuth run`, which records every collection and \
            takes censuses.",
        after_help = "Examples:\n  \
            memsleuth report gc out.msl           pauses per generation and findings\n  \
            memsleuth report gc out.msl --json    exact figures (ns) and findings, for scripts"
    )]
    Gc {
        /// Capture file (.msl) recorded by `memsleuth run`
        file: PathBuf,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
}

/// Which allocations a stack report shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Of {
    /// Allocated while tracking and still alive at the end
    Leaks,
    /// Alive at the high-water mark of the tracked heap
    Peak,
    /// Every allocation made while tracking
    All,
}

impl Of {
    fn name(self) -> &'static str {
        match self {
            Of::Leaks => "leaks",
            Of::Peak => "peak",
            Of::All => "all",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Collapsed,
    Pprof,
}

/// Time bins of a flame graph's timeline.
pub(crate) const FLAME_BINS: u32 = 200;

/// The stack profile of `file` and what was captured: the profile for the picture or the export,
/// the capture's description for how it ended.
fn profile(file: &Path, of: Of, bins: u32) -> anyhow::Result<(Profile, CaptureInfo)> {
    let kind = match of {
        Of::Leaks => ProfileKind::Leaks,
        Of::Peak => ProfileKind::Peak,
        Of::All => ProfileKind::All,
    };
    memsleuth_analysis::allocs::profile_from_path(file, kind, bins)
        .map_err(|e| analysis_error(file, e))
}

/// Writes the flame graph, saying at its top how the capture ended; returns what was captured.
fn flamegraph_file(file: &Path, of: Of, output: &Path) -> anyhow::Result<CaptureInfo> {
    let (profile, capture) = profile(file, of, FLAME_BINS)?;
    write_flamegraph_of(&profile, &capture, file, output)?;
    Ok(capture)
}

/// Writes the flame graph of a profile already made from `file` (`memsleuth run` has the
/// leaks from its verdict), saying at its top how the capture ended.
pub fn write_flamegraph_of(
    profile: &memsleuth_analysis::Profile,
    capture: &CaptureInfo,
    file: &Path,
    output: &Path,
) -> anyhow::Result<()> {
    check_output(output, &[file])?;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(output)
            .with_context(|| format!("cannot write {}", output.display()))?,
    );
    memsleuth_render::flamegraph::flamegraph_html(profile, &capture.end, &mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
        .with_context(|| format!("cannot write {}", output.display()))
}

fn flamegraph(file: &Path, of: Of, output: Option<PathBuf>) -> anyhow::Result<i32> {
    let output = output.unwrap_or_else(|| sibling(file, &format!("-{}.html", of.name())));
    let capture = flamegraph_file(file, of, &output)?;
    crate::out(&format!("{}\n", output.display()));
    Ok(finish(file, &capture.end))
}

fn export(
    file: &Path,
    format: ExportFormat,
    of: Of,
    output: Option<PathBuf>,
) -> anyhow::Result<i32> {
    if format == ExportFormat::Pprof && output.is_none() {
        bail!("pprof output is binary: give a file with -o (e.g. -o leaks.pb.gz)");
    }
    if let Some(path) = &output {
        check_output(path, &[file])?;
    }
    let (profile, capture) = profile(file, of, 0)?;
    let mut bytes = Vec::new();
    match format {
        ExportFormat::Json => {
            serde_json::to_writer(&mut bytes, &profile).context("cannot encode JSON")?;
            bytes.push(b'\n');
        }
        ExportFormat::Collapsed => memsleuth_render::collapsed::collapsed(&profile, &mut bytes)?,
        ExportFormat::Pprof => {
            memsleuth_render::pprof::pprof_gz_at(
                &profile,
                Some(capture.start_unix_ns),
                &mut bytes,
            )?;
        }
    }
    match output {
        Some(path) => write_output(&path, &[file], &bytes)?,
        None => crate::out(&String::from_utf8_lossy(&bytes)),
    }
    Ok(finish(file, &capture.end))
}

/// `--at`: plain seconds ("12.5") or a humantime duration ("1m30s", "500ms"); 0 is allowed.
fn parse_at(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let secs = match t.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => v,
        Ok(_) => {
            return Err(format!(
                "`{s}` is not a time; give seconds since the start (12.5, 1m30s)"
            ))
        }
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| {
                format!("`{s}` is not a time ({e}); give seconds since the start (12.5, 1m30s)")
            })?
            .as_secs_f64(),
    };
    if secs > 1e9 {
        return Err(format!("`{s}` is too far in the future"));
    }
    Ok((secs * 1e9).round() as u64)
}

/// `--from`/`--to` of `report growth`: `#N`, the N-th census (1-based), or a time since the start
/// as `--at` takes it, for the census closest to it.
fn parse_census(s: &str) -> Result<CensusPick, String> {
    let t = s.trim();
    match t.strip_prefix('#') {
        Some(n) => match n.trim().parse::<usize>() {
            Ok(0) => Err("censuses are numbered from #1".into()),
            Ok(n) => Ok(CensusPick::Index(n - 1)),
            Err(_) => Err(format!(
                "`{s}` is not a census; give #N (#1 is the first) or a time (12.5, 1m30s)"
            )),
        },
        None => parse_at(t).map(CensusPick::At),
    }
}

fn growth(
    file: &Path,
    top: usize,
    json: bool,
    from: Option<CensusPick>,
    to: Option<CensusPick>,
) -> anyhow::Result<i32> {
    let opts = GrowthOptions {
        from,
        to,
        ..GrowthOptions::default()
    };
    let r = GrowthReport::from_path(file, &opts).map_err(|e| analysis_error(file, e))?;
    if json {
        crate::out(&format!(
            "{}\n",
            memsleuth_render::growth::growth_json(&r, top)
        ));
    } else {
        crate::out(&memsleuth_render::growth::growth_text(&r, top));
    }
    Ok(finish(file, &r.capture.end))
}

/// A byte count: plain ("1048576") or with a unit, binary multiples ("500K", "1.5MiB", "2 GB").
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size; try 1048576, 500K or 1MiB"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("`{other}` is not a size unit; use B, K, M or G")),
    };
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(bytes.round() as u64)
}

/// `dir/name.msl` → `dir/name<suffix>`: where a report derived from a capture goes by default.
pub(crate) fn sibling(file: &Path, suffix: &str) -> PathBuf {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "capture".into());
    file.with_file_name(format!("{stem}{suffix}"))
}

/// Ends a report with how its capture ended. A capture cut short at a flush boundary (its
/// recorder was killed) is expected and only worth a warning. A damaged one (truncated inside a
/// chunk, corrupt, or with data after its end) is reported up to the damage and then fails, so
/// scripts notice. One line on stderr either way, in the words every report uses.
fn finish(path: &Path, end: &EndInfo) -> i32 {
    if let Some(line) = ending::stderr_line(&path.display().to_string(), end) {
        crate::err(&line);
    }
    if Ending::of(end).failed() {
        crate::EXIT_ERROR
    } else {
        0
    }
}

/// An analysis error in words that name the capture.
fn analysis_error(path: &Path, e: AnalysisError) -> anyhow::Error {
    let said = e.to_string();
    match e {
        AnalysisError::Format(f) => read_error(path, f),
        AnalysisError::NoAllocations => nothing(path, Missing::Allocations, None, &said),
        AnalysisError::NoCensus => nothing(path, Missing::Census, None, &said),
        AnalysisError::NoSamples => nothing(path, Missing::Samples, None, &said),
        // a census the capture does not have: said about the file, not as a failure to read
        // it; when the file is damaged, the censuses after the damage are lost, so it is said
        AnalysisError::CensusChoice(_) => match ending_of(path).and_then(|end| end.damage) {
            Some(damage) => anyhow::anyhow!(
                "{}: {said} (the capture is damaged: {damage})",
                path.display()
            ),
            None => anyhow::anyhow!("{}: {said}", path.display()),
        },
    }
}

/// A report found nothing to show in `path`: said about the file, with the analysis' own reason
/// (`original`) when the capture is complete, and the damage when it is damaged (whatever came
/// after the damage is lost, so how it was recorded is not the reason). `end` is read from the
/// file when the caller does not have it.
fn nothing(path: &Path, what: Missing, end: Option<EndInfo>, original: &str) -> anyhow::Error {
    let said = end
        .or_else(|| ending_of(path))
        .and_then(|end| ending::nothing_read(what, &end, original))
        .unwrap_or_else(|| original.to_string());
    anyhow::anyhow!("{}: {said}", path.display())
}

/// How a capture ended, as the reports describe it.
fn end_of(c: &Capture) -> EndInfo {
    EndInfo::new(c.trailer, c.damage.as_ref(), ExitStatus::Unknown, 0)
}

/// How the capture at `path` ended, read again (keeping no record) when an analysis found
/// nothing in it; `None` when it cannot be read at all.
fn ending_of(path: &Path) -> Option<EndInfo> {
    let file = memsleuth_format::open_capture(path).ok()?;
    let capture = Capture::from_reader_keeping(std::io::BufReader::new(file), |_| false).ok()?;
    Some(end_of(&capture))
}

/// Refuses to write a report over a file it reads: a capture replaced by its own flame graph is
/// lost. Two paths are the same file when they resolve to the same place (`./x.msl` and
/// `x.msl`, a symbolic link) or, for files that exist, have the same device and inode (a hard
/// link). Every report that writes a file checks here before writing.
fn check_output(output: &Path, inputs: &[&Path]) -> anyhow::Result<()> {
    for input in inputs {
        if same_file(output, input) {
            bail!(
                "{} is {}, the capture this report reads; write the report elsewhere with -o",
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
                return true;
            }
        }
    }
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

/// A path made absolute with its links resolved; for a file that does not exist yet, its
/// directory resolved and its name.
fn resolved(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = p.canonicalize() {
        return Some(c);
    }
    let name = p.file_name()?;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(dir.canonicalize().ok()?.join(name))
}

/// Writes a report file made from `inputs`, never over one of them.
fn write_output(output: &Path, inputs: &[&Path], bytes: &[u8]) -> anyhow::Result<()> {
    check_output(output, inputs)?;
    std::fs::write(output, bytes).with_context(|| {
        format!(
            "cannot write {}; choose another path with -o",
            output.display()
        )
    })
}

/// The timeline report of a capture; when it holds no memory samples, why.
fn timeline_report(path: &Path) -> anyhow::Result<TimelineReport> {
    let capture = read_records(path)?;
    TimelineReport::from_capture(&capture, &VerdictOptions::default()).map_err(|e| match e {
        AnalysisError::NoSamples => nothing(
            path,
            Missing::Samples,
            Some(end_of(&capture)),
            &e.to_string(),
        ),
        other => anyhow::Error::new(other).context(format!("cannot analyse {}", path.display())),
    })
}

/// The leak report of a capture when it has allocation events; `None` for one without (from
/// `watch`).
fn leaks_if_any(path: &Path) -> anyhow::Result<Option<LeakReport>> {
    match LeakReport::from_path(path, &LeakOptions::default()) {
        Ok(r) => Ok(Some(r)),
        Err(AnalysisError::NoAllocations) => Ok(None),
        Err(e) => Err(analysis_error(path, e)),
    }
}

fn summary(file: &Path, json: bool) -> anyhow::Result<i32> {
    let shown = file.display().to_string();
    let timeline = timeline_report(file);
    // a capture without memory samples can still hold allocations (run without the sampler)
    let leaks = match &timeline {
        Ok(_) => leaks_if_any(file)?,
        Err(_) => match leaks_if_any(file) {
            Ok(Some(l)) => Some(l),
            _ => None,
        },
    };
    let (timeline, leaks) = match (timeline, leaks) {
        (Ok(t), leaks) => (t, leaks),
        (Err(_), Some(leaks)) => {
            if json {
                crate::out(&format!("{}\n", text::leaks_json(&leaks, 10)));
            } else {
                crate::out(&text::leaks_text(&leaks, 5));
            }
            return Ok(finish(file, &leaks.capture.end));
        }
        (Err(e), None) => return Err(e),
    };
    if json {
        let verdict = leaks.map(memsleuth_analysis::ProgramVerdict::from_leaks);
        let leaks = verdict
            .as_ref()
            .and_then(|v| v.leaks.as_ref())
            .map(text::leaks_summary_value);
        let program = verdict
            .as_ref()
            .map(memsleuth_render::verdict::verdict_value);
        crate::out(&format!(
            "{}\n",
            memsleuth_render::summary::summary_json_with_leaks(
                &timeline,
                Some(&shown),
                leaks,
                program
            )
        ));
    } else {
        let mut out = memsleuth_render::summary::summary_text(&timeline, Some(&shown));
        if let Some(leaks) = leaks {
            // the one verdict, as `run` and `report leaks` word it
            let verdict = memsleuth_analysis::ProgramVerdict::from_leaks(leaks);
            let base = std::env::current_dir().ok();
            let lines = memsleuth_render::verdict::verdict_lines(&verdict, file, base.as_deref());
            out.push('\n');
            if let Some(leaks) = &verdict.leaks {
                for line in memsleuth_render::allocs::leaks_headline_with(leaks, &lines).lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            out.push_str(&format!("  details: memsleuth report verdict {shown}\n"));
        }
        crate::out(&out);
    }
    Ok(finish(file, &timeline.timeline.end))
}

/// Every report reads its captures through [`memsleuth_format::open_capture`] (directly, or in
/// the analyses' `from_path`), which refuses FIFOs, directories and devices before reading.
pub fn run(args: ReportArgs) -> anyhow::Result<i32> {
    args.native_frames.apply();
    match args.kind {
        ReportKind::Summary { file, json } => summary(&file, json),
        ReportKind::Timeline {
            file,
            output,
            html,
            json,
        } => timeline(&file, output, html, json),
        ReportKind::Leaks {
            file,
            at,
            top,
            json,
            windows,
        } => {
            let opts = LeakOptions {
                at_ns: at,
                windows,
                ..LeakOptions::default()
            };
            let verdict = ProgramVerdict::from_path_with(&file, &opts)
                .map_err(|e| analysis_error(&file, e))?;
            let Some(r) = verdict.leaks.as_ref() else {
                return Err(analysis_error(&file, AnalysisError::NoAllocations));
            };
            if let Some(at) = at.filter(|&at| at > r.capture.duration_ns) {
                let secs = |ns: u64| memsleuth_render::units::seconds(ns as f64 / 1e9);
                let (at, length) = (secs(at), secs(r.capture.duration_ns));
                // a damaged capture ends early because of the damage: that is the failure
                // (exit 1), not the time asked for
                if let Ending::Damaged(damage) = Ending::of(&r.capture.end) {
                    bail!(
                        "--at {at} is past what could be read of {} (length {length}): it is \
                         damaged: {damage}; give a time within it",
                        file.display()
                    );
                }
                return Err(crate::usage(format!(
                    "--at {at} is past the end of the capture (length {length}); give a time \
                     within it"
                )));
            }
            if json {
                crate::out(&format!("{}\n", text::leaks_json(r, top)));
            } else if windows == 0 {
                // no site was followed over time: there is no verdict to give
                crate::out(&text::leaks_text(r, top));
            } else {
                let base = std::env::current_dir().ok();
                let lines =
                    memsleuth_render::verdict::verdict_lines(&verdict, &file, base.as_deref());
                crate::out(&text::leaks_text_with(r, top, &lines));
            }
            Ok(finish(&file, &r.capture.end))
        }
        ReportKind::Verdict { file, json, check } => {
            let v = ProgramVerdict::from_path(&file).map_err(|e| analysis_error(&file, e))?;
            let end = match (&v.leaks, &v.growth) {
                (Some(l), _) => l.capture.end.clone(),
                (None, Some(g)) => g.capture.end.clone(),
                // a `watch` capture: memory samples only, which `report summary` judges
                (None, None) => bail!(
                    "{} holds no allocation events or censuses to weigh (a `memsleuth watch` \
                     capture?); `memsleuth report summary {}` gives its memory verdict, and \
                     `memsleuth run app.py` records what the verdict needs",
                    file.display(),
                    file.display()
                ),
            };
            if json {
                crate::out(&memsleuth_render::verdict::verdict_json(&v));
            } else {
                crate::out(&memsleuth_render::verdict::verdict_text(&v, &file));
            }
            let code = finish(&file, &end);
            Ok(if code == 0 && check && v.leaking() {
                crate::EXIT_GROWING
            } else {
                code
            })
        }
        ReportKind::Peak { file, top, json } => {
            let r = PeakReport::from_path(&file, &PeakOptions::default())
                .map_err(|e| analysis_error(&file, e))?;
            if json {
                crate::out(&format!("{}\n", text::peak_json(&r, top)));
            } else {
                crate::out(&text::peak_text(&r, top));
            }
            Ok(finish(&file, &r.capture.end))
        }
        ReportKind::Table { file, json, top } => {
            let t = AllocTable::from_path(&file, &TableOptions::default())
                .map_err(|e| analysis_error(&file, e))?;
            if json {
                crate::out(&format!("{}\n", text::table_json(&t, top)));
            } else {
                crate::out(&text::table_text(&t, top));
            }
            Ok(finish(&file, &t.capture.end))
        }
        ReportKind::Tree { file, json, depth } => {
            let t = AllocTable::from_path(&file, &TableOptions::default())
                .map_err(|e| analysis_error(&file, e))?;
            if json {
                crate::out(&format!("{}\n", text::tree_json(&t, depth)));
            } else {
                crate::out(&text::tree_text(&t, depth));
            }
            Ok(finish(&file, &t.capture.end))
        }
        ReportKind::Diff {
            a,
            b,
            json,
            fail_over,
            top,
        } => diff(&a, &b, json, fail_over, top),
        ReportKind::Growth {
            file,
            top,
            json,
            from,
            to,
        } => growth(&file, top, json, from, to),
        ReportKind::Pymalloc { file, json } => pymalloc(&file, json),
        ReportKind::Gc { file, json } => gc(&file, json),
        ReportKind::Flamegraph { file, of, output } => flamegraph(&file, of, output),
        ReportKind::Export {
            file,
            format,
            of,
            output,
        } => export(&file, format, of, output),
    }
}

fn timeline(file: &Path, output: Option<PathBuf>, html: bool, json: bool) -> anyhow::Result<i32> {
    if json {
        let report = timeline_report(file)?;
        let text = serde_json::to_string(&report).context("cannot encode JSON")?;
        crate::out(&format!("{text}\n"));
        return Ok(finish(file, &report.timeline.end));
    }
    let output = output.unwrap_or_else(|| {
        sibling(
            file,
            if html {
                "-timeline.html"
            } else {
                "-timeline.svg"
            },
        )
    });
    // what was asked is checked before the capture is read; writing over the capture first,
    // as the gravest mistake
    check_output(&output, &[file])?;
    let ext = picture_format(&output, html)?;
    let report = timeline_report(file)?;
    let write = |text: String| write_output(&output, &[file], text.as_bytes());
    match ext {
        "html" => write(memsleuth_render::html::timeline_html(&report)?)?,
        "svg" => write(memsleuth_render::plot::timeline_svg(&report)?)?,
        _ => memsleuth_render::plot::timeline_png(&report, &output)
            .with_context(|| format!("cannot write {}", output.display()))?,
    }
    crate::err(&format!("wrote {}\n", output.display()));
    Ok(finish(file, &report.timeline.end))
}

/// The picture `report timeline` writes to `output`: `svg`, `png` or `html`, by its extension.
/// A name without one (`/dev/stdout`, a pipe's path, `mem`) gets SVG, the default picture, or
/// HTML with --html; any other extension is refused, as is --html with a picture's.
fn picture_format(output: &Path, html: bool) -> anyhow::Result<&'static str> {
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    let format = match ext.as_deref() {
        None if html => "html",
        None => "svg",
        Some("html" | "htm") => "html",
        Some("svg") => "svg",
        Some("png") => "png",
        Some(other) => {
            return Err(crate::usage(format!(
                "-o {}: .{other} is not a picture format memsleuth writes; name the output \
                 .svg, .png or .html (a name without an extension gets SVG)",
                output.display()
            )))
        }
    };
    if html && format != "html" {
        return Err(crate::usage(format!(
            "--html contradicts -o {} (a .{format} picture); drop --html, or name the output \
             .html",
            output.display()
        )));
    }
    Ok(format)
}

fn diff(a: &Path, b: &Path, json: bool, fail_over: Option<u64>, top: usize) -> anyhow::Result<i32> {
    let opts = DiffOptions::default();
    let ra = LeakReport::from_path(a, &opts.leaks).map_err(|e| analysis_error(a, e))?;
    let rb = LeakReport::from_path(b, &opts.leaks).map_err(|e| analysis_error(b, e))?;
    let d = DiffReport::from_reports(&ra, &rb);
    let (na, nb) = (a.display().to_string(), b.display().to_string());
    if json {
        crate::out(&format!("{}\n", text::diff_json(&d, top, &na, &nb)));
    } else {
        crate::out(&text::diff_text(&d, top, &na, &nb));
    }
    let code = finish(a, &d.a.end).max(finish(b, &d.b.end));
    if code != 0 {
        return Ok(code);
    }
    if let Some(limit) = fail_over {
        if d.growth_bytes > 0 && d.growth_bytes as u64 > limit {
            crate::err(&format!(
                "memsleuth: check failed: {nb} leaks {} more than {na} (allowed: {})\n",
                memsleuth_render::units::bytes(d.growth_bytes as f64),
                memsleuth_render::units::bytes(limit as f64)
            ));
            return Ok(crate::EXIT_GROWING);
        }
    }
    Ok(0)
}

/// Reads what the timeline, gc and pymalloc reports need, with the capture named in errors.
fn read_records(path: &Path) -> anyhow::Result<Capture> {
    memsleuth_format::read_capture_series(path).map_err(|e| read_error(path, e))
}

fn pymalloc(file: &Path, json: bool) -> anyhow::Result<i32> {
    use memsleuth_analysis::pymalloc::{PymallocOptions, PymallocReport};
    let capture = read_records(file)?;
    let Some(r) = PymallocReport::from_capture(&capture, &PymallocOptions::default()) else {
        return Err(nothing(
            file,
            Missing::Pymalloc,
            Some(end_of(&capture)),
            "the capture holds no pymalloc snapshots; `memsleuth run` records them, as does \
             `memsleuth.Tracker(path, census=1.0)` from Python",
        ));
    };
    if json {
        crate::out(&format!(
            "{}\n",
            memsleuth_render::pymalloc::pymalloc_json(&r)
        ));
    } else {
        crate::out(&memsleuth_render::pymalloc::pymalloc_text(&r));
    }
    Ok(finish(file, &r.end))
}

fn gc(file: &Path, json: bool) -> anyhow::Result<i32> {
    use memsleuth_analysis::gcstats::{GcOptions, GcReport};
    let capture = read_records(file)?;
    let Some(r) = GcReport::from_capture(&capture, &GcOptions::default()) else {
        return Err(nothing(
            file,
            Missing::Gc,
            Some(end_of(&capture)),
            "the capture holds no gc collections and no censuses; record them with \
             `memsleuth run app.py`",
        ));
    };
    if json {
        crate::out(&format!("{}\n", memsleuth_render::gc::gc_json(&r)));
    } else {
        crate::out(&memsleuth_render::gc::gc_text(&r));
    }
    Ok(finish(file, &r.end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("500K"), Ok(500 << 10));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("1.5 MB"), Ok(3 << 19));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-5").is_err());
    }

    #[test]
    fn censuses_parse_as_numbers_or_times() {
        assert_eq!(parse_census("#1"), Ok(CensusPick::Index(0)));
        assert_eq!(parse_census(" #12 "), Ok(CensusPick::Index(11)));
        assert_eq!(parse_census("2.5"), Ok(CensusPick::At(2_500_000_000)));
        assert_eq!(parse_census("1m"), Ok(CensusPick::At(60_000_000_000)));
        assert!(parse_census("#0").is_err());
        assert!(parse_census("#last").is_err());
        assert!(parse_census("#").is_err());
        assert!(parse_census("later").is_err());
    }

    #[test]
    fn times_parse_as_seconds_or_durations() {
        assert_eq!(parse_at("0"), Ok(0));
        assert_eq!(parse_at("12.5"), Ok(12_500_000_000));
        assert_eq!(parse_at("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_at("250ms"), Ok(250_000_000));
        assert!(parse_at("-1").is_err());
        assert!(parse_at("soon").is_err());
        assert!(parse_at("NaN").is_err());
    }
}
