"""`python -m deploy.local.replica APP --shared-port S [the options of fulfilkit.serve]`: one
replica of a service, as the launcher runs it when a service has more than one process.

It serves two ports: its own (`--port`, where the launcher asks it for `/ready` and a test can
reach this replica alone) and the service's shared port (`--shared-port`), which every replica
of the service binds with `SO_REUSEPORT`. The kernel spreads the connections made to the shared
port over the replicas listening on it, as a load balancer in front of the replicas would: the
other services and the clients are given the shared port only. A replica that dies takes its
sockets with it and new connections go to the others; a replica that starts listens (and so
gets connections) only once its application has started, since uvicorn calls `listen` on a
socket it is handed after the application's startup.
"""

import socket

from fulfilkit.serve import QuietServer, config, parser


def bound(host: str, port: int, *, shared: bool) -> socket.socket:
    """A TCP socket bound to (host, port) and not yet listening; `shared` lets every replica
    bind the same port (`SO_REUSEPORT`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


def main(argv: list[str] | None = None) -> None:
    options = parser()
    options.prog = "python -m deploy.local.replica"
    options.add_argument(
        "--shared-port", type=int, required=True, help="the port every replica serves together"
    )
    args = options.parse_args(argv)
    own = bound(args.host, args.port, shared=False)
    shared = bound(args.host, args.shared_port, shared=True)
    QuietServer(config(args)).run(sockets=[own, shared])


if __name__ == "__main__":
    main()
