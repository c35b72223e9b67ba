"""Putting work on Redis. Jobs are named by path, so no import cycles.

Job ids start with the item id (``submit-42-9f…``), so the sweeper can tell
from RQ's own lists which items still have a live job.
"""
import math
import time
import uuid
from datetime import timedelta

import django_rq
from django.conf import settings
from django.utils import timezone
from redis import Redis, RedisError
from rq import Queue, Retry

from factory.models import ItemStatus, OrderItem

SUBMIT_QUEUE = "submit"
COLLECT_QUEUE = "collect"
DEFAULT_QUEUE = "default"
SUBMIT_JOB = "factory.production.jobs.submit_item"
COLLECT_JOB = "factory.production.jobs.collect_item"
CANCEL_JOB = "factory.production.jobs.cancel_item_at_provider"
JOB_PREFIX = {SUBMIT_QUEUE: "submit", COLLECT_QUEUE: "collect"}
COLLECT_TIMEOUT_SECONDS = 600
# Submit and collect jobs return nothing and the database records what they
# did: no result is kept for them in Redis (a failed job is still kept in
# the failed registry).
NO_RESULT = 0


def job_id(queue_name: str, item_id: int) -> str:
    """A fresh job id that names its item."""
    return f"{JOB_PREFIX.get(queue_name, 'job')}-{item_id}-{uuid.uuid4().hex[:12]}"


_CLIENTS: dict[str, Redis] = {}


def connection() -> Redis:
    """This process's Redis client for the queues, slots and lines.

    One client, so one connection pool, per URL: opening a connection per
    call costs more than most of the commands sent over it. redis-py's pool
    is thread-safe and starts afresh in a forked child.
    """
    url = settings.RQ_QUEUES["default"]["URL"]
    client = _CLIENTS.get(url)
    if client is None:
        client = _CLIENTS.setdefault(url, django_rq.get_connection("default"))
    return client


def _queue(name: str) -> Queue:
    return django_rq.get_queue(name, connection=connection())


def enqueue_items(item_ids: list[int]) -> None:
    """Queue a submit job per item in one Redis round trip."""
    _queue(SUBMIT_QUEUE).enqueue_many([
        Queue.prepare_data(SUBMIT_JOB, args=(pk,), job_id=job_id(SUBMIT_QUEUE, pk),
                           result_ttl=NO_RESULT)
        for pk in item_ids
    ])


def enqueue_submit(item_id: int) -> None:
    """Queue a submit job now; a later try is a due time in the database."""
    _queue(SUBMIT_QUEUE).enqueue(SUBMIT_JOB, item_id, job_id=job_id(SUBMIT_QUEUE, item_id),
                                 result_ttl=NO_RESULT)


def enqueue_collect(item_id: int) -> None:
    enqueue_collects([item_id])


def collect_timeout() -> int:
    """Seconds a collect job may run: never past the lease it takes, so
    when the lease runs out the job has ended one way or another."""
    lease = float(settings.PRODUCTION_COLLECT_LEASE_SECONDS)
    return max(1, min(COLLECT_TIMEOUT_SECONDS, math.floor(lease)))


def enqueue_collects(item_ids: list[int]) -> None:
    """Queue a collect job per item in one Redis round trip."""
    timeout = collect_timeout()
    _queue(COLLECT_QUEUE).enqueue_many([
        Queue.prepare_data(COLLECT_JOB, args=(pk,), timeout=timeout,
                           job_id=job_id(COLLECT_QUEUE, pk), result_ttl=NO_RESULT)
        for pk in item_ids
    ])


def enqueue_cancel(item_id: int) -> None:
    """Queue a provider cancel; RQ retries it when the provider is busy."""
    _queue(DEFAULT_QUEUE).enqueue(
        CANCEL_JOB, item_id, retry=Retry(max=3, interval=[5, 30, 120])
    )


def enqueue_follow(item_id: int, delay: float = 0) -> None:
    """Ask the foreman to poll a submitted item after ``delay`` seconds.

    A submitted item's lease is its next poll time, so this is a database
    write, not a job: a webhook or a failed download only moves it closer.
    """
    OrderItem.objects.filter(pk=item_id, status=ItemStatus.SUBMITTED).update(
        lease_owner="", lease_until=timezone.now() + timedelta(seconds=delay)
    )


WAKE_KEY = "artfactory:foreman:wake"
# Webhooks of one moment are answered by one round, not one round each.
WAKE_GATHER_SECONDS = 0.05


def wake_foremen() -> None:
    """Cut a resting foreman's pause short: an item is due for polling now."""
    pipe = connection().pipeline(transaction=False)
    pipe.rpush(WAKE_KEY, 1)
    pipe.expire(WAKE_KEY, 60)
    pipe.execute()


def rest(seconds: float) -> bool:
    """Sleep up to ``seconds``, less if ``wake_foremen`` is called meanwhile;
    True if woken. Without Redis it is a plain sleep."""
    if seconds <= 0:
        return False
    try:
        woken = connection().blpop([WAKE_KEY], timeout=seconds) is not None
        if woken:
            time.sleep(WAKE_GATHER_SECONDS)
            connection().delete(WAKE_KEY)
        return woken
    except RedisError:
        time.sleep(seconds)
        return False


def live_item_ids(queue_name: str, *, running: bool = True) -> set[int]:
    """Items with a job queued or (if ``running``) running on ``queue_name``.

    Nothing is scheduled in Redis: a retry's due time is in the database.

    Read in one Redis transaction, so a job moving between lists is seen.
    A running job counts until its entry expires (the job's timeout plus a
    minute): a worker that died mid-job leaves its entry behind, and RQ
    only removes it later.
    """
    queue = _queue(queue_name)
    pipe = queue.connection.pipeline(transaction=True)
    pipe.lrange(queue.key, 0, -1)
    if running:
        pipe.zrangebyscore(queue.started_job_registry.key, time.time(), "+inf")
    prefix = JOB_PREFIX[queue_name] + "-"
    found = set()
    for entry in (e.decode() for listed in pipe.execute() for e in listed):
        name = entry.split(":", 1)[0]  # started entries add ":<execution id>"
        if name.startswith(prefix):
            found.add(int(name.split("-")[1]))
    return found
