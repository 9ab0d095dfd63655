//! `memsleuth live FILE`: a terminal view that follows a capture while it is written (by
//! `run` or `attach`, in another process or this one) and refreshes every second.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use memsleuth_analysis::allocs::Followed;
use memsleuth_analysis::{LeakOptions, ProgramVerdict};
use memsleuth_render::live::{draw, LiveSort, LiveView};

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
    follow(&own_pass(&args.capture), &args.capture, args.interval)?;
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

/// A pass on `path` for the view alone.
pub(crate) fn own_pass(path: &Path) -> Mutex<Followed> {
    Mutex::new(Followed::new(path, LeakOptions::default()))
}

/// Runs the view on `path` until the user leaves it, reading on `pass`, which is shared with
/// `attach`'s answer to the process (it reads no other way while the view runs).
pub(crate) fn follow(
    pass: &Mutex<Followed>,
    path: &Path,
    interval: Duration,
) -> anyhow::Result<()> {
    need_terminal(path)?;
    // SIGHUP (the terminal closed), SIGTERM: leave the view as `q` would, with the terminal
    // restored; in raw mode Ctrl-C is a key, read below
    let stop = crate::signals::StopOnSignal::install();
    let mut screen = Screen::take().context("cannot take over the terminal")?;
    view_loop(&mut screen.terminal, pass, path, interval, &stop)
}

/// The view's terminal: `ratatui`'s, writing to standard output.
type ViewTerminal = ratatui::Terminal<ratatui::backend::CrosstermBackend<ViewOutput>>;

/// The terminal in raw mode on the alternate screen, given back when dropped (on a return, an
/// error or a panic's unwinding).
///
/// Not `ratatui::init`: the panic hook it installs stays for the rest of the process, and its
/// `restore` reports with `eprintln!`, which panics when the terminal has gone (SIGHUP: EIO);
/// that panic inside the hook aborted `attach --live` before its verdict (seen in the test of a
/// terminal closing).
struct Screen {
    terminal: ViewTerminal,
    _given_back: Restore,
}

impl Screen {
    fn take() -> std::io::Result<Screen> {
        use ratatui::crossterm::{execute, terminal};
        terminal::enable_raw_mode()?;
        // given back from here on, even if what follows fails
        let given_back = Restore;
        execute!(std::io::stdout(), terminal::EnterAlternateScreen)?;
        let backend = ratatui::backend::CrosstermBackend::new(ViewOutput { gone: false });
        let terminal = ratatui::Terminal::new(backend)?;
        Ok(Screen {
            terminal,
            _given_back: given_back,
        })
    }
}

/// Puts the terminal back when dropped; a terminal that has gone is left alone, silently.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        let _ = ratatui::try_restore();
    }
}

/// Standard output for the view. Once the terminal has gone (a hangup: EIO, ENXIO), what is
/// written is dropped: nobody is left to see it, and the view ends on the hangup itself. Without
/// this, the terminal's own drop reports its failure to show the cursor with `eprintln!`, which
/// panics on that same dead terminal.
struct ViewOutput {
    gone: bool,
}

impl ViewOutput {
    fn gone_on<T>(&mut self, done: std::io::Result<T>, instead: T) -> std::io::Result<T> {
        match done {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::ENXIO)) => {
                self.gone = true;
                Ok(instead)
            }
            done => done,
        }
    }
}

impl std::io::Write for ViewOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.gone {
            return Ok(buf.len());
        }
        let written = std::io::stdout().write(buf);
        self.gone_on(written, buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.gone {
            return Ok(());
        }
        let flushed = std::io::stdout().flush();
        self.gone_on(flushed, ())
    }
}

fn view_loop(
    terminal: &mut ViewTerminal,
    pass: &Mutex<Followed>,
    path: &Path,
    interval: Duration,
    stop: &crate::signals::StopOnSignal,
) -> anyhow::Result<()> {
    let mut verdict: Option<ProgramVerdict> = None;
    let mut problem: Option<String> = None;
    let mut sort = LiveSort::Bytes;
    let mut selected = 0usize;
    let mut show_stack = false;
    let mut next = Instant::now();
    loop {
        if stop.requested() {
            return Ok(());
        }
        if Instant::now() >= next {
            // a pass whose other reader panicked is read on as it is
            let refreshed = pass
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .refresh();
            match refreshed {
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
            .map_or(0, |r| r.leaks.sites.len());
        selected = selected.min(sites.saturating_sub(1));
        let drawn = terminal.draw(|frame| {
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
        });
        if let Err(e) = drawn {
            // the terminal hung up under the draw (its size is unreadable then): nobody is
            // looking, as below
            if stop.requested() || read_keys(Duration::ZERO).is_none() {
                return Ok(());
            }
            return Err(e.into());
        }
        // a signal is looked for at least this often
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        let Some(keys) = read_keys(wait) else {
            // the terminal is gone (closed, hung up): nobody is looking
            return Ok(());
        };
        for key in keys {
            match key {
                Key::Quit => return Ok(()),
                Key::Sort => sort = sort.next(),
                Key::Up => selected = selected.saturating_sub(1),
                Key::Down => selected += 1,
                Key::Enter => show_stack = !show_stack,
            }
        }
    }
}

/// A key the view acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Quit,
    Sort,
    Up,
    Down,
    Enter,
}

/// The keys typed within `wait`, read from standard input (the terminal, in raw mode), or
/// `None` when the terminal hung up. Read here with `poll(2)` rather than through crossterm's
/// event reader, which spins on a terminal that closed under it.
fn read_keys(wait: Duration) -> Option<Vec<Key>> {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one pollfd, valid for the call.
    let ready = unsafe { libc::poll(&mut fds, 1, ms) };
    if ready < 0 {
        // interrupted by a signal: the caller looks at its flag
        return Some(Vec::new());
    }
    if ready == 0 {
        return Some(Vec::new());
    }
    if fds.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
        && fds.revents & libc::POLLIN == 0
    {
        return None;
    }
    let mut buf = [0u8; 64];
    // SAFETY: reads into a buffer of that length.
    let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return None;
    }
    Some(parse_keys(&buf[..n as usize]))
}

/// Keys from the bytes a terminal sends in raw mode: letters, Enter, Ctrl-C, Esc, and the
/// arrows' escape sequences.
fn parse_keys(bytes: &[u8]) -> Vec<Key> {
    let mut keys = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let key = match bytes[i] {
            b'q' | 0x03 => Some(Key::Quit),
            b's' => Some(Key::Sort),
            b'k' => Some(Key::Up),
            b'j' => Some(Key::Down),
            b'\r' | b'\n' => Some(Key::Enter),
            0x1b => match bytes.get(i + 1..i + 3) {
                Some(b"[A") | Some(b"OA") => {
                    i += 2;
                    Some(Key::Up)
                }
                Some(b"[B") | Some(b"OB") => {
                    i += 2;
                    Some(Key::Down)
                }
                // a lone Esc; any other sequence is skipped whole
                _ if bytes.len() == i + 1 => Some(Key::Quit),
                _ => {
                    i = bytes.len();
                    None
                }
            },
            _ => None,
        };
        keys.extend(key);
        i += 1;
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::{parse_keys, Key};

    #[test]
    fn keys_are_read_from_what_a_terminal_sends_in_raw_mode() {
        assert_eq!(parse_keys(b"q"), vec![Key::Quit]);
        assert_eq!(parse_keys(b"\x03"), vec![Key::Quit]);
        assert_eq!(parse_keys(b"\x1b"), vec![Key::Quit]);
        assert_eq!(parse_keys(b"\x1b[A\x1b[B"), vec![Key::Up, Key::Down]);
        assert_eq!(parse_keys(b"\x1bOB"), vec![Key::Down]);
        assert_eq!(parse_keys(b"sj\r"), vec![Key::Sort, Key::Down, Key::Enter]);
        // F5 and the like are ignored, not read as Esc
        assert_eq!(parse_keys(b"\x1b[15~"), vec![]);
    }
}
