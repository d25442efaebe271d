"""Read-replica routing against a real PostgreSQL primary and its streaming standby.

The module starts both servers in a temporary folder on free ports (``tests/replica.py``, never
the shared server), loads the schema into the primary, and drives the application against them
in a subprocess (``tests/replica_app.py``) whose settings name the two. Each request reports
the ports its queries went to; the standby's port means the replica served them.
"""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import REQUIRE_SERVICES
from tests.replica import postgres_bin_dir, replica_pair

ROOT = Path(__file__).resolve().parents[2]
# The primary's schema is copied from this run's test database, which must exist.
pytestmark = pytest.mark.django_db
PAUSED_BOUND = 3600.0  # a bound a paused replica stays within, to see what it serves


class App:
    """The subprocess: ``call(op, **arguments)`` sends one command and returns its answer."""

    def __init__(self, pair, env: dict[str, str], log: Path):
        self.pair = pair
        self.log = log
        self._stderr = open(log, "w")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.replica_app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.primary_port = pair.primary.port
        self.standby_port = pair.standby.port

    def call(self, op: str, **arguments):
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("the application exited:\n" + self.log.read_text()[-5000:])
        answer = json.loads(line)
        assert answer.pop("ok"), answer.get("traceback")
        return answer

    def stop(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()
        self._stderr.close()


def _load_schema(pair) -> None:
    """The primary gets the schema and the migrations' rows: a dump of this run's PostgreSQL
    test database (a second or two), or ``migrate`` when the suite runs on SQLite."""
    default = connections["default"].settings_dict
    if default["ENGINE"] == "django.db.backends.postgresql":
        dump = pair.root / "schema.sql"
        env = {**os.environ, "PGPASSWORD": default.get("PASSWORD") or ""}
        result = subprocess.run(
            [
                str(pair.primary.bin_dir / "pg_dump"),
                "--no-owner",
                "--no-privileges",
                "-h",
                default.get("HOST") or "127.0.0.1",
                "-p",
                str(default.get("PORT") or 5432),
                "-U",
                default.get("USER") or "postgres",
                "-f",
                str(dump),
                default["NAME"],
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode == 0:
            dump.chmod(0o644)
            pair.primary.psql_file(dump, pair.database)
            return
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env=_app_env(pair),
        check=True,
        capture_output=True,
        timeout=300,
    )


def _app_env(pair) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REPLICA_"))}
    return {
        **env,
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "DATABASE_URL": pair.primary_url,
        "DATABASE_REPLICA_URL": pair.standby_url,
        "REPLICA_CHECK_SECONDS": "0",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }


@pytest.fixture(scope="module")
def app(django_db_setup, django_db_blocker):
    if postgres_bin_dir() is None:
        message = "PostgreSQL's server programs (initdb, pg_basebackup) are not installed"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    with replica_pair() as pair:
        with django_db_blocker.unblock():
            _load_schema(pair)
        app = App(pair, _app_env(pair), pair.root / "app.log")
        try:
            app.setup = app.call("setup")
            pair.wait_caught_up()
            yield app
        finally:
            app.stop()


@pytest.fixture
def replica(app):
    """Each test starts with the standby streaming, caught up and replaying, the default
    bounds, and leaves it so."""
    app.call(
        "settings",
        values={
            "REPLICA_MAX_LAG_SECONDS": 10.0,
            "REPLICA_CHECK_SECONDS": 0,
            "REPLICA_READ_YOUR_WRITES_SECONDS": 15,
            "REPLICA_NOTICE_SECONDS": 5.0,
        },
    )
    yield app
    pair = app.pair
    if not (pair.standby.data_dir / "postmaster.pid").exists():
        pair.standby.start()
        pair.wait_streaming()
    pair.resume_replay()
    pair.wait_caught_up()


def _drill(name: str) -> dict:
    return {"path": "/dashboards/drill/cohort/", "find": [name]}


def _paused_with_a_new_lead(app, name: str) -> None:
    """Replay paused on the standby, then a lead written on the primary: only the primary has it."""
    app.pair.wait_caught_up()
    app.pair.pause_replay()
    app.call("lead", name=name)


# --- Routing ---------------------------------------------------------------------------------


def test_dashboards_exports_the_kpi_api_and_the_meeting_page_read_from_the_standby(replica):
    assert replica.pair.standby.psql("SELECT pg_is_in_recovery()") == "t"
    replica.call("lead", name="Routed")
    replica.pair.wait_caught_up()
    meeting = replica.setup["meeting"]
    for path in (
        "/dashboards/",
        "/dashboards/funnel/",
        "/dashboards/drill/cohort/",
        "/dashboards/drill/cohort/?format=csv",
        "/dashboards/scorecard/",
        "/api/v1/kpis/lead_acceptance/",
        f"/meeting/{meeting}/",
    ):
        answer = replica.call("get", user="boss", path=path)
        assert answer["status"] == 200, path
        assert answer["read_ports"] == [replica.standby_port], (path, answer["reads"])


def test_a_reps_queue_and_the_lead_list_read_from_the_primary(replica):
    for path in ("/leads/queue/", "/leads/"):
        answer = replica.call("get", user="boss", path=path)
        assert answer["status"] == 200, path
        assert answer["read_ports"] == [replica.primary_port], (path, answer["reads"])


def test_a_drill_down_shows_what_the_replica_has_and_the_lead_list_what_the_primary_has(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND})
    _paused_with_a_new_lead(replica, "Unreplayed")

    drill = replica.call("get", user="boss", **_drill("Unreplayed"))
    leads = replica.call("get", user="boss", path="/leads/?q=Unreplayed", find=["Unreplayed"])

    assert drill["found"]["Unreplayed"] is False
    assert drill["read_ports"] == [replica.standby_port], drill["reads"]
    assert leads["found"]["Unreplayed"] is True


def test_the_snapshot_refresh_reads_from_the_standby(replica):
    replica.call("get", user="boss", path="/dashboards/")  # registers the page's snapshot
    replica.call("age_snapshots")
    replica.pair.wait_caught_up()

    answer = replica.call("snapshots")

    assert answer["refreshed"] >= 1
    assert answer["read_ports"] == [replica.standby_port], answer["reads"]


def test_lead_exports_read_from_the_standby_and_the_pages_they_export_from_the_primary(replica):
    replica.call("lead", name="Exported")
    replica.pair.wait_caught_up()
    for path in (
        "/leads/export.csv",
        "/leads/handoffs/?format=csv",
        "/definitions/target-accounts/?format=csv",
    ):
        answer = replica.call("get", user="boss", path=path)
        assert answer["status"] == 200, path
        assert answer["read_ports"] == [replica.standby_port], (path, answer["reads"])
    for path in ("/leads/handoffs/", "/definitions/target-accounts/"):
        answer = replica.call("get", user="boss", path=path)
        assert answer["status"] == 200, path
        assert answer["read_ports"] == [replica.primary_port], (path, answer["reads"])


def test_a_lead_export_has_what_the_replica_has_and_the_lead_list_what_the_primary_has(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND})
    replica.call("lead", name="Replayed")
    _paused_with_a_new_lead(replica, "NotYetExported")

    export = replica.call(
        "get", user="other", path="/leads/export.csv", find=["Replayed", "NotYetExported"]
    )
    leads = replica.call(
        "get", user="other", path="/leads/?q=NotYetExported", find=["NotYetExported"]
    )

    assert export["found"] == {"Replayed": True, "NotYetExported": False}
    assert export["read_ports"] == [replica.standby_port], export["reads"]
    assert leads["found"]["NotYetExported"] is True


# --- "Figures as of …" -----------------------------------------------------------------------

NOTICE = re.compile(r"^Figures as of (\d\d:\d\d:\d\d) \(replica (\d+) s behind\)$")


def _replayed_at(pair) -> datetime:
    """When the last transaction the standby replayed was committed on the primary."""
    text = pair.standby.psql(
        "SELECT to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    )
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _displayed(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo(settings.DISPLAY_TIME_ZONE)).strftime("%H:%M:%S")


def test_pages_from_a_replica_behind_the_notice_bound_say_how_old_their_figures_are(replica):
    replica.call(
        "settings",
        values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND, "REPLICA_NOTICE_SECONDS": 1.0},
    )
    _paused_with_a_new_lead(replica, "Noticed")
    time.sleep(1.5)
    replayed_at = _replayed_at(replica.pair)
    meeting = replica.setup["meeting"]

    # A filter set nobody opened: computed now, from what the replica has.
    dashboard = replica.call(
        "get", user="other", path="/dashboards/funnel/?preset=this_quarter&tier=C"
    )
    meeting_page = replica.call("get", user="other", path=f"/meeting/{meeting}/")
    scorecard = replica.call("get", user="other", path="/dashboards/scorecard/")
    drill = replica.call("get", user="other", **_drill("Noticed"))
    api = replica.call("get", user="other", path="/api/v1/kpis/lead_acceptance/")
    lead_list = replica.call("get", user="other", path="/leads/")

    for page in (dashboard, meeting_page, scorecard, drill, api):
        assert page["status"] == 200
        assert page["read_ports"] == [replica.standby_port], page["reads"]
    for page in (dashboard, drill):
        shown = NOTICE.match(page["notice"] or "")
        assert shown, page["notice"]
        assert shown.group(1) == _displayed(replayed_at)
        assert 1 <= int(shown.group(2)) < 120
    for page in (meeting_page, scorecard):
        assert NOTICE.match(page["notice"] or ""), page["notice"]
    assert drill["found"]["Noticed"] is False
    headers = api["headers"]
    assert datetime.fromisoformat(headers["X-Figures-As-Of"]) == replayed_at
    assert 1.0 < float(headers["X-Replica-Lag-Seconds"]) < 120
    # The lead list reads the primary: nothing to say.
    assert lead_list["read_ports"] == [replica.primary_port]
    assert (lead_list["notice"], lead_list["headers"]) == (None, {})


def test_no_notice_within_the_notice_bound_nor_once_caught_up(replica):
    replica.call(
        "settings",
        values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND, "REPLICA_NOTICE_SECONDS": 600.0},
    )
    _paused_with_a_new_lead(replica, "Quiet")
    time.sleep(1.5)
    within = replica.call("get", user="other", path="/dashboards/")
    replica.call("settings", values={"REPLICA_NOTICE_SECONDS": 1.0})
    behind = replica.call("get", user="other", path="/dashboards/")
    replica.pair.resume_replay()
    replica.pair.wait_caught_up()
    caught_up = replica.call("get", user="other", path="/dashboards/")
    api = replica.call("get", user="other", path="/api/v1/kpis/lead_acceptance/")

    assert behind["notice"] is not None  # the same replica, the bound lowered
    for page in (within, caught_up, api):
        assert page["read_ports"] == [replica.standby_port], page["reads"]
        assert (page["notice"], page["headers"]) == (None, {})


def test_no_notice_when_the_primary_serves_a_replica_behind_the_lag_bound(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": 2.0, "REPLICA_NOTICE_SECONDS": 1.0})
    _paused_with_a_new_lead(replica, "TooFarBehind")
    time.sleep(2.5)

    page = replica.call("get", user="other", path="/dashboards/")

    assert page["read_ports"] == [replica.primary_port], page["reads"]
    assert (page["notice"], page["headers"]) == (None, {})


# --- Read your writes ------------------------------------------------------------------------


def test_after_a_form_post_the_writer_reads_the_primary_and_others_the_replica(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND})
    _paused_with_a_new_lead(replica, "Pinned")
    meeting_page = f"/meeting/{replica.setup['meeting']}/"
    owner = replica.call("user_id", name="boss")["id"]

    posted = replica.call(
        "post",
        user="boss",
        path=f"{meeting_page}actions",
        data={"text": "Send the webinar deck", "owner": owner, "due_on": "2030-01-01"},
    )
    replica.call("get", user="boss", path=meeting_page)  # shows (and uses up) the flash message
    writer = replica.call("get", user="boss", path=meeting_page, find=["Send the webinar deck"])
    writer_drill = replica.call("get", user="boss", **_drill("Pinned"))
    other = replica.call("get", user="other", path=meeting_page, find=["Send the webinar deck"])

    assert posted["status"] == 302
    assert writer["found"]["Send the webinar deck"] is True
    assert writer["read_ports"] == [replica.primary_port], writer["reads"]
    assert writer_drill["found"]["Pinned"] is True
    assert other["found"]["Send the webinar deck"] is False
    assert other["read_ports"] == [replica.standby_port], other["reads"]


def test_a_writer_on_another_device_reads_the_primary_too(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": PAUSED_BOUND})
    _paused_with_a_new_lead(replica, "OtherDevice")
    meeting_page = f"/meeting/{replica.setup['meeting']}/"

    replica.call("post", user="boss", path=f"{meeting_page}freeze")
    # A fresh client of the same user: no cookie, only the user's mark.
    answer = replica.call("get", user="boss", fresh=True, **_drill("OtherDevice"))

    assert answer["found"]["OtherDevice"] is True
    assert answer["read_ports"] == [replica.primary_port], answer["reads"]


# --- Lag -------------------------------------------------------------------------------------


def test_a_replica_behind_the_bound_is_skipped_until_it_catches_up(replica):
    replica.call("settings", values={"REPLICA_MAX_LAG_SECONDS": 1.0})
    _paused_with_a_new_lead(replica, "Lagging")
    time.sleep(1.5)

    behind = replica.call("get", user="other", **_drill("Lagging"))
    assert replica.call("health")["lag_seconds"] > 1.0
    replica.pair.resume_replay()
    replica.pair.wait_caught_up()
    caught_up = replica.call("get", user="other", **_drill("Lagging"))

    assert behind["found"]["Lagging"] is True
    assert behind["read_ports"] == [replica.primary_port], behind["reads"]
    assert caught_up["found"]["Lagging"] is True
    assert caught_up["read_ports"] == [replica.standby_port], caught_up["reads"]
    assert any("behind" in line for line in replica.call("logs")["lines"])


# --- A replica that goes away ----------------------------------------------------------------


def test_pages_are_served_from_the_primary_while_the_replica_is_down(replica):
    replica.call("lead", name="Outage")
    replica.pair.standby.stop("fast")

    pages = [
        replica.call("get", user="other", **_drill("Outage")),
        replica.call("get", user="other", path="/api/v1/kpis/lead_acceptance/"),
        replica.call("get", user="other", path=f"/meeting/{replica.setup['meeting']}/"),
    ]

    assert [page["status"] for page in pages] == [200, 200, 200]
    assert all(page["read_ports"] == [replica.primary_port] for page in pages)
    assert pages[0]["found"]["Outage"] is True
    assert replica.call("health")["reachable"] is False
    assert any("unreachable" in line for line in replica.call("logs")["lines"])


def test_a_replica_lost_mid_request_is_retried_on_the_primary(replica):
    replica.call("get", user="other", path="/dashboards/")  # a connection to the standby is open
    # The replica's health was just checked and is trusted for a minute: the page goes to it.
    replica.call("settings", values={"REPLICA_CHECK_SECONDS": 60})
    replica.call("get", user="other", path="/dashboards/")
    replica.call("lead", name="MidRequest")
    replica.pair.standby.stop("fast")

    answer = replica.call("get", user="other", **_drill("MidRequest"))

    assert answer["status"] == 200
    assert answer["found"]["MidRequest"] is True
    assert any("mid-request" in line for line in replica.call("logs")["lines"])


def test_a_replica_that_comes_back_serves_again(replica):
    replica.pair.standby.stop("fast")
    assert replica.call("get", user="other", path="/dashboards/")["read_ports"] == [
        replica.primary_port
    ]
    replica.pair.standby.start()
    replica.pair.wait_streaming()
    replica.pair.wait_caught_up()

    answer = replica.call("get", user="other", path="/dashboards/")

    assert answer["read_ports"] == [replica.standby_port], answer["reads"]
