"""The `fulfil` command line: configuration, output (`--json` or rich tables), progress bars
and exit codes. A client of the REST API through `fulfil_client`, nothing else.

Exit codes (stable, for scripts):

    0  done
    1  a check found problems (stock integrity, overview), or part of a batch was refused
    2  usage: a bad option or argument, refused here or by the API (400, 422), or missing
       configuration (no URL, no key)
    3  not found (404)
    4  conflict: the thing moved meanwhile or exists already (409, 412, 428)
    5  authentication or permission refused (401, 403)
    6  unavailable: no answer, 502, 503, 504 or 429 once the retries are spent
    7  any other error answer (500)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from fulfil_client import Client, RetryPolicy, __version__
from fulfil_client.errors import (
    AuthFailed,
    BadRequest,
    ConfigurationError,
    Conflict,
    FulfilError,
    NotFound,
    PreconditionRequired,
    ProblemError,
    RateLimited,
    Unavailable,
    ValidationFailed,
)

OK, CHECK_FAILED, USAGE, NOT_FOUND, CONFLICT, AUTH, UNAVAILABLE, FAILED = range(8)

EXIT_CODES_HELP = """\b
Exit codes:
  0  done
  1  a check found problems, or part of a batch was refused
  2  usage: bad option or argument (here, or 400/422 from the API), or missing configuration
  3  not found (404)
  4  conflict: it moved meanwhile or exists already (409, 412, 428)
  5  authentication or permission refused (401, 403)
  6  unavailable: no answer, 502/503/504, or 429 once retries are spent
  7  any other error answer (500)"""

ENV_HELP = """\b
Configuration (flags win over the environment):
  FULFIL_URL            the gateway, e.g. http://127.0.0.1:8000   (or --url)
  FULFIL_API_KEY        a tenant's API key: sales, webhooks        (or --api-key-file)
  FULFIL_ADMIN_TOKEN    the admin token: tenants, dead letters,    (or --admin-token-file)
                        stock integrity, overview
Secrets are never taken as arguments (they would show in `ps` and shell history): set the
environment variable, or name a file holding the secret."""

T = TypeVar("T")


@dataclass
class Settings:
    url: str | None = None
    api_key: str | None = None
    admin_token: str | None = None
    timeout: float = 30.0
    json: bool = False
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        if self._client is None:
            retry = RetryPolicy(max_total_seconds=self.timeout)
            self._client = Client(
                self.url,
                api_key=self.api_key,
                admin_token=self.admin_token,
                timeout=self.timeout,
                retry=retry,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def settings() -> Settings:
    return click.get_current_context().ensure_object(Settings)


def _read_secret(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from None


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.ensure_object(Settings).json = True
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_set_json,
    help="Print JSON (one document on stdout; errors as a problem on stderr) for scripts.",
)


def command(group: click.Group, name: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """A subcommand of `group` with `--json`, whose errors become exit codes."""

    def decorate(fn: Callable[..., Any]) -> Any:
        @wraps(fn)
        def run(*args: Any, **kw: Any) -> None:
            code = guarded(lambda: fn(*args, **kw))
            if code:
                sys.exit(code)

        return group.command(name, **kwargs)(json_option(run))

    return decorate


def guarded(action: Callable[[], int | None]) -> int:
    """Runs `action`; an error of the client becomes a message on stderr and its exit code."""
    try:
        return action() or OK
    except ProblemError as error:
        report_problem(error)
        return exit_code(error)
    except ConfigurationError as error:
        report_message(str(error))
        return USAGE
    except FulfilError as error:
        report_message(str(error))
        return FAILED


def exit_code(error: ProblemError) -> int:
    if isinstance(error, NotFound):
        return NOT_FOUND
    if isinstance(error, Conflict | PreconditionRequired) or error.status == 412:
        return CONFLICT
    if isinstance(error, AuthFailed):
        return AUTH
    if isinstance(error, Unavailable | RateLimited):
        return UNAVAILABLE
    if isinstance(error, ValidationFailed | BadRequest):
        return USAGE
    return FAILED


def report_problem(error: ProblemError) -> None:
    if settings().json:
        problem = {
            "status": error.status,
            "code": error.code,
            "title": error.title,
            "detail": error.detail,
            "errors": error.errors,
        }
        click.echo(json.dumps({"error": problem}), err=True)
        return
    report_message(str(error))


def report_message(message: str) -> None:
    if settings().json:
        click.echo(json.dumps({"error": {"detail": message}}), err=True)
    else:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


# --- output ----------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-ready: models dumped by their API names, datetimes as ISO 8601."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_json(value: Any) -> None:
    click.echo(json.dumps(plain(value), ensure_ascii=False))


def console() -> Console:
    """stdout; when it is not a terminal (a pipe, a file), tables are not folded to 80
    columns, so that `grep` finds whole ids."""
    width = None if sys.stdout.isatty() else 1000
    return Console(highlight=False, soft_wrap=False, width=width)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = Table(title=None if title is None else Text(title), title_justify="left")
    for name in columns:
        out.add_column(name, overflow="fold")
    for row in rows:
        out.add_row(*(Text("" if v is None else str(v)) for v in row))
    console().print(out)


def fields(title: str | None, values: Mapping[str, Any]) -> None:
    out = Table(
        title=None if title is None else Text(title), title_justify="left", show_header=False
    )
    out.add_column(style="bold")
    out.add_column(overflow="fold")
    for name, value in values.items():
        shown = json.dumps(plain(value)) if isinstance(value, dict | list) else value
        out.add_row(Text(name), Text("" if shown is None else str(shown)))
    console().print(out)


def say(message: str) -> None:
    if not settings().json:
        console().print(message)  # markup: escape what came from the platform


@contextmanager
def progress(what: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (a spinner when `total` is None), silent with `--json`
    or when stderr is not a terminal; yields `advance(n)`."""
    quiet = settings().json or not sys.stderr.isatty()
    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True, disable=quiet) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n: bar.advance(task, n)


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def when(text: str) -> datetime:
    """An ISO 8601 time with its offset (`2026-11-30T10:00:00Z`)."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise click.BadParameter(f"{text!r} has no UTC offset (add Z or +01:00)")
    return parsed


class Time(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            return when(value)
        except click.BadParameter as error:
            self.fail(error.message, param, ctx)


TIME = Time()


# --- the root group ----------------------------------------------------------------------------


@click.group(
    help="Operate the Fulfil platform through its REST API.\n\n"
    + ENV_HELP
    + "\n\n"
    + EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--url", envvar="FULFIL_URL", help="The gateway's base URL [env: FULFIL_URL].")
@click.option(
    "--api-key-file",
    type=click.Path(dir_okay=False),
    help="A file holding the tenant's API key (instead of FULFIL_API_KEY).",
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False),
    help="A file holding the admin token (instead of FULFIL_ADMIN_TOKEN).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    envvar="FULFIL_TIMEOUT",
    help="Seconds for a call, retries included; then exit 6 [env: FULFIL_TIMEOUT].",
)
@json_option
@click.version_option(__version__, prog_name="fulfil", message="%(prog)s %(version)s")
@click.pass_context
def cli(
    ctx: click.Context,
    url: str | None,
    api_key_file: str | None,
    admin_token_file: str | None,
    timeout: float,
) -> None:
    found = ctx.ensure_object(Settings)
    found.url = url
    found.api_key = _read_secret(api_key_file)
    found.admin_token = _read_secret(admin_token_file)
    found.timeout = timeout
    ctx.call_on_close(found.close)
