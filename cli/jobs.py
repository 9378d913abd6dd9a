"""`nst submit/status/result/cancel/list`: the job API over HTTP, through the SDK.

Every failure (connection, 4xx, 5xx, unreadable file) is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

from api.schemas import JobView
from client import DEFAULT_WAIT_TIMEOUT, NstClient, NstError, NstWaitTimeout
from nst_core.cli import OUTPUT_FORMATS  # no torch: the engine loads inside its main()
from service.contract import JobStatus

DEFAULT_SERVER = "http://127.0.0.1:8000"
EXIT_INTERRUPTED = 130  # the shell's code for a SIGINT death
Command = Callable[[NstClient, argparse.Namespace], int]


class CliError(Exception):
    """A user-facing failure: its text is the whole stderr line."""


def run_remote(command: Command) -> Callable[[argparse.Namespace], int]:
    """Wrap a job command: open the client, turn every expected failure into one stderr line."""

    def func(args: argparse.Namespace) -> int:
        try:
            with NstClient(args.server, args.api_key) as client:
                return command(client, args)
        except (NstError, OSError, CliError) as e:  # NstError: HTTP, transport, timeout
            message = str(e)
        # A proxy's HTML error page or a multi-line message must still be one line.
        print(f"nst {args.command}: {' '.join(message.split())}", file=sys.stderr)
        return 1

    return func


def _params(args: argparse.Namespace) -> dict[str, Any]:
    try:
        params: dict[str, Any] = json.loads(args.params) if args.params else {}
    except json.JSONDecodeError as e:
        raise CliError(f"--params is not JSON: {e}") from None
    for name in ("size", "preset", "seed"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return params


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from None


def cmd_submit(client: NstClient, args: argparse.Namespace) -> int:
    """Submit a job; with --wait show progress and save the result."""
    job = client.submit(_read(args.content), [_read(s) for s in args.styles], _params(args))
    print(job.id, flush=True)  # first, so an interrupted wait can still be resumed
    if not args.wait:
        return 0
    out = args.output or f"{job.id}.png"
    try:
        job = _wait_with_bar(client, job.id, args.timeout)
    except KeyboardInterrupt:
        return _interrupted(client, job.id, out)
    except NstWaitTimeout as e:
        raise CliError(f"{e}; it goes on: nst status {job.id}") from None
    if job.status != JobStatus.SUCCEEDED:
        raise CliError(f"job {job.id} {job.status}: {job.error.message if job.error else ''}")
    saved = _save(client, job.id, out)
    print(f"saved {saved} (job {job.id}, {job.run_seconds} s)")
    return 0


def _interrupted(client: NstClient, job_id: str, out: str) -> int:
    """Ctrl-C during --wait: say how to resume or cancel; on a terminal, offer to cancel."""
    print(f"\nstopped waiting; job {job_id} goes on.\n"
          f"  resume: nst status {job_id}   then: nst result {job_id} -o {out}\n"
          f"  cancel: nst cancel {job_id}", file=sys.stderr, flush=True)
    if sys.stdin.isatty() and _confirm("Cancel the job? [y/N] "):
        view = client.cancel(job_id)
        print(f"{job_id} {_cancel_state(view)}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except (EOFError, KeyboardInterrupt):  # a second Ctrl-C or a closed stdin means no
        return False


class _JobBar(tqdm):
    """A tqdm bar with an `{eta}` field the bar format can place (postfix adds a comma)."""

    eta = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        """tqdm's fields plus the job's own ETA."""
        return {**super().format_dict, "eta": self.eta}


def stage_of(view: JobView) -> str:
    """What the job is doing, in words: queued (position n), style targets, painting scale i/n,
    done."""
    p = view.progress
    if view.status == JobStatus.SUCCEEDED or (p and p.stage == "done"):
        return "done"
    if view.status == JobStatus.QUEUED and view.queue_position:
        return f"queued (position {view.queue_position})"
    if view.status != JobStatus.RUNNING:
        return view.status
    if p and p.stage == "optimize":
        return f"painting scale {p.scale}/{p.scales}"
    return "style targets" if p else "starting"


def _eta(view: JobView) -> str:
    eta = view.progress.eta_seconds if view.progress else None
    return "" if eta is None or view.status != JobStatus.RUNNING else f"ETA {eta:.0f} s"


def _percent(view: JobView) -> float:
    if view.status == JobStatus.SUCCEEDED:
        return 100.0
    return view.progress.percent if view.progress else 0.0


def _wait_with_bar(client: NstClient, job_id: str, timeout: float | None) -> JobView:
    # The stage column is as wide as "queued (position 1000)", so the bar does not jump.
    with _JobBar(total=100, desc="queued", bar_format="{desc:<22} {percentage:3.0f}%|{bar}| {eta}"
                 ) as bar:

        def update(view: JobView) -> None:
            bar.set_description_str(stage_of(view), refresh=False)
            bar.eta, bar.n = _eta(view), _percent(view)
            bar.refresh()  # every poll: update() skips redraws within its mininterval

        return client.wait(job_id, poll=0.5, timeout=timeout, on_update=update)


def _save(client: NstClient, job_id: str, output: str) -> Path:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(client.result(job_id, format=OUTPUT_FORMATS.get(out.suffix.lower(), "png")))
    return out


def _summary(view: JobView) -> str:
    """The job view for people: status, queue position or stage, percent and ETA, timings,
    error."""
    lines = [f"job      {view.id}", f"status   {view.status}"]
    if view.queue_position:
        lines.append(f"queue    position {view.queue_position} (1: next to run)")
    if view.status == JobStatus.RUNNING:
        lines.append(f"stage    {stage_of(view)}  {_percent(view):.0f}%  {_eta(view)}".rstrip())
    lines.append(f"created  {view.created_at.isoformat()}")
    if view.run_seconds is not None:
        lines.append(f"ran      {view.run_seconds} s")
    if view.error:
        lines.append(f"error    {view.error.code}: {view.error.message}")
    return "\n".join(lines)


def _json(views: JobView | list[JobView]) -> str:
    """The views as the API sent them."""
    data = [v.model_dump(mode="json") for v in views] if isinstance(views, list) else \
        views.model_dump(mode="json")
    return json.dumps(data, indent=2)


def cmd_status(client: NstClient, args: argparse.Namespace) -> int:
    """Print the job's view: a summary, or the raw JSON."""
    view = client.get(args.job_id)
    print(_json(view) if args.json else _summary(view))
    return 0


def cmd_result(client: NstClient, args: argparse.Namespace) -> int:
    """Download the result (409 until the job succeeded)."""
    print(f"saved {_save(client, args.job_id, args.output or f'{args.job_id}.png')}")
    return 0


def _cancel_state(view: JobView) -> str:
    if view.status == JobStatus.RUNNING:
        return "cancel requested (stops within an iteration)"
    return view.status


def cmd_cancel(client: NstClient, args: argparse.Namespace) -> int:
    """Cancel the job; a finished job stays as it is."""
    print(f"{args.job_id} {_cancel_state(client.cancel(args.job_id))}")
    return 0


def cmd_list(client: NstClient, args: argparse.Namespace) -> int:
    """Print the tenant's jobs, newest first: id, status, stage and percent, created."""
    jobs = client.list(status=args.status, limit=args.limit).jobs
    if args.json:
        print(_json(jobs))
    for view in [] if args.json else jobs:
        print(f"{view.id}  {view.status:<9}  {stage_of(view):<22} {_percent(view):3.0f}%  "
              f"{view.created_at.isoformat()}")
    return 0


def _connection_flags() -> argparse.ArgumentParser:
    """--server and --key, shared by every job subcommand."""
    flags = argparse.ArgumentParser(add_help=False)
    flags.add_argument("--server", default=os.environ.get("NST_SERVER", DEFAULT_SERVER),
                       help="API base URL; env NST_SERVER")
    # `%(default).0s` prints nothing: it keeps the formatter from showing the key itself.
    flags.add_argument("--key", "--api-key", dest="api_key", default=os.environ.get("NST_API_KEY"),
                       help="API key, sent as Authorization: Bearer (default: env NST_API_KEY)"
                            "%(default).0s")
    return flags


def add_job_parsers(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Add submit, status, result, cancel and list to the `nst` subparsers."""
    common = [_connection_flags()]

    def add(name: str, command: Command, text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=text, description=text, parents=common,
                                formatter_class=formatter)
        parser.set_defaults(func=run_remote(command))
        return parser

    submit = add("submit", cmd_submit, "submit a job to a running service; prints its id")
    submit.add_argument("content", help="content image file")
    submit.add_argument("styles", nargs="+", metavar="style", help="style image file(s)")
    submit.add_argument("--params", help="StyleParams as JSON, e.g. '{\"size\": 256}'; "
                                          "--size, --preset, --seed override it")
    submit.add_argument("--size", type=int, help="longest side in pixels; None: the server's default")
    submit.add_argument("--preset", choices=["fast", "balanced", "high"],
                        help="time-quality preset; None: the server's default")
    submit.add_argument("--seed", type=int, help="random seed; None: the server's default")
    submit.add_argument("--wait", action="store_true", help="show progress and save the result")
    submit.add_argument("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT,
                        help="with --wait: give up waiting after this many seconds (the job goes "
                             "on)")
    submit.add_argument("-o", "--output", help="result file with --wait (.png, .jpg, .webp); None: ID.png")

    status = add("status", cmd_status, "show a job's status and progress")
    status.add_argument("job_id", metavar="ID", help="job id")
    status.add_argument("--json", action="store_true", help="print the raw job view")

    result = add("result", cmd_result, "download a succeeded job's result")
    result.add_argument("job_id", metavar="ID", help="job id")
    result.add_argument("-o", "--output", help="result file (.png, .jpg, .webp); None: ID.png")

    cancel = add("cancel", cmd_cancel, "cancel a job")
    cancel.add_argument("job_id", metavar="ID", help="job id")

    jobs = add("list", cmd_list, "list your jobs, newest first")
    jobs.add_argument("--status", choices=[s.value for s in JobStatus], help="only this status")
    jobs.add_argument("--limit", type=int, default=20, help="at most this many jobs")
    jobs.add_argument("--json", action="store_true", help="print the raw job views")
