"""Accuracy of leak verdicts: memsleuth against tracemalloc and memray on the programs of
tests/corpus, written to the "Accuracy of leak verdicts" part of bench/RESULTS.md.

tests/corpus holds small realistic programs (2-4 s each), some leaking in one known way and
some that only look like it (caches at capacity, warm-up tables, sawtooth buffers, lazy
imports...); tests/corpus/truth.json says which is which: kind, allocating line and holder.
Each program is run in a fresh process by each tool:

    plain        python prog.py                                   (the program's own time)
    memsleuth    python -m memsleuth run --check -o CAP prog.py
                 python -m memsleuth report verdict --json CAP
    tracemalloc  python accuracy_peers.py tracemalloc OUT.json prog.py
                 (tracemalloc.start(25), snapshot at start and when the main code returned,
                 end.compare_to(start, "lineno"))
    memray       python -m memray run -q -f --trace-python-allocators -o CAP.bin prog.py
                 python accuracy_peers.py memray CAP.bin prog.py OUT.json
                 (FileReader.get_leaked_allocation_records(merge_threads=True), by line)

and scored against the truth (see score() and the rules written into RESULTS.md). A tool run
that fails is recorded as an error with the first line of its stderr; it never stops the bench.
The C extensions some programs import are built first (tests/corpus/native/build.py) into a
temporary directory put on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from results_md import cpu_model, tree_revision, write_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "corpus"
TRUTH = CORPUS / "truth.json"
PEERS = HERE / "accuracy_peers.py"
PY = sys.executable
TIMEOUT = 1200.0  # seconds, per child (tracemalloc with 25 frames is slow)
SECTION = "bench_accuracy.py"

TOOLS = {
    "memsleuth": "memsleuth",
    "tracemalloc": "tracemalloc start/end diff",
    "memray": "memray leaked allocations",
}
PEER_TOOLS = ("tracemalloc", "memray")
# --quick: a few leaks of different kinds and a few look-alikes
QUICK = (
    "session_store.py",
    "worker_context.py",
    "graph_builder.py",
    "frame_buffer.py",
    "spool_writer.py",
    "geo_lookup.py",
    "batch_exporter.py",
    "report_exporter.py",
)
# kinds a peer finds only by naming the allocating line (any report counts for native)
LINE_ONLY = ("gc-cycles", "fds", "threads")


@dataclass
class Child:
    rc: int
    stdout: str
    stderr: str
    wall: float


def run_child(argv: list[str], env: dict[str, str], cwd: Path) -> Child:
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else e.stderr
        return Child(-9, "", f"timed out after {TIMEOUT:.0f} s\n{err or ''}", TIMEOUT)
    return Child(p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)


def first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # a Python traceback's useful line is its last; anything else, its first
    if lines and lines[0].startswith("Traceback"):
        return lines[-1][:200]
    return lines[0][:200] if lines else "no output"


@dataclass
class Outcome:
    """One tool on one program: what it concluded, or why it could not."""

    error: Optional[str] = None
    leak: bool = False  # reported a leak (memsleuth: verdict "leaking")
    verdict: str = ""  # memsleuth's verdict word
    line: Optional[str] = None  # "file.py:N" of the top report
    kind: Optional[str] = None  # memsleuth: kind of findings[0]
    bytes: int = 0  # peers: bytes behind the top line
    wall: float = 0.0  # seconds to the verdict (all commands)
    findings: list[dict[str, Any]] = field(default_factory=list)
    # scores, filled by score()
    found: Optional[bool] = None
    line_ok: Optional[bool] = None
    holder_ok: Optional[bool] = None
    false_alarm: Optional[bool] = None


def basename_line(location: Optional[dict[str, Any]]) -> Optional[str]:
    if not location or location.get("file") is None or location.get("line") is None:
        return None
    return f"{os.path.basename(str(location['file']))}:{location['line']}"


def run_memsleuth(prog: Path, tmp: Path, env: dict[str, str]) -> Outcome:
    cap = tmp / f"{prog.stem}.msl"
    cap.unlink(missing_ok=True)
    run = run_child([PY, "-m", "memsleuth", "run", "--check", "-o", str(cap), str(prog)], env, tmp)
    if run.rc not in (0, 3):
        return Outcome(error=f"run exit {run.rc}: {first_line(run.stderr)}", wall=run.wall)
    rep = run_child([PY, "-m", "memsleuth", "report", "verdict", "--json", str(cap)], env, tmp)
    wall = run.wall + rep.wall
    cap.unlink(missing_ok=True)
    if rep.rc != 0:
        return Outcome(error=f"report exit {rep.rc}: {first_line(rep.stderr)}", wall=wall)
    try:
        doc = json.loads(rep.stdout)
        verdict = str(doc["verdict"])
        findings = list(doc["findings"])
    except (ValueError, KeyError, TypeError) as e:
        return Outcome(error=f"report verdict --json: unreadable output ({e})", wall=wall)
    top = findings[0] if findings else {}
    out = Outcome(
        leak=verdict == "leaking",
        verdict=verdict,
        line=basename_line(top.get("location")),
        kind=top.get("kind"),
        wall=wall,
        findings=findings,
    )
    if (run.rc == 3) != out.leak:  # `run --check` and the report disagree: say so
        out.error = f"run --check exit {run.rc} but verdict {verdict!r}"
    return out


def run_peer(tool: str, prog: Path, tmp: Path, env: dict[str, str]) -> Outcome:
    out_json = tmp / f"{prog.stem}.{tool}.json"
    out_json.unlink(missing_ok=True)
    if tool == "tracemalloc":
        child = run_child([PY, str(PEERS), "tracemalloc", str(out_json), str(prog)], env, tmp)
        wall = child.wall
        if child.rc != 0:
            return Outcome(error=f"exit {child.rc}: {first_line(child.stderr)}", wall=wall)
    else:
        cap = tmp / f"{prog.stem}.memray.bin"
        memray = [PY, "-m", "memray", "run", "-q", "-f", "--trace-python-allocators"]
        rec = run_child([*memray, "-o", str(cap), str(prog)], env, tmp)
        if rec.rc != 0:
            cap.unlink(missing_ok=True)
            return Outcome(error=f"run exit {rec.rc}: {first_line(rec.stderr)}", wall=rec.wall)
        child = run_child([PY, str(PEERS), "memray", str(cap), str(prog), str(out_json)], env, tmp)
        wall = rec.wall + child.wall
        cap.unlink(missing_ok=True)
        if child.rc != 0:
            return Outcome(error=f"leaks exit {child.rc}: {first_line(child.stderr)}", wall=wall)
    try:
        doc = json.loads(out_json.read_text())
    except (OSError, ValueError) as e:
        return Outcome(error=f"no result ({e})", wall=wall)
    return Outcome(leak=bool(doc["leak"]), line=doc["line"], bytes=int(doc["bytes"]), wall=wall)


def run_plain(prog: Path, tmp: Path, env: dict[str, str]) -> Outcome:
    child = run_child([PY, str(prog)], env, tmp)
    if child.rc != 0:
        return Outcome(error=f"exit {child.rc}: {first_line(child.stderr)}", wall=child.wall)
    return Outcome(wall=child.wall)


# ---------------------------------------------------------------------------------------------
# scoring


def score(tool: str, truth: dict[str, Any], o: Outcome) -> None:
    """Fills o's scores from the ground truth (nothing for a failed run).

    memsleuth: found = verdict "leaking" and a finding of the true kind; line_ok = findings[0]
    has the true kind and (kind python) the true basename:line; holder_ok = a finding of the
    true kind has a holder containing the true holder. A control is a false alarm when the
    verdict is "leaking".
    Peers: found = a leak reported, except for gc-cycles, fds and threads, where the reported
    line must be the true line; line_ok = the reported line is the true line (python kind)."""
    if o.error is not None:
        return
    if not truth["leaks"]:
        o.false_alarm = o.leak
        return
    kind, line, holder = truth["kind"], truth["line"], truth["holder"]
    if tool == "memsleuth":
        of_kind = [f for f in o.findings if f.get("kind") == kind]
        o.found = o.leak and bool(of_kind)
        if kind == "python":
            top = o.findings[0] if o.findings else {}
            o.line_ok = top.get("kind") == kind and basename_line(top.get("location")) == line
        if holder:
            o.holder_ok = any(holder in str(f.get("holder") or "") for f in of_kind)
        return
    if kind in LINE_ONLY:
        o.found = o.leak and o.line == line
    else:
        o.found = o.leak
    if kind == "python":
        o.line_ok = o.leak and o.line == line


# ---------------------------------------------------------------------------------------------
# formatting


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def size(n: int) -> str:
    if abs(n) >= 2**20:
        return f"{n / 2**20:.1f} MiB"
    return f"{n / 1024:.0f} KiB"


def secs(s: float) -> str:
    return f"{s:.1f} s"


def mark(ok: Optional[bool]) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def cell(tool: str, truth: dict[str, Any], o: Optional[Outcome]) -> str:
    if o is None:
        return "-"
    if o.error is not None:
        return "error: " + o.error.replace("|", "\\|").replace("`", "'")
    if tool == "memsleuth":
        if not o.leak:
            text = o.verdict or "no leak"
        else:
            top = f"{o.kind} {o.line}" if o.line else str(o.kind)
            text = f"leaking: {top}"
            if len(o.findings) > 1:
                text += f" (+{len(o.findings) - 1})"
        if truth["leaks"]:
            text += mark(o.found)
            if o.line_ok is not None:
                text += ", line" + mark(o.line_ok)
            if o.holder_ok is not None:
                text += ", holder" + mark(o.holder_ok)
        elif o.false_alarm:
            text += " **false alarm**"
        return text + f", {secs(o.wall)}"
    text = (f"leak: {o.line} ({size(o.bytes)})" if o.leak else "no leak") + (
        "" if o.leak or not o.line else f" (top {o.line}, {size(o.bytes)})"
    )
    if truth["leaks"]:
        text += mark(o.found)
        if o.line_ok is not None:
            text += ", line" + mark(o.line_ok)
    elif o.false_alarm:
        text += " **false alarm**"
    return text + f", {secs(o.wall)}"


def summary_rows(
    tools: list[str], truths: list[dict[str, Any]], results: dict[str, dict[str, Outcome]]
) -> list[list[str]]:
    leaks = [t for t in truths if t["leaks"]]
    controls = [t for t in truths if not t["leaks"]]
    python = [t for t in leaks if t["kind"] == "python"]
    held = [t for t in leaks if t["holder"]]

    def count(tool: str, group: list[dict[str, Any]], attr: str) -> str:
        outs = [results[t["program"]].get(tool) for t in group]
        ran = [o for o in outs if o is not None]
        good = sum(1 for o in ran if getattr(o, attr))
        errors = sum(1 for o in ran if o.error is not None)
        text = f"{good} / {len(ran)}"
        return text + (f" ({errors} errors)" if errors else "")

    def median_wall(tool: str) -> str:
        walls = [
            o.wall
            for t in truths
            if (o := results[t["program"]].get(tool)) is not None and o.error is None
        ]
        return secs(statistics.median(walls)) if walls else "n/a"

    rows = [
        ["leaks found (memsleuth: the right kind)", *(count(t, leaks, "found") for t in tools)],
        [
            "right line first (python-object leaks)",
            *(count(t, python, "line_ok") for t in tools),
        ],
        [
            "right holder",
            *(count(t, held, "holder_ok") if t == "memsleuth" else "n/a" for t in tools),
        ],
        ["false alarms on look-alikes", *(count(t, controls, "false_alarm") for t in tools)],
        ["median time to verdict", *(median_wall(t) for t in tools)],
    ]
    return rows


def machine_facts() -> list[str]:
    cpu = cpu_model()
    rev = tree_revision(ROOT)
    try:
        import memsleuth

        ms = f"memsleuth {memsleuth.__version__} built from `{rev}`"
    except ImportError:
        ms = f"memsleuth not importable (tree `{rev}`)"
    try:
        mr = f"memray {importlib.metadata.version('memray')}"
    except importlib.metadata.PackageNotFoundError:
        mr = "memray not installed"
    return [
        f"- machine: {os.cpu_count()} cores ({cpu}), Linux {platform.release()}",
        f"- Python {platform.python_version()} (tracemalloc is its own), {mr}, {ms}",
    ]


def render(
    tools: list[str],
    truths: list[dict[str, Any]],
    results: dict[str, dict[str, Outcome]],
    started: datetime.datetime,
    load_before: tuple[float, float, float],
) -> str:
    cmd = os.environ.get("BENCH_COMMAND") or "bench/bench_accuracy.py " + " ".join(sys.argv[1:])
    n_leaks = sum(1 for t in truths if t["leaks"])
    lines = [
        "## Accuracy of leak verdicts",
        "",
        f"- command: `{cmd}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}; load average "
        f"{load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after",
        *machine_facts(),
        f"- {len(truths)} programs of `tests/corpus` ({n_leaks} leaking, "
        f"{len(truths) - n_leaks} look-alikes that do not leak), one fresh process per tool",
        "",
        "The programs are small realistic applications (2-4 s each), written so that nothing",
        "in a name or a comment gives the answer away; `tests/corpus/truth.json` holds the",
        "answer for each: leaks or not, the kind (python objects, gc cycles with the collector",
        "off, objects held from C, native memory, file descriptors, threads), the line that",
        "allocates what is kept and a name the retention chain must mention.",
        "",
        "How each tool's verdict is read:",
        "",
        "- **memsleuth**: `python -m memsleuth run --check -o CAP prog.py`, then",
        "  `python -m memsleuth report verdict --json CAP`. It finds a leak when the verdict is",
        '  "leaking" and a finding has the true kind; right line when `findings[0]` has the true',
        "  kind and file:line; right holder when a finding of that kind names the true holder.",
        "- **tracemalloc** (`bench/accuracy_peers.py`): `tracemalloc.start(25)`, a snapshot",
        "  right after, the program run with `runpy`, a snapshot when its main code returned,",
        '  `end.compare_to(start, "lineno")`. The rule a developer eyeballing the diff follows:',
        "  a leak when the top entry's `size_diff` is positive and at least max(256 KiB, 1% of",
        "  the memory traced at the end); its line is that entry's. No holder.",
        "- **memray**: `memray run --trace-python-allocators -o F prog.py`, then",
        "  `memray.FileReader(F).get_leaked_allocation_records(merge_threads=True)` (what is",
        "  still allocated when the program's main code returned), summed by the first frame in",
        "  the program's own file (else the top frame). A leak when the largest sum is at least",
        "  256 KiB; its line is that frame. No holder.",
        "- A peer finds a gc-cycles, fds or threads leak only by naming its line (it has no such",
        "  kind); a native leak, by reporting any leak; others, by reporting a leak. Right line",
        "  is scored on the python-object leaks. A look-alike is a false alarm when the tool",
        "  reports a leak. Time to verdict: wall time of all the tool's commands, start-up and",
        "  capture reading included.",
        "- The peers' rules are applied mechanically: a top entry in `<frozen importlib...>` (the",
        "  code of modules imported after tracing started) is a leak report like any other, so a",
        "  peer can be credited with a native leak it cannot see; the per-program table shows",
        "  where each report points.",
        "",
        "### Scores",
        "",
    ]
    lines += table(
        ["", *(TOOLS[t] for t in tools)],
        summary_rows(tools, truths, results),
    )
    lines += [
        "",
        "### Per program",
        "",
        "✓/✗: found (for memsleuth: the right kind), right line, right holder. The peers' line",
        "is where they point; the size is what they attribute to it. Plain: the program alone.",
        "",
    ]
    rows = []
    for t in truths:
        name = t["program"]
        res = results[name]
        truth_text = "no leak" if not t["leaks"] else f"{t['kind']} {t['line'] or ''}".strip()
        plain = res.get("plain")
        plain_text = (
            "-"
            if plain is None
            else (secs(plain.wall) if plain.error is None else "error: " + plain.error)
        )
        rows.append(
            [f"`{name}`", truth_text, plain_text, *(cell(tool, t, res.get(tool)) for tool in tools)]
        )
    lines += table(["program", "truth", "plain", *(TOOLS[t] for t in tools)], rows)
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def load_truth() -> list[dict[str, Any]]:
    doc = json.loads(TRUTH.read_text())
    return list(doc["programs"] if isinstance(doc, dict) else doc)


def build_native(tmp: Path) -> Optional[Path]:
    spec = importlib.util.spec_from_file_location(
        "corpus_native_build", CORPUS / "native" / "build.py"
    )
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    try:
        return Path(mod.build(tmp / "native"))
    except (RuntimeError, OSError) as e:
        print(f"C extensions not built: {e}", file=sys.stderr)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="RESULTS.md to update (default: print only)")
    ap.add_argument("--quick", action="store_true", help=f"only {len(QUICK)} of the programs")
    ap.add_argument("--programs", help="comma-separated program names (e.g. a.py,b.py)")
    ap.add_argument("--tools", help="comma-separated subset of: " + ", ".join(TOOLS))
    ap.add_argument("--no-plain", action="store_true", help="skip the untracked runs")
    ap.add_argument("--json", type=Path, help="also write the raw outcomes here")
    args = ap.parse_args()

    truths = load_truth()
    known = {t["program"] for t in truths}
    if args.programs:
        wanted = [p.strip() for p in args.programs.split(",") if p.strip()]
        unknown = [p for p in wanted if p not in known]
        if unknown:
            ap.error(f"not in tests/corpus/truth.json: {', '.join(unknown)}")
        truths = [t for t in truths if t["program"] in wanted]
    elif args.quick:
        truths = [t for t in truths if t["program"] in QUICK]
    tools = list(TOOLS)
    if args.tools:
        tools = [t.strip() for t in args.tools.split(",") if t.strip()]
        bad = [t for t in tools if t not in TOOLS]
        if bad:
            ap.error(f"unknown tools: {', '.join(bad)} (choose from {', '.join(TOOLS)})")

    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="memsleuth-accuracy-"))
    results: dict[str, dict[str, Outcome]] = {}
    try:
        native = build_native(tmp)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if native is not None:
            env["PYTHONPATH"] = str(native)
        env["PYTHONHASHSEED"] = "0"
        for t in truths:
            prog = CORPUS / t["program"]
            res: dict[str, Outcome] = {}
            if not args.no_plain:
                res["plain"] = run_plain(prog, tmp, env)
            for tool in tools:
                o = (
                    run_memsleuth(prog, tmp, env)
                    if tool == "memsleuth"
                    else run_peer(tool, prog, tmp, env)
                )
                score(tool, t, o)
                res[tool] = o
                shown = o.error or ("leak " if o.leak else "no leak ") + str(o.line or "")
                print(f"{t['program']:<24} {tool:<12} {o.wall:7.1f} s  {shown}", file=sys.stderr)
            results[t["program"]] = res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    text = render(tools, truths, results, started, load_before)
    if args.out:
        ms_broken = "memsleuth" in tools and any(
            r["memsleuth"].error is not None for r in results.values() if "memsleuth" in r
        )
        if ms_broken and not os.environ.get("MEMSLEUTH_BENCH_WRITE_ERRORS"):
            print(
                f"not writing {args.out}: memsleuth failed on some programs (set "
                "MEMSLEUTH_BENCH_WRITE_ERRORS=1 to write anyway)",
                file=sys.stderr,
            )
        else:
            write_section(args.out, SECTION, text)
            print(f"wrote {args.out}", file=sys.stderr)
    print(text)
    if args.json:
        raw = {p: {tool: asdict(o) for tool, o in r.items()} for p, r in results.items()}
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
