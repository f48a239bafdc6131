from typing import Literal

from pydantic import Field, model_validator

from fulfilkit.settings import ServiceSettings


class StockSettings(ServiceSettings):
    backorder_poll_interval_seconds: float = Field(default=1.0, gt=0)
    backorder_sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # Test-only: make the process die at a chosen point, to prove recovery from it.
    fault_injection: Literal["", "crash_after_commit"] = ""

    @model_validator(mode="after")
    def _faults_only_in_development(self) -> "StockSettings":
        if self.fault_injection and self.environment != "development":
            raise ValueError("FAULT_INJECTION is for tests only")
        return self
