"""A supervised loop is restarted after any failure, with capped exponential backoff; its
failures are logged and counted; it is reported down until it has run again for a while."""

import asyncio
import itertools
import logging
import time

import asyncpg
import pytest

from fulfilkit.supervise import Supervisor


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_failing_loop_is_restarted_with_doubling_capped_delays(caplog) -> None:
    starts: list[float] = []

    async def flaky() -> None:
        starts.append(time.monotonic())
        if len(starts) <= 5:
            raise ValueError(f"failure {len(starts)}")
        await asyncio.Event().wait()  # then runs for good

    loops = Supervisor(first_delay=0.05, max_delay=0.2, settle=0.3)
    with caplog.at_level(logging.ERROR, logger="fulfilkit.supervise"):
        loops.start("flaky", flaky)
        try:
            await until(lambda: len(starts) == 6)
            gaps = [b - a for a, b in itertools.pairwise(starts)]
            # 0.05, 0.1, 0.2, then capped at 0.2 (a loaded machine only makes them longer)
            for gap, least in zip(gaps, (0.05, 0.1, 0.2, 0.2, 0.2), strict=True):
                assert gap >= least * 0.9, gaps
            assert gaps[-1] < 2.0, "the cap holds"
            status = loops.loops["flaky"]
            assert (status.failures, status.last_error) == (5, "ValueError: failure 5")
            failures = [r for r in caplog.records if "background loop flaky failed" in r.message]
            assert len(failures) == 5 and all(r.exc_info for r in failures), "with traceback"
        finally:
            await loops.stop()


async def test_a_loop_is_down_from_its_failure_until_it_has_run_for_a_while() -> None:
    fail = asyncio.Event()
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        await fail.wait()
        fail.clear()
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    loops = Supervisor(first_delay=0.2, max_delay=1.0, settle=0.5)
    loops.start("relay", loop)
    try:
        assert loops.down() == [], "a loop that has not failed is up from its start"
        fail.set()
        await until(lambda: loops.loops["relay"].failures == 1)
        assert loops.down() == ["relay"], "waiting to restart"
        await until(lambda: runs == 2)
        assert loops.down() == ["relay"], "restarted, but not yet for long enough"
        await until(lambda: loops.down() == [], timeout=5)
        assert loops.loops["relay"].running
    finally:
        await loops.stop()
    assert loops.down() == ["relay"], "stopped"


async def test_a_lost_connection_is_one_line_and_a_returning_loop_is_restarted(caplog) -> None:
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConnectionRefusedError(111, "Connection refused")
        if runs == 2:
            return  # a loop must not end: that is a failure too
        await asyncio.Event().wait()

    loops = Supervisor(first_delay=0.01, max_delay=0.05)
    with caplog.at_level(logging.WARNING, logger="fulfilkit.supervise"):
        loops.start("waiter", loop)
        try:
            await until(lambda: runs == 3)
        finally:
            await loops.stop()
    lost, returned = [r for r in caplog.records if "waiter" in r.message]
    assert lost.levelno == logging.WARNING and lost.exc_info is None
    assert "lost a connection" in lost.message
    assert returned.levelno == logging.ERROR and "the loop returned" in str(returned.exc_info[1])
    assert loops.loops["waiter"].failures == 2


async def test_two_loops_cannot_share_a_name() -> None:
    loops = Supervisor()

    async def loop() -> None:
        await asyncio.Event().wait()

    loops.start("pruner", loop)
    try:
        with pytest.raises(ValueError, match="pruner"):
            loops.start("pruner", loop)
    finally:
        await loops.stop()


async def test_stop_ends_a_loop_that_fails_while_it_is_cancelled() -> None:
    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise OSError("closing its pool failed")  # replaces the cancellation

    loops = Supervisor(first_delay=0.01)
    loops.start("dispatcher", loop)
    await asyncio.sleep(0.05)
    await asyncio.wait_for(loops.stop(), 5)
    assert loops.down() == ["dispatcher"]
