"""Putting work on Redis. Jobs are named by path, so no import cycles."""
from datetime import timedelta

import django_rq
from rq import Queue

SUBMIT_QUEUE = "submit"
COLLECT_QUEUE = "collect"
SUBMIT_JOB = "factory.production.jobs.submit_item"
FOLLOW_JOB = "factory.production.jobs.follow_item"


def _enqueue(queue_name: str, func: str, item_id: int, delay: float) -> None:
    queue: Queue = django_rq.get_queue(queue_name)
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), func, item_id)
    else:
        queue.enqueue(func, item_id)


def enqueue_items(item_ids: list[int]) -> None:
    """Queue a submit job per item in one Redis round trip."""
    queue: Queue = django_rq.get_queue(SUBMIT_QUEUE)
    queue.enqueue_many([Queue.prepare_data(SUBMIT_JOB, args=(pk,)) for pk in item_ids])


def enqueue_submit(item_id: int, delay: float = 0) -> None:
    _enqueue(SUBMIT_QUEUE, SUBMIT_JOB, item_id, delay)


def enqueue_follow(item_id: int, delay: float = 0) -> None:
    _enqueue(COLLECT_QUEUE, FOLLOW_JOB, item_id, delay)
