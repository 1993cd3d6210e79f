"""[notify]: one message per run that changed something, sent through apprise to a real webhook
server on 127.0.0.1; retried, recorded in the run, never failing the ingest, never showing a credential."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest import Catalog
from ingest.errors import ConfigError
from ingest.jobs import load_jobs
from ingest.notify import deliver, notify_run, scrub
from ingest.runner import JobResult, run_job
from ingest.scheduler import Scheduler
from queries import MetricStore
from store import Store
from tests.changes.webhook import Hook, webhook
from tests.conftest import CATALOG, fact, run_cli, write_csv
from tests.ingest.jobhelpers import poll, runs, write_jobs

pytest.importorskip("apprise", reason="the notify extra (apprise) is not installed: pip install -e .[notify]")

ENV = "METRICSTORE_TEST_NOTIFY_URL"
PASSWORD = "S3cretPa55w0rd"
PATH_TOKEN = "T0kenInThePath9"
RESTATED = "acme revenue FY2008 restated +15.4 % (32,479 -> 37,491 M USD) by acme 10-K/A, filed 2010-01-25"


def target(hook: Hook) -> str:
    """An apprise JSON webhook URL with credentials in it: a password and a token in the path."""
    return hook.url.replace("http://", f"json://ops:{PASSWORD}@") + f"/hook/{PATH_TOKEN}"


def jobs_toml(tmp_path: Path, notify: str, trigger: str = '{ cron = "0 3 * * *" }') -> Path:
    drop = tmp_path / "drop"
    drop.mkdir(exist_ok=True)
    return write_jobs(tmp_path / "jobs.toml", f"""
[jobs.drops]
trigger = {trigger}
source = {{ type = "drop_folder", path = "{drop}", settle = 0 }}

[notify]
urls_env = ["{ENV}"]
backoff = "0.05s"
{notify}
""")


@pytest.fixture
def catalog_() -> Catalog:
    return Catalog.load(CATALOG)


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    with webhook() as h:
        monkeypatch.setenv(ENV, target(h))
        yield h


def drop(tmp_path: Path, name: str, rows: list[dict[str, object]]) -> None:
    write_csv(tmp_path / "drop" / name, rows)


def first_then_restated(tmp_path: Path, store: Store, catalog: Catalog, config: Path) -> tuple[JobResult, JobResult]:
    jobs = load_jobs(config)
    drop(tmp_path, "a.csv", [fact(period="FY2008", value="32479", reported_at="2009-10-27", source="acme 10-K")])
    first = run_job(jobs, "drops", store, catalog)
    drop(tmp_path, "b.csv", [fact(period="FY2008", value="37491", reported_at="2010-01-25", source="acme 10-K/A")])
    return first, run_job(jobs, "drops", store, catalog)


def no_secret(text: str) -> None:
    assert PASSWORD not in text and PATH_TOKEN not in text


def every_run_record(store: Store) -> str:
    with MetricStore(store) as ms:
        return str(ms.sql("SELECT * FROM run_log").to_dicts())


def test_a_restatement_sends_one_message_in_the_feeds_words(tmp_path: Path, store: Store, catalog_: Catalog,
                                                            hook: Hook, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)     # everything any logger says, apprise's and its HTTP client's too
    first, second = first_then_restated(tmp_path, store, catalog_, jobs_toml(tmp_path, ""))
    assert first.notified is None            # a new fact is not among the default kinds: nothing sent
    msgs = hook.messages()
    assert len(msgs) == 1
    body = msgs[0]["body"]
    assert body["message"].splitlines()[0] == RESTATED
    assert second.run_id in body["message"] and body["title"] == "metricstore: drops changed 1 figure(s)"
    assert msgs[0]["path"] == f"/hook/{PATH_TOKEN}" and msgs[0]["headers"]["Authorization"].startswith("Basic ")
    assert second.status == "ok" and second.notified == "1 change(s) sent to 1 of 1 target(s)"
    recs = runs(store, "drops")
    assert [r["notified"] for r in recs] == [None, "1 change(s) sent to 1 of 1 target(s)"]
    no_secret(every_run_record(store))
    no_secret(caplog.text)
    no_secret(second.summary())


def test_a_failing_target_is_retried_and_the_attempts_recorded(tmp_path: Path, store: Store, catalog_: Catalog,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with webhook(fail=2) as h:
        monkeypatch.setenv(ENV, target(h))
        _, second = first_then_restated(tmp_path, store, catalog_, jobs_toml(tmp_path, "attempts = 3"))
        assert h.refused == 2 and len(h.messages()) == 1
    assert second.status == "ok"
    assert runs(store, "drops")[-1]["notified"] == "1 change(s) sent to 1 of 1 target(s) (json target 1 on attempt 3)"


def test_a_notification_that_keeps_failing_never_fails_the_ingest(tmp_path: Path, store: Store, catalog_: Catalog,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with webhook(fail=100) as h:
        monkeypatch.setenv(ENV, target(h))
        _, second = first_then_restated(tmp_path, store, catalog_, jobs_toml(tmp_path, "attempts = 2"))
        assert h.refused == 2 and h.messages() == []
    assert second.status == "ok" and second.outcome.added == 1
    rec = runs(store, "drops")[-1]
    assert rec["status"] == "ok" and rec["error"] is None
    assert str(rec["notified"]).startswith("1 change(s) sent to 0 of 1 target(s); json target 1: not delivered after 2 "
                                      "attempt(s): ")
    assert "error=500" in str(rec["notified"])
    with MetricStore(store) as ms:   # the restatement is in the store all the same
        assert ms.sql("SELECT value FROM facts")["value"].to_list() == [37_491e6]
    no_secret(every_run_record(store))
    no_secret(caplog.text)


def test_an_unset_variable_or_a_dead_target_is_recorded_too(tmp_path: Path, store: Store, catalog_: Catalog,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    _, second = first_then_restated(tmp_path, store, catalog_, jobs_toml(tmp_path, ""))
    assert second.status == "ok" and second.notified == f"1 change(s) sent to 0 of 0 target(s); {ENV} is not set"
    with webhook() as h:    # a port nobody listens on once the server is gone
        url = target(h)
    monkeypatch.setenv(ENV, url)
    drop(tmp_path, "c.csv", [fact(period="FY2008", value="40000", reported_at="2011-01-25", source="acme 10-K/A2")])
    third = run_job(load_jobs(tmp_path / "jobs.toml"), "drops", store, catalog_)
    assert third.status == "ok" and "json target 1: not delivered after 3 attempt(s)" in str(third.notified)
    no_secret(every_run_record(store))


def test_the_rules_choose_kinds_entities_metrics_and_a_minimum_size(tmp_path: Path, store: Store, catalog_: Catalog,
                                                                    hook: Hook) -> None:
    config = jobs_toml(tmp_path, 'kinds = ["new", "restated"]\nentities = ["ACME"]\nmetrics = ["revenue"]\n'
                                 "min_change_pct = 1.0")
    jobs = load_jobs(config)
    drop(tmp_path, "a.csv", [fact(value="1000"), fact(metric="net_income", value="10"), fact(entity="beta", value="5")])
    run_job(jobs, "drops", store, catalog_)
    assert [m["body"]["message"].splitlines()[0] for m in hook.messages()] == [
        "acme revenue FY2024 new: 1,000 M USD by acme-10k-2024, filed 2025-02-01"]
    drop(tmp_path, "b.csv", [fact(value="1005", reported_at="2025-03-01", source="small"),        # +0.5 %: too small
                             fact(metric="net_income", value="20", reported_at="2025-03-01")])  # not a chosen metric
    quiet = run_job(jobs, "drops", store, catalog_)
    assert quiet.outcome.added == 2 and quiet.notified is None and len(hook.messages()) == 1
    drop(tmp_path, "c.csv", [fact(value="1100", reported_at="2025-04-01", source="big")])
    run_job(jobs, "drops", store, catalog_)
    assert len(hook.messages()) == 2 and "restated +9.5 %" in hook.messages()[1]["body"]["message"]


def test_a_scheduled_run_notifies(tmp_path: Path, store: Store, hook: Hook) -> None:
    config = jobs_toml(tmp_path, "", trigger='{ interval = "1s" }')
    drop(tmp_path, "a.csv", [fact(period="FY2008", value="32479", reported_at="2009-10-27", source="acme 10-K")])
    sched = Scheduler(load_jobs(config), store, CATALOG)
    sched.start()
    try:
        poll(lambda: (tmp_path / "drop" / "processed" / "a.csv").exists(), what="a.csv processed")
        drop(tmp_path, "b.csv", [fact(period="FY2008", value="37491", reported_at="2010-01-25", source="acme 10-K/A")])
        poll(lambda: hook.messages(), what="the restatement's message")
        poll(lambda: any(r["notified"] for r in runs(store, "drops")), what="the run record")
    finally:
        sched.shutdown()
    assert [m["body"]["message"].splitlines()[0] for m in hook.messages()] == [RESTATED]
    rec = [r for r in runs(store, "drops") if r["notified"]]
    assert [(r["trigger"], r["status"], r["notified"]) for r in rec] == [
        ("schedule", "ok", "1 change(s) sent to 1 of 1 target(s)")]
    no_secret(every_run_record(store))


def test_jobs_run_on_the_command_line_shows_no_credential(tmp_path: Path, store: Store, hook: Hook) -> None:
    config = jobs_toml(tmp_path, "")
    drop(tmp_path, "a.csv", [fact(period="FY2008", value="32479", reported_at="2009-10-27", source="acme 10-K")])
    assert run_cli("jobs", "run", "drops", "--config", str(config), store=Path(str(store.root))).returncode == 0
    drop(tmp_path, "b.csv", [fact(period="FY2008", value="37491", reported_at="2010-01-25", source="acme 10-K/A")])
    done = run_cli("jobs", "run", "drops", "--config", str(config), store=Path(str(store.root)), env={ENV: target(hook)})
    assert done.returncode == 0, done.stderr
    assert "notify: 1 change(s) sent to 1 of 1 target(s)" in done.stdout + done.stderr
    no_secret(done.stdout + done.stderr)
    assert [m["body"]["message"].splitlines()[0] for m in hook.messages()] == [RESTATED]
    listed = run_cli("jobs", "runs", "drops", "--format", "csv", store=Path(str(store.root)))
    assert listed.returncode == 0 and "1 change(s) sent to 1 of 1 target(s)" in listed.stdout
    no_secret(listed.stdout)


@pytest.mark.parametrize(("notify", "says"), [
    (f'urls_env = ["json://ops:{PASSWORD}@example.com/hook"]', "is not the NAME of an environment variable"),
    ('urls_env = ["X"]\nkinds = ["restatement"]', "'restatement' is not a kind of change"),
    ('urls_env = ["X"]\njobs = ["nope"]', "no job named 'nope'"),
    ('urls_env = ["X"]\nmin_change_pct = -1', "notify.min_change_pct"),
    ("urls_env = []", "notify.urls_env"),
])
def test_a_bad_notify_section_is_one_line_naming_the_field(tmp_path: Path, notify: str, says: str) -> None:
    path = write_jobs(tmp_path / "jobs.toml", f"""
[jobs.drops]
trigger = {{ cron = "0 3 * * *" }}
source = {{ type = "drop_folder", path = "drop" }}

[notify]
{notify}
""")
    with pytest.raises(ConfigError) as exc:
        load_jobs(path)
    assert says in str(exc.value) and "\n" not in str(exc.value)
    no_secret(str(exc.value))


def test_changes_that_cannot_be_read_are_recorded_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = load_jobs(jobs_toml(tmp_path, "")).notify
    monkeypatch.setenv(ENV, f"json://ops:{PASSWORD}@127.0.0.1:9/hook/{PATH_TOKEN}")
    gone = Store.create(tmp_path / "gone")
    shutil.rmtree(tmp_path / "gone")
    note = notify_run(rules, "drops", gone, "some-run", added=1)
    assert note is not None and note.startswith("not sent: the changes of run some-run could not be read: ")
    no_secret(note)
    assert notify_run(rules, "drops", gone, "some-run", added=0) is None       # nothing added: nothing to tell


@pytest.mark.parametrize("url", [
    f"slack://{PATH_TOKEN}/B0000/{PASSWORD}/#filings",
    f"mailtos://ops:{PASSWORD}@example.com?to=team@example.com&pass={PATH_TOKEN}",
    f"msteams://{PATH_TOKEN}/{PASSWORD}/Z0000/",
])
def test_no_part_of_a_credential_survives_a_message(url: str) -> None:
    text = scrub(f"failed: {url} said 401 for {PASSWORD} ({PATH_TOKEN})", [url])
    no_secret(text)
    assert text.startswith("failed: ") and "said 401" in text


def test_a_value_that_is_no_apprise_url_is_not_tried() -> None:
    d = deliver(f"nosuchservice://{PASSWORD}@x/{PATH_TOKEN}", "nosuchservice target 1", "t", "b", attempts=3, backoff=0)
    assert (d.ok, d.attempts) == (False, 0) and d.reason.startswith("not an apprise URL")
