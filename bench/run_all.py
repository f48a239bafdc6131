"""Runs every benchmark in this folder, each on a fresh Kafka and PostgreSQL (`make bench`).

A fresh pair per benchmark keeps one run's events from loading the next: the webhooks
service, for one, would otherwise start by consuming everything the earlier runs left.
PostgreSQL keeps fsync on (INFRA_DURABLE=1), as in production.
"""

import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["sales_flow.py", "stock_reservations.py", "webhook_delivery.py"]

if __name__ == "__main__":
    here = Path(__file__).parent
    env = {
        k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")
    }
    env["INFRA_DURABLE"] = "1"
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "deploy.local", "infra", "--", sys.executable, str(here / name)],
            check=True,
            env=env,
            cwd=here.parent,
        )
