"""The HTTP session one service uses to call another."""

import aiohttp

# uvicorn closes a keep-alive connection after 5 s idle by default. A client that keeps it
# longer (aiohttp: 15 s) sometimes writes a request into a connection the server is
# closing and gets "Can not write request body": the client must let go first.
KEEPALIVE_SECONDS = 4.0


def internal_session(max_connections: int, timeout_seconds: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=KEEPALIVE_SECONDS),
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
    )
