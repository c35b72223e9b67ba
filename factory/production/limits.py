"""Concurrency slots and rate-limit cool-downs, shared by every process.

A slot is an item id in a Redis sorted set per provider (and per machine
where the catalog sets a limit), scored by when it expires. Taking a slot
is one Lua call, so processes on any host agree; an item that never gives
its slot back loses it when the score passes. Redis may be flushed, so the
sweeper re-adds the slots of every item the database says is in flight.
"""
import time
from collections.abc import Iterable
from dataclasses import dataclass

import django_rq
from django.conf import settings
from redis import Redis

from factory.models import FactoryMachine, ItemStatus, OrderItem, Provider

PREFIX = "artfactory:limits:"
# Statuses that may have a generation running at the provider.
IN_FLIGHT = (ItemStatus.SUBMITTING, ItemStatus.SUBMITTED, ItemStatus.SUBMIT_UNKNOWN)

# KEYS: slot sets. ARGV: now, expiry, member, then one limit per key.
ACQUIRE_SCRIPT = """
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
  if not redis.call('ZSCORE', key, ARGV[3])
     and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, ARGV[2], ARGV[3])
end
return 1
"""
# KEYS[1]: cool-down key. ARGV[1]: milliseconds. Never shortens a pause.
SLOW_DOWN_SCRIPT = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
"""


@dataclass(frozen=True)
class Scope:
    """One limit: a provider's or a machine's."""

    key: str
    limit: int


def connection() -> Redis:
    return django_rq.get_connection("default")


def slot_seconds() -> float:
    """How long a slot lives without being renewed."""
    return float(getattr(settings, "PRODUCTION_SLOT_SECONDS", 900))


def provider_scope(provider: Provider) -> Scope:
    return Scope(f"{PREFIX}slots:provider:{provider.slug}", provider.concurrency_limit)


def machine_scope(machine: FactoryMachine) -> Scope | None:
    if machine.concurrency_limit is None:
        return None
    return Scope(f"{PREFIX}slots:machine:{machine.slug}", machine.concurrency_limit)


def scopes(item: OrderItem) -> list[Scope]:
    """The limits an item's submission counts against."""
    machine = item.machine
    found = [provider_scope(machine.provider), machine_scope(machine)]
    return [scope for scope in found if scope is not None]


def has_room(item: OrderItem) -> bool:
    """A cheap look before claiming; ``acquire`` is the real test."""
    found, now = scopes(item), time.time()
    pipe = connection().pipeline(transaction=False)
    for scope in found:
        pipe.zcount(scope.key, f"({now}", "+inf")
        pipe.zscore(scope.key, item.pk)
    answers = pipe.execute()
    for scope, used, own in zip(found, answers[::2], answers[1::2]):
        if own is None and used >= scope.limit:
            return False
    return True


def acquire(item: OrderItem) -> bool:
    """Take a slot in every scope of the item, or in none of them."""
    found = scopes(item)
    now = time.time()
    taken = connection().eval(
        ACQUIRE_SCRIPT, len(found), *[s.key for s in found],
        now, now + slot_seconds(), item.pk, *[s.limit for s in found],
    )
    return bool(taken)


def renew(items: Iterable[OrderItem]) -> None:
    """Keep (or, after a flush, restore) the slots of running items."""
    expiry = time.time() + slot_seconds()
    pipe = connection().pipeline(transaction=False)
    for item in items:
        for scope in scopes(item):
            pipe.zadd(scope.key, {str(item.pk): expiry})
    pipe.execute()


def release(item: OrderItem) -> None:
    """Give the item's slots back; harmless when it holds none."""
    pipe = connection().pipeline(transaction=False)
    for scope in scopes(item):
        pipe.zrem(scope.key, item.pk)
    pipe.execute()


def slow_down(provider_slug: str, seconds: float) -> None:
    """Pause new submissions to a provider that answered 429 Retry-After."""
    milliseconds = max(1, int(seconds * 1000))
    connection().eval(SLOW_DOWN_SCRIPT, 1, cooldown_key(provider_slug), milliseconds)


def cooldown_key(provider_slug: str) -> str:
    return f"{PREFIX}cooldown:{provider_slug}"


def cooldown_remaining(provider_slug: str) -> float:
    """Seconds until the provider takes submissions again; 0 when it does."""
    milliseconds = connection().pttl(cooldown_key(provider_slug))
    return max(0.0, milliseconds / 1000)


def _all_scopes() -> list[Scope]:
    machines = FactoryMachine.objects.filter(concurrency_limit__isnull=False)
    return [provider_scope(p) for p in Provider.objects.all()] + [
        machine_scope(m) for m in machines
    ]


def sync_slots() -> None:
    """Match the slot sets to the items the database says are in flight.

    Adds slots a flush lost and drops slots of items that left flight
    without giving them back. A slot taken after the snapshot is scored
    later than any slot it could judge, so it is never dropped.
    """
    snapshot = time.time()
    flying = list(OrderItem.objects.filter(status__in=IN_FLIGHT).select_related(
        "machine__provider"
    ))
    wanted: dict[str, set[str]] = {scope.key: set() for scope in _all_scopes()}
    for item in flying:
        for scope in scopes(item):
            wanted.setdefault(scope.key, set()).add(str(item.pk))
    redis = connection()
    expiry = snapshot + slot_seconds()
    for key, members in wanted.items():
        held = redis.zrangebyscore(key, "-inf", expiry, withscores=False)
        stale = [m for m in (h.decode() for h in held) if m not in members]
        pipe = redis.pipeline(transaction=False)
        if stale:
            pipe.zrem(key, *stale)
        if members:
            pipe.zadd(key, dict.fromkeys(members, expiry), nx=True)
        pipe.execute()


def usage() -> list[tuple[str, int, int]]:
    """(scope key, slots in use, limit) for every limit in the catalog."""
    now = time.time()
    pipe = connection().pipeline(transaction=False)
    found = _all_scopes()
    for scope in found:
        pipe.zcount(scope.key, f"({now}", "+inf")
    return [
        (scope.key.removeprefix(PREFIX + "slots:"), used, scope.limit)
        for scope, used in zip(found, pipe.execute())
    ]
