"""`python -m fulfilkit.serve APP [--factory] [--host H] [--port P] [--loop L] [--http H]
[--no-access-log]`: uvicorn, with the options of its command line that the launcher uses, on
a server that wakes once a second when nothing happens instead of ten times.

uvicorn's server loop sleeps 100 ms between checks whether to stop (and refreshes its `date`
header every tenth check): five idle services wake fifty times a second for that alone.
`QuietServer` checks once a second and is woken at once by a stop signal, so it stops as
fast as before; requests are served by the event loop, never by this loop.
"""

import argparse
import asyncio
import contextlib
from types import FrameType

import uvicorn

TICK_SECONDS = 1.0
# uvicorn's `on_tick` counts tenths of a second: the date header is refreshed on multiples of 10
TICKS_PER_CHECK = round(TICK_SECONDS * 10)


class QuietServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit_asked: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._exit_asked = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_asked.wait(), TICK_SECONDS)
            counter = (counter + TICKS_PER_CHECK) % 864000
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # A signal handler interrupts the loop's own thread: hand the wake-up over safely.
        if self._loop is not None and self._exit_asked is not None:
            self._loop.call_soon_threadsafe(self._exit_asked.set)


def parser() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(prog="python -m fulfilkit.serve", description=__doc__)
    options.add_argument("app", help="module:attribute, as uvicorn takes it")
    options.add_argument("--factory", action="store_true", help="APP is a function making it")
    options.add_argument("--host", default="127.0.0.1")
    options.add_argument("--port", type=int, default=8000)
    options.add_argument("--loop", default="auto")
    options.add_argument("--http", default="auto")
    options.add_argument("--no-access-log", dest="access_log", action="store_false")
    return options


def config(args: argparse.Namespace) -> uvicorn.Config:
    """uvicorn's configuration from the options `parser` reads."""
    return uvicorn.Config(
        args.app,
        factory=args.factory,
        host=args.host,
        port=args.port,
        loop=args.loop,
        http=args.http,
        access_log=args.access_log,
    )


def main(argv: list[str] | None = None) -> None:
    QuietServer(config(parser().parse_args(argv))).run()


if __name__ == "__main__":
    main()
