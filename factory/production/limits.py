"""Concurrency slots, waiting lines and rate-limit cool-downs, shared by
every process.

A slot is an item id in a Redis sorted set per provider (and per machine
where the catalog sets a limit), scored by when it expires. Taking a slot
is one Lua call, so processes on any host agree; an item that never gives
its slot back loses it when the score passes.

An item that finds a limit full waits in that limit's line (a sorted set
scored by item id, so older items go first) and holds no job or timer.
Giving a slot back wakes one waiting item per free slot in the same Lua
call, so a freed slot is not left idle. Redis may be flushed: the sweeper
re-adds the slots of every item the database says is in flight, and
re-queues pending items that are neither queued nor waiting.
"""
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from redis import Redis

from factory.models import FactoryMachine, ItemStatus, OrderItem, Provider
from factory.production import queues

PREFIX = "artfactory:limits:"
# Statuses that may have a generation running at the provider.
IN_FLIGHT = (ItemStatus.SUBMITTING, ItemStatus.SUBMITTED, ItemStatus.SUBMIT_UNKNOWN)

# Shared by the scripts below. KEYS: n slot sets, then their n lines.
# wake(i, now, limit) drops the expired slots of scope i and pops one
# waiting item per free slot.
_WAKE = """
local n = #KEYS / 2
local woken = {}
local function wake(i, now, limit)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  local free = limit - redis.call('ZCARD', KEYS[i])
  if free > 0 then
    local popped = redis.call('ZPOPMIN', KEYS[n + i], free)
    for j = 1, #popped, 2 do woken[#woken + 1] = popped[j] end
  end
end
"""
# ARGV: now, expiry, member (an item id, also its place in line), then one
# limit per scope. Returns {1} once every slot is taken, or {0, woken...}
# with the item waiting in each full scope; scopes with room pass their
# free slots on.
ACQUIRE_SCRIPT = _WAKE + """
local blocked = {}
for i = 1, n do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[1])
  if not redis.call('ZSCORE', KEYS[i], ARGV[3])
     and redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[3 + i]) then
    blocked[i] = true
  end
end
if next(blocked) == nil then
  for i = 1, n do
    redis.call('ZADD', KEYS[i], ARGV[2], ARGV[3])
    redis.call('ZREM', KEYS[n + i], ARGV[3])
  end
  return {1}
end
for i = 1, n do
  if blocked[i] then
    redis.call('ZADD', KEYS[n + i], 'NX', ARGV[3], ARGV[3])
  else
    redis.call('ZREM', KEYS[n + i], ARGV[3])
    wake(i, ARGV[1], tonumber(ARGV[3 + i]))
  end
end
return {0, unpack(woken)}
"""
# ARGV: now, m, then m members, then one limit per scope. Returns the
# woken items.
RELEASE_SCRIPT = _WAKE + """
local m = tonumber(ARGV[2])
for i = 1, n do
  for j = 1, m do
    redis.call('ZREM', KEYS[i], ARGV[2 + j])
    redis.call('ZREM', KEYS[n + i], ARGV[2 + j])
  end
  wake(i, ARGV[1], tonumber(ARGV[2 + m + i]))
end
return woken
"""
# ARGV: now, then one limit per scope. Returns the woken items.
WAKE_SCRIPT = _WAKE + """
for i = 1, n do wake(i, ARGV[1], tonumber(ARGV[1 + i])) end
return woken
"""
# KEYS: one slot set, its line. ARGV: now, limit, then the new members.
# Puts them in line and returns those woken into the room there is.
ADMIT_SCRIPT = _WAKE + """
for j = 3, #ARGV do redis.call('ZADD', KEYS[2], 'NX', ARGV[j], ARGV[j]) end
wake(1, ARGV[1], tonumber(ARGV[2]))
return woken
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

    @property
    def line(self) -> str:
        """The sorted set of items waiting for this scope's slots."""
        return self.key.replace(":slots:", ":waiting:", 1)


def connection() -> Redis:
    return queues.connection()


def slot_seconds() -> float:
    """How long a slot lives without being renewed."""
    return float(settings.PRODUCTION_SLOT_SECONDS)


def provider_scope(provider: Provider) -> Scope:
    return Scope(f"{PREFIX}slots:provider:{provider.slug}", provider.concurrency_limit)


def machine_scope(machine: FactoryMachine) -> Scope | None:
    if machine.concurrency_limit is None:
        return None
    return Scope(f"{PREFIX}slots:machine:{machine.slug}", machine.concurrency_limit)


def scopes(item: OrderItem) -> list[Scope]:
    """The limits an item's submission counts against."""
    return scopes_of(item.machine)


def scopes_of(machine: FactoryMachine) -> list[Scope]:
    """A machine's limits: its provider's, then its own if it has one."""
    found = [provider_scope(machine.provider), machine_scope(machine)]
    return [scope for scope in found if scope is not None]


def _keys(found: list[Scope]) -> list[str]:
    return [s.key for s in found] + [s.line for s in found]


def _wake(woken: Iterable[bytes | str | int]) -> list[int]:
    """Queue a submit job for each woken item; returns their ids."""
    ids = sorted({int(member) for member in woken})
    if ids:
        queues.enqueue_items(ids)
    return ids


def acquire(item: OrderItem) -> bool:
    """Take a slot in every scope of the item, or in none of them.

    When a scope is full the item waits in its line until a slot given
    back there wakes it with a new submit job; the caller simply returns.
    """
    found = scopes(item)
    now = time.time()
    answer = connection().eval(
        ACQUIRE_SCRIPT, 2 * len(found), *_keys(found),
        now, now + slot_seconds(), item.pk, *[s.limit for s in found],
    )
    _wake(answer[1:])
    return bool(answer[0])


ADMIT_BATCH = 1000


def admit(machine: FactoryMachine, item_ids: list[int]) -> list[int]:
    """Queue new items of ``machine`` for submission without a job each:
    they join the line of its first limit, and as many as it has room for
    are woken with a submit job at once; the rest are woken as slots come
    back. Returns the woken ids.

    A woken item still takes its slots in the submit job, so every limit
    (the machine's too) holds as before; only the jobs that would find the
    slots taken and return are never queued.
    """
    scope = scopes_of(machine)[0]
    redis, woken = connection(), []
    for start in range(0, len(item_ids), ADMIT_BATCH):
        batch = item_ids[start:start + ADMIT_BATCH]
        woken += redis.eval(ADMIT_SCRIPT, 2, scope.key, scope.line,
                            time.time(), scope.limit, *batch)
    return _wake(woken)


def renew(items: Iterable[OrderItem]) -> None:
    """Keep (or, after a flush, restore) the slots of running items."""
    expiry = time.time() + slot_seconds()
    pipe = connection().pipeline(transaction=False)
    for item in items:
        for scope in scopes(item):
            pipe.zadd(scope.key, {str(item.pk): expiry})
    pipe.execute()


def release(item: OrderItem) -> list[int]:
    """Give the item's slots back (harmless when it holds none), take it out
    of any line and wake the next waiting items; returns their ids."""
    return release_many([item])


def release_many(items: Iterable[OrderItem]) -> list[int]:
    """``release`` for many items: one Lua call per set of scopes."""
    groups: dict[tuple[Scope, ...], list[int]] = {}
    for item in items:
        groups.setdefault(tuple(scopes(item)), []).append(item.pk)
    woken: list[bytes] = []
    redis, now = connection(), time.time()
    for found, members in groups.items():
        woken += redis.eval(
            RELEASE_SCRIPT, 2 * len(found), *_keys(list(found)),
            now, len(members), *members, *[s.limit for s in found],
        )
    return _wake(woken)


def wake_waiting() -> list[int]:
    """Wake waiting items wherever slots are free, e.g. after slots expired
    or the sweeper dropped stale ones; returns the woken ids."""
    found = _all_scopes()
    if not found:
        return []
    woken = connection().eval(
        WAKE_SCRIPT, 2 * len(found), *_keys(found),
        time.time(), *[s.limit for s in found],
    )
    return _wake(woken)


def waiting_item_ids() -> set[int]:
    """Items waiting in any line: alive, although no job holds them."""
    pipe = connection().pipeline(transaction=False)
    for scope in _all_scopes():
        pipe.zrange(scope.line, 0, -1)
    return {int(member) for members in pipe.execute() for member in members}


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
    without giving them back, then wakes waiting items into the room that
    made. A slot taken after the snapshot is scored later than any slot it
    could judge, so it is never dropped.
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
    wake_waiting()


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
