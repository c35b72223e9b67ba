"""`run_local`: the login in a box, shown once the web and the workers are up."""
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from rq import Worker

from factory.management.commands.run_local import (
    login_box,
    wait_until_up,
    workers_started_since,
)


def test_the_login_box_frames_url_user_and_password():
    box = login_box("Art Factory is up", "admin", "s3cret-pass", 8000).splitlines()
    assert box[0].startswith("┌") and box[-1].startswith("└")
    assert "│ Admin:     http://127.0.0.1:8000/admin/" in box[3]
    assert "│ User:      admin" in box[4]
    assert "│ Password:  s3cret-pass" in box[5]
    assert len({len(line) for line in box}) == 1  # a straight right edge


def test_only_workers_born_since_the_start_count(redis_db, settings):
    old = Worker(["default"], connection=redis_db, name="old-run")
    old.register_birth()
    since = datetime.now(timezone.utc)
    assert workers_started_since(settings.REDIS_URL, since) == 0
    Worker(["default"], connection=redis_db, name="this-run").register_birth()
    assert workers_started_since(settings.REDIS_URL, since) == 1
    assert workers_started_since(settings.REDIS_URL, since - timedelta(hours=1)) == 2


def test_waiting_ends_when_honcho_stops(redis_db, settings):
    stopped = subprocess.Popen([sys.executable, "-c", "pass"])
    stopped.wait()
    assert wait_until_up(stopped, "http://127.0.0.1:9/admin/login/", settings.REDIS_URL,
                         1, datetime.now(timezone.utc), timeout=30) is False
