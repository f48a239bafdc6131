"""What one log line costs as text (the default) and as JSON (`LOG_FORMAT=json`).

Each line goes through the service's own handler (`fulfilkit.logs.configure_logging`, its
filters included) to a stream that drops it: the cost of a `log.info(...)` that is written.
Cases: a line inside a request (request id and tenant set), the same inside a recording
OpenTelemetry span (trace and span ids too), and a line with an exception.

Needs no infrastructure: `python bench/log_format.py [--lines N] [--rounds R]`.
"""

import argparse
import io
import logging
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

from opentelemetry.sdk.trace import TracerProvider

sys.path[:0] = [str(Path(__file__).parents[1] / "libs")]

from fulfilkit.logs import configure_logging, request_id_var, tenant_var  # noqa: E402

log = logging.getLogger("orders.usecases")


class Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def handler(log_format: str) -> logging.Handler:
    """The service's handler in `log_format`, writing nowhere."""
    configure_logging("orders", "INFO", log_format)  # type: ignore[arg-type]
    configured = logging.getLogger().handlers[0]
    configured.setStream(Discard())  # type: ignore[attr-defined]
    return configured


def per_line(write: Callable[[], None], lines: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per line as (text, json), the two measured in turn each round so
    that both see the same machine."""
    handlers = {name: handler(name) for name in ("text", "json")}
    timings: dict[str, list[float]] = {name: [] for name in handlers}
    root = logging.getLogger()
    for _ in range(rounds):
        for name, each in handlers.items():
            root.handlers[:] = [each]
            started = time.perf_counter()
            for _ in range(lines):
                write()
            timings[name].append((time.perf_counter() - started) / lines * 1e6)
    return statistics.median(timings["text"]), statistics.median(timings["json"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    tracer = TracerProvider().get_tracer("bench")
    try:
        raise ValueError("the stock level went below zero")
    except ValueError:
        error = sys.exc_info()

    def plain() -> None:
        log.info("sale %s is %s after %d events", "S-1a2b3c4d", "reserved", 3)

    def failed() -> None:
        log.error("could not apply event %s", "e-1", exc_info=error)

    request_id_var.set(uuid4().hex)
    tenant_var.set(uuid4())
    print(f"python {platform.python_version()}, {args.lines} lines x {args.rounds} rounds")
    print(f"{'case':<26}{'text µs':>10}{'json µs':>10}{'json/text':>11}")
    for case, write, in_span in (
        ("in a request", plain, False),
        ("in a request and span", plain, True),
        ("with an exception", failed, False),
    ):
        if in_span:
            with tracer.start_as_current_span("request"):
                text, json = per_line(write, args.lines, args.rounds)
        else:
            text, json = per_line(write, args.lines, args.rounds)
        print(f"{case:<26}{text:>10.2f}{json:>10.2f}{json / text:>10.2f}x")


if __name__ == "__main__":
    main()
