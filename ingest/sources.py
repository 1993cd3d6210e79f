"""Job sources behind one interface: ``run(ctx)`` ingests what is new and counts it in ``ctx.outcome``.

- :class:`DropFolder`: files dropped in a folder, each one batch, then moved out of the way.
- :class:`MappedTable`: a wide export read in place through a mapping file.
- :class:`ingest.http.HttpFeed`: URLs fetched with conditional GETs (in ingest/http.py).

Exactly once, and nothing lost (drop folder). A file is ingested first and moved second, and both
steps are safe to repeat: event ids are content-derived, so re-ingesting a file adds nothing; a move
is one ``rename`` (or copy, fsync, rename, then unlink across file systems), so a file is always in
the drop folder, in ``processed/`` or in ``quarantine/`` and never nowhere. A process killed between
the two steps leaves the file in the drop folder; the next run finds its events already present
and simply moves it. A rejected file gets its report written before it is moved beside it.
"""

from __future__ import annotations

import datetime as dt
import errno
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ingest.catalog import Catalog
from ingest.mapped import mapped_format
from ingest.pipeline import ingest_file
from ingest.redact import redact_url
from ingest.reports import FileReport
from ingest.progress import Progress, progress
from ingest.runs import RunOutcome
from store import Store, TerminalError
from store.backends import local_state
from store.layout import atomic_write, file_sha256, fsync_dir

#: Names of files still being written by an editor, a browser or a copy tool: never picked up.
TEMPORARY = ("*.tmp", "*.temp", "*.part", "*.partial", "*.crdownload", "*.download", "*.swp", "~$*", ".*",
             "*~", "*.report.txt")


@dataclass
class RunContext:
    """What a source needs to run: where to write, the run it belongs to, and where to count."""

    store: Store
    catalog: Catalog
    run_id: str
    job: str
    outcome: RunOutcome = field(default_factory=RunOutcome)
    terminal: bool | None = None  # progress bar (True), log lines (False), or ask stderr (None)


class SourceRunner(Protocol):
    def run(self, ctx: RunContext) -> None:
        """Ingest what is new; count every input in ``ctx.outcome``."""


def move_into(src: Path, folder: Path) -> Path:
    """Move ``src`` into ``folder`` without ever losing it, and without overwriting a different file.

    A file of the same name and the same bytes is replaced (a re-run after a crash); a different
    one is kept, and ``src`` gets its content hash in its name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    return move_to(src, destination(src, folder))


def destination(src: Path, folder: Path) -> Path:
    """Where ``src`` goes in ``folder``: its own name, or its name with its content hash when a
    different file already has that name."""
    target = folder / src.name
    if target.exists() and file_sha256(target) != file_sha256(src):
        target = folder / f"{src.stem}.{file_sha256(src)[:12]}{src.suffix}"
    return target


def move_to(src: Path, target: Path) -> Path:
    """Rename ``src`` to ``target`` (copy, fsync, rename, unlink across file systems)."""
    folder = target.parent
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = folder / f".{target.name}.{os.getpid()}.moving"
        shutil.copy2(src, tmp)
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(folder)
        src.unlink()  # only once the copy is durable: a crash before this leaves the file twice, never zero
    fsync_dir(folder)
    fsync_dir(src.parent)
    return target


def is_temporary(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in TEMPORARY)


def _report_text(report: FileReport, run_id: str, original: Path) -> str:
    lines = [f"file: {original}", f"run: {run_id}", f"when: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"]
    if report.error:
        lines.append(f"error: {report.error}")
    lines.append(f"events added: {report.added}, already present: {report.already_present}, "
                 f"rows rejected: {report.rejected}")
    if report.quarantine:
        lines.append(f"rejected rows with their reasons: {report.quarantine}")
    if report.problems:
        lines.append("problems:")
        lines.extend(f"  {p}" for p in report.problems[:1000])
        if len(report.problems) > 1000:
            lines.append(f"  ... and {len(report.problems) - 1000} more")
    lines.append("Fix the file and drop it again: events already stored are not stored twice.")
    return "\n".join(lines) + "\n"


@dataclass
class DropFolder:
    """Files dropped in ``path``: each matching file is ingested as one batch, then moved.

    Args:
        path: the folder watched.
        pattern: a glob over file names in the folder (not in its sub-folders).
        fmt: ``auto`` (canonical, SEC or mapped, detected) or a registered format.
        settle: seconds between the two looks at a file's size and time; a file that changed is
            still being written and is left for the next run.
    """

    path: Path
    pattern: str = "*"
    fmt: str = "auto"
    skip_invalid: bool = False
    settle: float = 2.0
    processed: Path | None = None
    quarantine: Path | None = None
    ingest_options: dict[str, Any] = field(default_factory=dict)

    @property
    def processed_dir(self) -> Path:
        return self.processed or self.path / "processed"

    @property
    def quarantine_dir(self) -> Path:
        return self.quarantine or self.path / "quarantine"

    def _matching(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return [p for p in self.path.glob(self.pattern) if p.parent == self.path and not is_temporary(p.name)]

    def candidates(self) -> list[Path]:
        """Files matching the pattern, temporary names and links left out, oldest first."""
        out = [p for p in self._matching() if not _outside(p, self.path) and p.is_file()]
        return sorted(out, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def links(self) -> list[Path]:
        """Names matching the pattern that are links, or lead out of the folder: never read.

        A link could bring any file the scheduler can read (a secrets file, another user's
        export) into the store and its reports; files are dropped by copying them in."""
        return sorted(p for p in self._matching() if _outside(p, self.path))

    def ready(self) -> list[Path]:
        """The candidates whose size and modification time held still over ``settle`` seconds."""
        first = {p: _look(p) for p in self.candidates()}
        if self.settle > 0 and first:
            time.sleep(self.settle)
        return [p for p, look in first.items() if look is not None and _look(p) == look]

    def run(self, ctx: RunContext) -> None:
        for link in self.links():
            self.refuse_link(ctx, link)
        files = self.ready()
        if not files and not ctx.outcome.inputs:
            ctx.outcome.skipped_reason = f"no new file in {self.path}"
            return
        with progress(ctx.job, len(files), terminal=ctx.terminal) as bar:
            for f in files:
                self.one(ctx, f, bar)

    def one(self, ctx: RunContext, f: Path, bar: Progress) -> None:
        if not f.exists():  # taken away since the folder was listed: nothing to do, nothing lost
            return
        report = ingest_file(ctx.store, f, catalog=ctx.catalog, fmt=self.fmt, skip_invalid=self.skip_invalid,
                             run_id=ctx.run_id, **self.ingest_options)
        if report.ok:
            moved = move_into(f, self.processed_dir)
        else:
            # The report first, then the file beside it: a crash in between leaves the file in the
            # drop folder, to be rejected (and reported) again on the next run.
            target = destination(f, self.quarantine_dir)
            atomic_write(target.with_name(target.name + ".report.txt"), _report_text(report, ctx.run_id, f))
            moved = move_to(f, target)
        ctx.outcome.add_file(report, str(f))
        bar.advance(f"{f.name}: {report.summary().split(': ', 1)[-1]} -> {moved.parent.name}/")


    def refuse_link(self, ctx: RunContext, link: Path) -> None:
        """Move a link (the link itself, never what it points to) to quarantine beside a report."""
        why = (f"{link}: is a symbolic link (or leads outside {self.path}); links are not followed: "
               "copy the file into the folder instead")
        target = self.quarantine_dir / link.name
        if os.path.lexists(target):
            target = self.quarantine_dir / f"{link.name}.{time.time_ns()}"
        atomic_write(target.with_name(target.name + ".report.txt"),
                     f"file: {link}\nrun: {ctx.run_id}\nerror: {why}\nNothing was read from it.\n")
        try:
            os.replace(link, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            os.symlink(os.readlink(link), target)    # the link again, across file systems
            link.unlink()
        fsync_dir(target.parent)
        ctx.outcome.add_failure(str(link), why)


def _outside(p: Path, folder: Path) -> bool:
    """Whether ``p`` is a link, or resolves to a place outside ``folder``."""
    try:
        return p.is_symlink() or p.resolve().parent != folder.resolve()
    except OSError:
        return True


def _look(p: Path) -> tuple[int, int] | None:
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


class JobState:
    """Small per-job state (ETags, content hashes) in ``<store>/jobs/<job>.json``, written atomically
    (for an ``s3://`` store, in its local state folder: :func:`store.backends.local_state`)."""

    def __init__(self, store: Store, job: str) -> None:
        self.path = local_state(store.root) / "jobs" / f"{job}.json"
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}

    def get(self, key: str) -> dict[str, Any]:
        v = self.data.get(redact_url(key), self.data.get(key))  # a key written before keys were redacted
        return v if isinstance(v, dict) else {}

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Keyed by the redacted URL (or path): a token in a URL's query never reaches the file."""
        self.data.pop(key, None)
        self.data[redact_url(key)] = value
        atomic_write(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")


@dataclass
class MappedTable:
    """A wide export read in place through a mapping file; skipped while its bytes are unchanged."""

    pattern: str
    mapping: Path
    skip_invalid: bool = False

    def files(self) -> list[Path]:
        p = Path(self.pattern)
        if any(ch in self.pattern for ch in "*?["):
            anchor = Path(p.anchor) if p.is_absolute() else Path(".")
            rel = str(p.relative_to(anchor)) if p.is_absolute() else self.pattern
            return sorted(x for x in anchor.glob(rel) if x.is_file())
        return [p]

    def run(self, ctx: RunContext) -> None:
        fmt = mapped_format(self.mapping)
        state = JobState(ctx.store, ctx.job)
        files = self.files()
        if not files:
            ctx.outcome.skipped_reason = f"no file matches {self.pattern}"
            return
        with progress(ctx.job, len(files), terminal=ctx.terminal) as bar:
            for f in files:
                if not f.is_file():
                    why = "is a directory, not a file" if f.is_dir() else "no such file"
                    ctx.outcome.add_failure(str(f), f"{f}: {why}")
                    bar.advance(f"{f.name}: {why}")
                    continue
                digest = file_sha256(f)
                key = str(f.absolute())
                if state.get(key).get("sha256") == digest and state.get(key).get("mapping") == str(self.mapping):
                    ctx.outcome.add_unchanged(str(f))
                    bar.advance(f"{f.name}: unchanged")
                    continue
                report = ingest_file(ctx.store, f, catalog=ctx.catalog, fmt=fmt, skip_invalid=self.skip_invalid,
                                     run_id=ctx.run_id)
                ctx.outcome.add_file(report, str(f))
                if report.ok:
                    state.put(key, {"sha256": digest, "mapping": str(self.mapping), "run_id": ctx.run_id})
                bar.advance(f"{f.name}: {report.summary().split(': ', 1)[-1]}")


@dataclass
class Maintenance:
    """A scheduled ``metricstore compact``: merge small files, delete merged sources past their grace
    period, then bring the growth projections up to date (local stores), so
    answers stay fast under steady ingestion. Its run record lists what each step did.

    It runs the command itself, in its own process: a whole-view computation's memory is returned
    when it ends.
    """

    full: bool = False
    snapshot: bool = True

    def run(self, ctx: RunContext) -> None:
        cmd = [sys.executable, "-m", "metricstore", "compact", "--store", str(ctx.store.root)]
        cmd += ["--full"] if self.full else []
        cmd += [] if self.snapshot else ["--no-snapshot"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise TerminalError(f"metricstore compact exited {done.returncode}: {lines[-1] if lines else ''}")
        steps = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        ctx.outcome.inputs.extend(steps)
        ctx.outcome.ok_inputs += len(steps)
