"""jobs.toml: validated once, a bad file is one clear error naming the job and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ingest.jobs import DropFolderSource, HttpSource, MaintenanceSource, load_jobs, parse_duration
from tests.conftest import ROOT, run_cli
from tests.ingest.jobhelpers import write_jobs

EXAMPLE = ROOT / "data" / "jobs.toml"

GOOD = """
[jobs.drops]
trigger = { interval = "90s" }
source = { type = "drop_folder", path = "in" }
"""


def test_the_documented_example_is_valid_and_listed(tmp_path: Path) -> None:
    config = load_jobs(EXAMPLE)
    assert set(config.jobs) == {"analyst-drops", "tesla-kpis", "sec-companyfacts", "upkeep"}
    assert isinstance(config.jobs["upkeep"].source, MaintenanceSource)
    sec = config.jobs["sec-companyfacts"].source
    assert isinstance(sec, HttpSource)
    assert sec.expanded_urls()[0] == "https://data.sec.gov/api/xbrl/companyfacts/CIK0000320193.json"
    drops = config.jobs["analyst-drops"].source
    assert isinstance(drops, DropFolderSource) and drops.path == ROOT / "data" / "drop"
    out = run_cli("schedule", "list", "--config", str(EXAMPLE), "--format", "csv", store=tmp_path / "none")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("job,source,trigger,enabled,next_run") and len(lines) == 5


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_jobs(write_jobs(tmp_path / "jobs.toml", GOOD))
    job = config.jobs["drops"]
    assert isinstance(job.source, DropFolderSource) and job.source.path == tmp_path / "in"
    assert job.trigger.interval == 90 and job.retry.attempts == 3 and job.trigger.timezone == "UTC"


@pytest.mark.parametrize(("body", "job", "field", "words"), [
    ('[jobs.a]\ntrigger = { interval = "5m" }\nsource = { type = "ftp", path = "x" }\n', "a", "source.type",
     "drop_folder, http, mapped_table"),
    ('[jobs.b]\ntrigger = { cron = "61 * * * *" }\nsource = { type = "drop_folder", path = "x" }\n', "b", "trigger",
     "cron '61 * * * *' is not valid"),
    ('[jobs.c]\ntrigger = { interval = "5m", timezone = "Mars/Olympus" }\nsource = { type = "drop_folder", path = "x" }\n',
     "c", "trigger.timezone", "not a time zone"),
    ('[jobs.d]\ntrigger = { interval = "5m", cron = "* * * * *" }\nsource = { type = "drop_folder", path = "x" }\n',
     "d", "trigger", "exactly one of cron or interval"),
    ('[jobs.e]\ntrigger = { interval = "soon" }\nsource = { type = "drop_folder", path = "x" }\n', "e",
     "trigger.interval", "not a duration"),
    ('[jobs.f]\ntrigger = { interval = "5m" }\nsource = { type = "drop_folder" }\n', "f", "source.path", "required"),
    ('[jobs.g]\ntrigger = { interval = "5m" }\nsource = { type = "http", urls = ["x"], token_env = "Bearer abc" }\n',
     "g", "source.urls", "not an http(s) URL"),
    ('[jobs.h]\ntrigger = { interval = "5m" }\nsource = { type = "http", urls = ["http://h/"], token_env = "Bearer abc" }\n',
     "h", "source.token_env", "NAME of an environment variable"),
    ('[jobs.i]\ntrigger = { interval = "5m" }\nretry = { attempts = 0 }\nsource = { type = "drop_folder", path = "x" }\n',
     "i", "retry.attempts", "greater than or equal to 1"),
    ('[jobs.j]\ntrigger = { interval = "5m" }\nsourse = { type = "drop_folder", path = "x" }\n', "j", "source",
     "required"),
])
def test_a_bad_job_is_one_error_naming_job_and_field(tmp_path: Path, body: str, job: str, field: str,
                                                     words: str) -> None:
    path = write_jobs(tmp_path / "jobs.toml", body)
    with pytest.raises(ConfigError) as exc:
        load_jobs(path)
    assert (exc.value.job, exc.value.field) == (job, field)
    assert words in str(exc.value) and str(path) in str(exc.value)


def test_bad_toml_and_a_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_jobs(write_jobs(tmp_path / "jobs.toml", "[jobs.a\n"))
    with pytest.raises(ConfigError, match="no such file"):
        load_jobs(tmp_path / "absent.toml")


def test_durations() -> None:
    assert [parse_duration(v) for v in (30, "30s", "15m", "1h", "1d", "0.5s")] == [30, 30, 900, 3600, 86400, 0.5]
    with pytest.raises(ValueError):
        parse_duration("-1m")


def test_the_cli_prints_one_line_and_exits_2_on_a_bad_config(tmp_path: Path) -> None:
    path = write_jobs(tmp_path / "jobs.toml", '[jobs.x]\ntrigger = { interval = "5m" }\nsource = { type = "ftp" }\n')
    for args in (["schedule", "list"], ["jobs", "run", "x"], ["schedule", "run"]):
        out = run_cli(*args, "--config", str(path), store=tmp_path / "store")
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert "Traceback" not in out.stderr and out.stderr.count("\n") == 1
        assert "job 'x'" in out.stderr and "source.type" in out.stderr


def test_jobs_run_from_the_command_line(tmp_path: Path) -> None:
    from tests.conftest import fact, write_csv

    drop = tmp_path / "in"
    drop.mkdir()
    write_csv(drop / "a.csv", [fact()])
    config = write_jobs(tmp_path / "jobs.toml", GOOD.replace('path = "in"', 'path = "in", settle = 0'))
    ok = run_cli("jobs", "run", "drops", "--config", str(config), "--quiet", store=tmp_path / "store")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("drops: ok: 1 input(s), 1 events added")
    write_csv(drop / "b.csv", [fact(value="?")])
    bad = run_cli("jobs", "run", "drops", "--config", str(config), "--quiet", store=tmp_path / "store")
    assert bad.returncode == 1 and bad.stdout.startswith("drops: failed:") and "Traceback" not in bad.stderr
    listed = run_cli("jobs", "runs", "drops", "--format", "csv", store=tmp_path / "store")
    assert [line.split(",")[3] for line in listed.stdout.splitlines()[1:]] == ["failed", "ok"]
