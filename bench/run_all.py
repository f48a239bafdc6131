"""Runs every benchmark in this folder in turn (see `make bench`)."""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["sales_flow.py", "stock_reservations.py", "webhook_delivery.py"]

if __name__ == "__main__":
    here = Path(__file__).parent
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        subprocess.run([sys.executable, str(here / name)], check=True)
