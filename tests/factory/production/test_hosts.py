"""Two hosts (network namespaces made here) share one database and Redis.

The 2,000-item measurement is `make bench-hosts` (bench/hosts.py); this is
its check at 200 items inside `make test`, where root and socat allow.
"""
import os
import shutil

import pytest
from django.db import connection

from bench import hosts
from bench.scale import Scale
from tests.conftest import worker_env
from tests.factory.production.plant import PrivateRedis, use_redis

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.once
def test_two_hosts_share_the_work_and_nothing_is_done_twice(
    catalog, lead, settings, media_root, tmp_path
):
    """Workers and a foreman in each of two namespaces, reaching PostgreSQL,
    Redis, the web server and the fal fake over a bridge: every item is
    submitted once, its result read once, stored once, and both hosts
    submit."""
    if connection.vendor != "postgresql":
        pytest.skip("several hosts share a PostgreSQL database")
    if os.geteuid() != 0 or not (shutil.which("ip") and shutil.which("socat")):
        pytest.skip("network namespaces need root, iproute2 and socat")
    database = connection.settings_dict["NAME"]
    with hosts.Network():
        redis = PrivateRedis(tmp_path / "redis", host=hosts.SHARED).start()
        use_redis(settings, redis.url)
        try:
            env = {**worker_env(media_root), "DATABASE_URL":
                   f"postgres://postgres@{hosts.SHARED}:{hosts.PG_RELAY_PORT}/{database}"}
            result = hosts.run(
                ["host-a", "host-b"], Scale("hosts", 200, 2000, True, latency=0.5),
                user=lead, base_env=env, redis=redis, media=media_root,
                logs=tmp_path / "logs")
        finally:
            redis.kill()
    print("\n".join(hosts.lines(result, result)))
    assert result.completed == 200
    assert result.duplicate_submissions == result.results_read_twice == 0
    assert result.products_per_item == {1: 200}
    assert result.media_rows == 200 and result.orphan_files == 0
    assert result.submissions_by_host.keys() == {"host-a", "host-b"}
    assert min(result.submissions_by_host.values()) >= 20, result.submissions_by_host
    assert result.clean
