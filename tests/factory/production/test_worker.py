"""Workers run production jobs in their own process."""
import os

import django_rq
import pytest

from factory.models import ItemStatus
from factory.production.queues import SUBMIT_QUEUE
from factory.production.worker import ProductionWorker
from factory.providers.demo import DemoBackend
from tests.factory.production.test_foreman import place_demo

pytestmark = pytest.mark.django_db(transaction=True)


def test_rqworker_runs_jobs_in_its_own_process(
    catalog, redis_db, lead, monkeypatch
):
    pids: list[int] = []
    real_submit = DemoBackend.submit

    def watched(self, machine, params, *, key=None):
        pids.append(os.getpid())
        return real_submit(self, machine, params, key=key)

    monkeypatch.setattr(DemoBackend, "submit", watched)
    order = place_demo(lead, runs=2)
    worker = django_rq.get_worker(SUBMIT_QUEUE)
    assert isinstance(worker, ProductionWorker)  # RQ's WORKER_CLASS setting

    worker.work(burst=True)

    assert pids == [os.getpid()] * 2  # no forked work horse
    assert set(order.items.values_list("status", flat=True)) == {ItemStatus.SUBMITTED}
