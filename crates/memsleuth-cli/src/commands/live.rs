//! `memsleuth live FILE`: a terminal view that follows a capture while it is written (by
//! `run` or `attach`, in another process or this one) and refreshes every second.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use memsleuth_analysis::allocs::Followed;
use memsleuth_analysis::{LeakOptions, ProgramVerdict};
use memsleuth_render::live::{draw, sorted_sites, LiveSort, LiveView};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

#[derive(Debug, Args)]
#[command(
    about = "Follow a capture while it is written: memory over time, the sites that grow, the types that grow",
    long_about = "Follow a capture while it is written (by `memsleuth run` or `attach`, in \
        another terminal) or read a finished one: RSS and the tracked heap over time, the live \
        memory of each allocation site with its verdict (`growing` with a rate), the types the \
        censuses see growing, and the verdict so far. It refreshes every second.\n\n\
        Keys: s changes the order (bytes, growth, blocks); up/down (or k/j) select a site; \
        enter shows its stack; q leaves.",
    after_help = "Examples:\n  \
        memsleuth run -o app.msl app.py &   then   memsleuth live app.msl\n  \
        memsleuth attach 1234 --live        record a running process and watch it"
)]
pub struct LiveArgs {
    /// The capture to follow
    #[arg(value_name = "FILE")]
    capture: PathBuf,
    /// Time between refreshes
    #[arg(long, default_value = "1s", value_parser = super::watch::parse_duration)]
    interval: Duration,
}

pub fn run(args: LiveArgs) -> anyhow::Result<i32> {
    check_capture(&args.capture)?;
    need_terminal(&args.capture)?;
    follow(&args.capture, args.interval)?;
    Ok(0)
}

/// How long `live` waits for a capture that does not exist yet (`run -o X app.py & live X`
/// starts the view before the recorder made the file).
const APPEARS_WITHIN: Duration = Duration::from_secs(3);

/// A missing file, or one that is no capture, is one line before the screen is taken.
pub(crate) fn check_capture(path: &Path) -> anyhow::Result<()> {
    let since = Instant::now();
    while !path.exists() && since.elapsed() < APPEARS_WITHIN {
        std::thread::sleep(Duration::from_millis(50));
    }
    let file = memsleuth_format::open_capture(path).map_err(|e| match e {
        memsleuth_format::FormatError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            anyhow::anyhow!(
                "no capture at {} (waited {} for it); give the path `run -o` or `attach -o` writes",
                path.display(),
                humantime::format_duration(APPEARS_WITHIN)
            )
        }
        other => anyhow::Error::new(other).context(format!("cannot read {}", path.display())),
    })?;
    match memsleuth_format::Reader::new(file) {
        Ok(_) | Err(memsleuth_format::FormatError::Empty) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot follow {}", path.display()))),
    }
}

/// The view draws on a terminal: anything else is one line, before any work.
pub(crate) fn need_terminal(path: &Path) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        bail!(
            "the live view draws on a terminal, and standard output is not one; for text, use `memsleuth report verdict {}`",
            path.display()
        );
    }
    Ok(())
}

/// Runs the view on `path` until the user leaves it.
pub(crate) fn follow(path: &Path, interval: Duration) -> anyhow::Result<()> {
    need_terminal(path)?;
    let mut terminal = ratatui::try_init().context("cannot take over the terminal")?;
    let result = view_loop(&mut terminal, path, interval);
    ratatui::restore();
    result
}

fn view_loop(
    terminal: &mut ratatui::DefaultTerminal,
    path: &Path,
    interval: Duration,
) -> anyhow::Result<()> {
    let mut followed = Followed::new(path, LeakOptions::default());
    let mut verdict: Option<ProgramVerdict> = None;
    let mut problem: Option<String> = None;
    let mut sort = LiveSort::Bytes;
    let mut selected = 0usize;
    let mut show_stack = false;
    let mut next = Instant::now();
    loop {
        if Instant::now() >= next {
            match followed.refresh() {
                Ok(Some(v)) => {
                    verdict = Some(v);
                    problem = None;
                }
                Ok(None) => {}
                Err(e) => problem = Some(crate::without_os_error(&e.to_string())),
            }
            next = Instant::now() + interval;
        }
        let sites = verdict
            .as_ref()
            .and_then(|v| v.leaks.as_ref())
            .map_or(0, |r| sorted_sites(r, sort).len());
        selected = selected.min(sites.saturating_sub(1));
        terminal.draw(|frame| {
            draw(
                frame,
                &LiveView {
                    verdict: verdict.as_ref(),
                    capture: path,
                    sort,
                    selected,
                    show_stack,
                    problem: problem.as_deref(),
                },
            );
        })?;
        let wait = next.saturating_duration_since(Instant::now());
        if !event::poll(wait)? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
            KeyCode::Char('s') => sort = sort.next(),
            KeyCode::Up | KeyCode::Char('k') => selected = selected.saturating_sub(1),
            KeyCode::Down | KeyCode::Char('j') => selected += 1,
            KeyCode::Enter => show_stack = !show_stack,
            _ => {}
        }
    }
}
