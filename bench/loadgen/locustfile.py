"""Locust's fastest client (FastHttpUser, no wait): the Python load tool kuar-loadgen is compared
with. Used by ``python -m bench.loadgen``; the target path comes from BENCH_PATH."""

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BENCH_PATH", "/index.html")


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self) -> None:
        self.client.get(PATH)
