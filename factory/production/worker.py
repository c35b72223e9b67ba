"""The RQ worker class every `rqworker` of this project runs.

Production jobs are short: a claim, one HTTP call, a few updates, or one
collection. Forking a work horse per job (RQ's default) costs more than
most of them, and opens a new database connection each time, so jobs run
in the worker process itself. A SIGKILLed worker takes its job with it,
which the database-driven design already survives: the sweeper re-drives
every item whose lease runs out. Job timeouts still apply (SIGALRM).
"""
from django.db import close_old_connections
from rq import SimpleWorker
from rq.job import Job
from rq.queue import Queue


class ProductionWorker(SimpleWorker):
    """A non-forking worker that keeps database connections healthy."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        # Drop connections that broke or outlived CONN_MAX_AGE, as Django
        # does around each request.
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()
