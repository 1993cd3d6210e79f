"""Writers killed around their projection step: no reader ever gets a stale growth answer.

Each trial runs a writer process that appends a batch and then runs the projection step, batch
after batch, and kills it with SIGKILL: at a random moment, between a commit and its projection
step (``project``), or inside the projector after a layer file is in place but before its manifest
(``layer``). After each kill the harness checks, on the real files:

- a new reader's growth (now, and as of a date) equals the reference computed from the events;
- the next projection step (the next writer's) covers the whole log: no entity is left to compute,
  the answers still equal the reference, and no temporary file of the dead projector is left.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.reliability.processes import ROOT, child_env, end, wait_ready

PROJECTION_FAULTS = ("project", "layer")


@dataclass
class ProjectionStats:
    trials: int = 0
    kills: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    stale_answers: int = 0
    not_repaired: int = 0
    leftovers: int = 0
    failures: list[str] = field(default_factory=list)


def _answers(root: Path, *, reference: bool) -> list[object]:
    from queries import MetricStore

    before = os.environ.get("METRICSTORE_PROJECTIONS")
    if reference:
        os.environ["METRICSTORE_PROJECTIONS"] = "0"
    try:
        with MetricStore(root) as ms:
            key = "entity, metric, segment, dims, unit, ptype, period, period_start"
            return [ms.sql(f"SELECT * FROM growth ORDER BY {key}").rows(),
                    ms.sql(f"SELECT * FROM growth ORDER BY {key}", as_of="2021-06-30").rows(),
                    ms.series("w1", "revenue").rows(),
                    ms.growth(metric="revenue", ptype="FY").rows()]
    finally:
        if before is None:
            os.environ.pop("METRICSTORE_PROJECTIONS", None)
        else:
            os.environ["METRICSTORE_PROJECTIONS"] = before


def projection_trials(trials: int, work: Path, *, seed: int = 1, rows: int = 20, log: bool = False) -> ProjectionStats:
    """Kill a projecting writer ``trials`` times (a third at random moments, the rest at the fault points)."""
    from queries.projections import COVERED, FOLDER, Projections
    from queries.projector import project
    from store import Store
    from tests.reliability._writer import batch

    rng = random.Random(seed)
    stats = ProjectionStats()
    root = work / "store"
    store = Store.create(root)
    for i in range(3):
        store.append(batch(1, i, rows))
        store.append(batch(2, i, rows))
    project(store)
    next_batch = 3
    for trial in range(trials):
        fault = "" if trial % 3 == 0 else f"{PROJECTION_FAULTS[trial % 2]}:{rng.randint(1, 3)}"
        ack = work / f"project-{trial}.log"
        proc = subprocess.Popen([sys.executable, "-m", "tests.reliability._writer", "project", str(root),
                                 str(1 + trial % 2), str(next_batch), "50", str(rows), str(ack), fault],
                                cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_ready(proc, ack, timeout=120):
            proc.kill()
            proc.wait()
            stats.failures.append(f"trial {trial}: the writer did not start")
            continue
        end(proc, fault, rng.uniform(0.05, 1.5))
        next_batch += 50
        err = proc.stderr.read().decode() if proc.stderr else ""
        stats.trials += 1
        stats.kills += proc.returncode == -signal.SIGKILL
        name = fault.split(":")[0] or "timed"
        stats.faults[name] = stats.faults.get(name, 0) + 1
        if proc.returncode not in (0, -signal.SIGKILL):
            stats.failures.append(f"trial {trial}: writer exited {proc.returncode}: {err[-300:]}")
            continue
        if _answers(root, reference=False) != _answers(root, reference=True):
            stats.stale_answers += 1
            stats.failures.append(f"trial {trial} ({name}): an answer differs from the reference after the kill")
        project(store)                                        # the next writer's step
        found = Projections(store).latest()
        live = {t: store.live_files(t) for t in COVERED}
        if found is None or Projections(store).changed(found, live):
            stats.not_repaired += 1
            stats.failures.append(f"trial {trial} ({name}): the next projection step left entities to compute")
        if _answers(root, reference=False) != _answers(root, reference=True):
            stats.stale_answers += 1
            stats.failures.append(f"trial {trial} ({name}): an answer differs from the reference after the repair")
        left = [p.name for p in (root / FOLDER).iterdir() if p.name.startswith(".tmp-")]
        stats.leftovers += len(left)
        if left:
            stats.failures.append(f"trial {trial} ({name}): the dead projector's {left[0]} is left")
        if log:
            print(f"projection trial {trial}: fault={fault or 'timed'} exit={proc.returncode}", flush=True)
    return stats
