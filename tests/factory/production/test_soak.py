"""The soak at 200 items inside `make test` (the 2,000-item run: `make soak`)."""
import pytest
from django.db import connection

from tests import soak
from tests.conftest import worker_env
from tests.factory.production.plant import PrivateRedis, use_redis

pytestmark = pytest.mark.django_db(transaction=True)

SMALL = soak.Plan(
    items=200, orders=20, latency=(0.5, 3.0), slots=20, kills=10, redis_restarts=1,
    pg_terminations=1, window=(5.0, 45.0), hang_seconds=20.0, settle_seconds=180.0,
)


@pytest.mark.once
def test_200_items_through_kills_a_redis_restart_and_a_dropped_database(
    catalog, lead, settings, media_root, tmp_path
):
    """Ten SIGKILLs (some mid-submit), Redis restarted losing its data, every
    PostgreSQL connection terminated, 503s, hung submits and duplicate
    webhooks: every item completes within the settle time, each input was
    accepted once, each output stored once, and no file is left over."""
    if connection.vendor != "postgresql":
        pytest.skip("the soak terminates PostgreSQL backends and needs its row locks")
    redis = PrivateRedis(tmp_path / "redis", appendonly=True).start()
    use_redis(settings, redis.url)
    try:
        report = soak.run(SMALL, user=lead, env=worker_env(media_root),
                          media_root=media_root, redis=redis, logs=tmp_path / "logs")
    finally:
        redis.kill()
    print(report.text())
    assert report.faults.total() == 10 + 1 + 1, report.faults
    assert report.accepted_submissions >= report.attempted == 200
    assert report.ok, report.text() + "\n" + (tmp_path / "logs" / "report.txt").read_text()
