"""The `nst` command: stylize (engine only), api, worker, webhooks, up (whole stack), submit."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nst_core.cli import OUTPUT_FORMATS  # no torch: the engine loads inside its main()
from service.settings import get_settings, is_loopback

log = logging.getLogger("nst.cli")


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API with uvicorn."""
    import redis

    from api.server import serve
    from service import connections
    from service.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    host = args.host or settings.host
    try:
        settings.check_api_auth(host)
        connections.check_shared_store()  # uploads must land where the workers read them
    except redis.RedisError:  # the API starts anyway and answers 503 until Redis is back
        log.warning("Redis unreachable: the shared result store was not checked", exc_info=True)
    except (ValueError, connections.StoreMismatch) as e:
        print(f"nst api: {e}", file=sys.stderr)
        return 2
    serve(settings, host, args.port or settings.port)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker on the service queue (prefork: the model loads in each child)."""
    from service.logs import configure_logging
    from worker.celery_app import app

    settings = get_settings()
    configure_logging(settings.log_level)
    app.worker_main([
        "worker", "--pool=prefork", f"--concurrency={args.concurrency}", "-Q", settings.queue,
        f"--loglevel={settings.log_level}", "-n", f"nst-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip", "--without-mingle",
    ])
    return 0


def cmd_webhooks(args: argparse.Namespace) -> int:
    """Deliver webhooks: a light Celery worker (threads, no torch) on NST_WEBHOOK_QUEUE."""
    from service.logs import configure_logging
    from webhooks.app import app

    settings = get_settings()
    configure_logging(settings.log_level)
    app.worker_main([
        "worker", "--pool=threads", f"--concurrency={args.concurrency}",
        "-Q", settings.webhook_queue, f"--loglevel={settings.log_level}",
        "-n", f"nst-webhooks-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip", "--without-mingle",
    ])
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Redis, the API and N workers as one process tree."""
    from cli.stack import run_stack
    from service.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    if not settings.tenant_by_key() and not settings.open_mode and is_loopback(args.host):
        # The local stack on loopback is for trying things out: without keys, open mode is chosen.
        os.environ["NST_OPEN_MODE"] = "true"
        log.warning("no NST_API_KEYS: nst up serves in open mode on %s", args.host)
    return run_stack(args.host, args.port, args.workers, settings.redis_url, settings.data_dir)


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(args.params) if args.params else {}
    for name in ("size", "preset", "seed"):
        if getattr(args, name) is not None:
            params[name] = getattr(args, name)
    return params


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit a job over HTTP; with --wait show progress and save the result."""
    from client import NstApiError, NstClient

    with NstClient(args.server, args.api_key) as client:
        try:
            job = client.submit(args.content, args.styles, _params(args))
            if not args.wait:
                print(json.dumps(job, indent=2))
                return 0
            job = _wait_with_bar(client, job["id"])
            if job["status"] != "succeeded":
                print(f"job {job['id']} {job['status']}: {job.get('error')}", file=sys.stderr)
                return 1
            out = Path(args.output or f"{job['id']}.png")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(client.result(job["id"], format=_format_of(out)))
        except NstApiError as e:
            print(f"nst submit: {e}", file=sys.stderr)
            return 1
    print(f"saved {out} (job {job['id']}, {job['run_seconds']} s)")
    return 0


def _format_of(path: Path) -> str:
    return OUTPUT_FORMATS.get(path.suffix.lower(), "png")


def _wait_with_bar(client: Any, job_id: str) -> dict[str, Any]:
    from tqdm import tqdm

    with tqdm(total=100, unit="%", desc="queued", bar_format="{l_bar}{bar}| {n:.0f}% {postfix}"
              ) as bar:

        def update(view: dict[str, Any]) -> None:
            p = view.get("progress") or {}
            if p:
                bar.set_description(f"{view['status']} scale {p['scale']}/{p['scales']}")
                bar.set_postfix_str(f"eta {p['eta_seconds'] or 0:.0f}s")
            else:
                bar.set_description(view["status"])
            percent = 100.0 if view["status"] == "succeeded" else p.get("percent", 0.0)
            bar.update(percent - bar.n)

        return client.wait(job_id, poll=0.5, on_update=update)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `nst`."""
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stylize", help="stylize locally with the engine (see `nst stylize -h`)")

    api = sub.add_parser("api", help="serve the HTTP API")
    api.add_argument("--host", default=None, help="default NST_HOST (127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="default NST_PORT (8000)")
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--concurrency", type=int, default=1, help="pool processes (one per GPU)")
    worker.set_defaults(func=cmd_worker)

    webhooks = sub.add_parser("webhooks", help="deliver webhooks (no torch; not on GPU hosts)")
    webhooks.add_argument("--concurrency", type=int, default=8, help="deliveries at once")
    webhooks.set_defaults(func=cmd_webhooks)

    up = sub.add_parser("up", help="run Redis (embedded unless NST_REDIS_URL), API and workers")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--workers", type=int, default=1)
    up.set_defaults(func=cmd_up)

    submit = sub.add_parser("submit", help="submit a job to a running service")
    submit.add_argument("content", help="content image file")
    submit.add_argument("styles", nargs="+", metavar="style", help="style image file(s)")
    submit.add_argument("--server", default="http://127.0.0.1:8000")
    submit.add_argument("--api-key", help="sent as Authorization: Bearer")
    submit.add_argument("--params", help="StyleParams as JSON, e.g. '{\"size\": 256}'")
    submit.add_argument("--size", type=int)
    submit.add_argument("--preset", choices=["fast", "balanced", "high"])
    submit.add_argument("--seed", type=int)
    submit.add_argument("--wait", action="store_true", help="show progress and save the result")
    submit.add_argument("-o", "--output", help="result file (.png, .jpg, .webp)")
    submit.set_defaults(func=cmd_submit)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nst` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stylize"]:
        from nst_core.cli import main as stylize_main  # torch: only this subcommand needs it

        return stylize_main(argv[1:]) or 0
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as e:  # a bad NST_ setting: one clear message, not a traceback
        print(f"nst {args.command}: invalid configuration: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
