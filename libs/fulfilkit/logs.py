import logging
import sys
import time
from contextvars import ContextVar

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class BrokerNoise(logging.Filter):
    """While the Kafka broker is unreachable, aiokafka logs about ten errors a second per
    service. This lets one of them through every `interval` seconds, as a warning that says
    how long the broker has been unreachable and how many lines were left out; `recovered`
    ends the outage once the noise has stopped (the caller checks the broker answers)."""

    def __init__(self, interval: float = 10.0, source: str = "aiokafka") -> None:
        super().__init__()
        self.interval = interval
        self.source = source
        self.outage_since: float | None = None
        self.last_noise = 0.0
        self.left_out = 0
        self._quiet_until = 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.name == self.source or record.name.startswith(f"{self.source}.")):
            return True
        # Errors start an outage; warnings (a rebalance, say) are noise only during one.
        threshold = logging.WARNING if self.outage_since is not None else logging.ERROR
        if record.levelno < threshold:
            return True
        now = time.monotonic()
        self.last_noise = now
        if self.outage_since is None:
            self.outage_since = now
        if now < self._quiet_until:
            self.left_out += 1
            return False
        record.msg = (
            f"Kafka broker unreachable for {now - self.outage_since:.0f}s"
            f" ({self.left_out} similar lines left out): {record.getMessage()}"
        )
        record.args, record.exc_info, record.exc_text = None, None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self.left_out = 0
        self._quiet_until = now + self.interval
        return True

    def quiet_for(self) -> float:
        return time.monotonic() - self.last_noise

    def recovered(self) -> float:
        """End the outage; returns how long it lasted."""
        lasted = time.monotonic() - (self.outage_since or time.monotonic())
        self.outage_since, self.left_out, self._quiet_until = None, 0, 0.0
        return lasted


broker_noise = BrokerNoise()


def configure_logging(service: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.addFilter(broker_noise)
    handler.setFormatter(
        logging.Formatter(
            f"%(asctime)s %(levelname)s {service} %(name)s [%(request_id)s] %(message)s"
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
