"""The services' uvicorn server (`fulfilkit.serve.QuietServer`): it checks whether to stop
once a second instead of ten times, and still stops at once on a signal."""

import asyncio
import signal
import time
from typing import Any

import uvicorn

from fulfilkit.serve import QuietServer, parser
from services.gateway.tests.harness import listening_socket
from tests.support import eventually


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


class CountedServer(QuietServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


async def started() -> tuple[CountedServer, asyncio.Task[None]]:
    server = CountedServer(uvicorn.Config(hello, log_config=None, lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[listening_socket()]))
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and not task.done(), "the server did not start"
        await asyncio.sleep(0.01)
    return server, task


async def test_an_idle_server_checks_about_once_a_second() -> None:
    server, task = await started()
    try:
        before, since = server.ticks, time.monotonic()
        await eventually(
            lambda: asyncio.sleep(0, server.ticks - before),
            lambda checks: checks >= 3,
            timeout=10,
            interval=0.01,
            what="three checks",
        )
        # the first may come at once, the third two seconds after it; ten a second: 0.3 s
        assert time.monotonic() - since >= 1.8
        assert server.server_state.default_headers, "the date header is still kept"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 5)


async def test_a_stop_signal_ends_it_at_once() -> None:
    # uvicorn raises a signal it handled again once it has stopped: let that one pass here
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server, task = await started()
        await asyncio.sleep(0.1)  # into the one-second wait
        asked = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - asked < 0.5
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_it_takes_the_launchers_options() -> None:
    args = parser().parse_args(
        ["orders.app:create_app", "--factory", "--host", "127.0.0.1", "--port", "8001"]
        + ["--loop", "uvloop", "--http", "httptools", "--no-access-log"]
    )
    assert (args.app, args.factory, args.port, args.access_log) == (
        "orders.app:create_app",
        True,
        8001,
        False,
    )
