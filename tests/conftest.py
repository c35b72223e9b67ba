"""Shared fixtures: personas, isolated media, a clean Redis database."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes media under its own temporary directory."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def provider_keys(settings):
    """Every provider counts as configured unless a test clears its key."""
    settings.FAL_KEY = settings.FAL_KEY or "test-key"
    settings.REPLICATE_API_TOKEN = settings.REPLICATE_API_TOKEN or "r8_test"
    settings.CIVITAI_API_TOKEN = settings.CIVITAI_API_TOKEN or "civitai-test"


@pytest.fixture(autouse=True)
def fresh_dashboard(settings):
    """The dashboard reads its figures every time, unless a test keeps them."""
    settings.DASHBOARD_CACHE_SECONDS = 0


@pytest.fixture
def redis_db():
    """The test Redis database, emptied before and after the test."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def catalog(db):
    """The seed catalog, loaded as `make run` loads it."""
    call_command("load_seed_data", verbosity=0)


def _persona(name: str, role: str | None) -> User:
    """A staff member holding ``role``'s group, as ``grant_role`` gives it."""
    from factory.roles import grant_role

    user = User.objects.create_user(name, f"{name}@example.com", "pw-" + name)
    user.is_staff = True
    user.save()
    if role:
        grant_role(user, role)
    return user


@pytest.fixture
def viewer(db) -> User:
    """Looks at everything, changes nothing."""
    return _persona("viewer", "viewer")


@pytest.fixture
def operator(db) -> User:
    """Writes and places orders, curates products."""
    return _persona("operator", "operator")


@pytest.fixture
def lead(db) -> User:
    """Everything an operator does, plus the catalog, budgets and raised ceilings."""
    return _persona("lead", "lead")


@pytest.fixture
def superuser(db) -> User:
    """Users, groups and the job queues, besides everything else."""
    user = _persona("root", None)
    user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def staff_without_role(db) -> User:
    """May sign in, holds no group: sees nothing."""
    return _persona("norole", None)


def worker_env(media_root: Path) -> dict[str, str]:
    """Environment for a worker process that sees this test's database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{db['NAME']}"
    else:
        url = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
               f"{db['PORT'] or 5432}/{db['NAME']}")
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "MEDIA_ROOT": str(media_root),
        "DEMO_LATENCY_SECONDS": str(settings.DEMO_LATENCY_SECONDS),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def run_worker(media_root):
    """Real processes: a foreman until idle, and `rqworker --burst` rounds."""

    def run(timeout: float = 120) -> subprocess.CompletedProcess:
        env = worker_env(media_root)
        foreman = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "run_foreman", "--until-idle",
             "--max-seconds", str(timeout), "--tick", "0.1", "--poll", "0.2"],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )
        worker = subprocess.CompletedProcess([], 0, "", "")
        try:
            while foreman.poll() is None and worker.returncode == 0:
                worker = subprocess.run(
                    [sys.executable, str(ROOT / "manage.py"), "rqworker", "submit",
                     "collect", "default", "--burst"],
                    env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                )
            foreman.wait(timeout=30)
        finally:
            if foreman.poll() is None:
                foreman.kill()
        log = foreman.stdout.read() if foreman.stdout else ""
        if foreman.returncode != 0:
            return subprocess.CompletedProcess([], foreman.returncode, log, log)
        return worker

    return run


@pytest.fixture
def work_queues(redis_db, django_capture_on_commit_callbacks, settings):
    """Run queued jobs and foreman ticks in this process, on the real Redis.

    Jobs enqueue follow-up jobs on commit; inside a test's transaction those
    fire when each round ends, so rounds repeat until no item is unfinished.
    """
    import time

    import django_rq
    from rq import SimpleWorker

    from factory.production.foreman import Tuning, is_idle, tick

    settings.DEMO_LATENCY_SECONDS = 0
    tuning = Tuning(tick_seconds=0, poll_seconds=0.05, batch_size=100, threads=2)

    def work(max_rounds: int = 200) -> None:
        for _ in range(max_rounds):
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                worker = django_rq.get_worker(
                    "submit", "collect", "default", worker_class=SimpleWorker
                )
                worker.work(burst=True)
                report = tick("test-foreman", tuning)
            if is_idle():
                return
            if not callbacks and not report.claimed:
                time.sleep(0.05)
        raise AssertionError("work did not finish within the rounds allowed")

    return work


@pytest.fixture
def demo_order(catalog, lead, django_capture_on_commit_callbacks, work_queues):
    """A placed and produced two-item demo order."""
    from factory.models import FactoryMachine, Order, SeedStrategy
    from factory.ordering import place_order

    order = Order.objects.create(
        title="Harbour studies",
        machine=FactoryMachine.objects.get(slug="demo-image"),
        prompt="a quiet harbour at dawn",
        base_parameters={"width": 192, "height": 128},
        runs=2, seed_strategy=SeedStrategy.INCREMENT, seed=1, created_by=lead,
    )
    with django_capture_on_commit_callbacks(execute=True):
        place_order(order)
    work_queues()
    order.refresh_from_db()
    return order
