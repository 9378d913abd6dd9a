"""The `nst` command: stylize (engine only), api, worker, webhooks, up (whole stack) and the job
commands submit, status, result, cancel, list (cli/jobs.py)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from pydantic import ValidationError

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
    serve(settings, host, args.port or settings.port, args.workers)
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
    return run_stack(args.host, args.port, args.workers,
                     bool(settings.redis_url or settings.sentinels()), settings.data_dir)


def build_parser() -> argparse.ArgumentParser:
    """The argparse tree of `nst`."""
    from cli.jobs import add_job_parsers  # the SDK and httpx: `nst stylize` starts without them

    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(prog="nst", description="Neural style transfer service.",
                                     formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("stylize", help="stylize locally with the engine (see `nst stylize -h`)")

    api = sub.add_parser("api", help="serve the HTTP API", formatter_class=fmt)
    api.add_argument("--host", default=None, help="listen address; None: NST_HOST (127.0.0.1)")
    api.add_argument("--port", type=int, default=None, help="listen port; None: NST_PORT (8000)")
    api.add_argument("--workers", type=int, default=1,
                     help="uvicorn worker processes (all state is in Redis, so any number serves)")
    api.set_defaults(func=cmd_api)

    worker = sub.add_parser("worker", help="run a Celery worker", formatter_class=fmt)
    worker.add_argument("--concurrency", type=int, default=1, help="pool processes (one per GPU)")
    worker.set_defaults(func=cmd_worker)

    webhooks = sub.add_parser("webhooks", help="deliver webhooks (no torch; not on GPU hosts)",
                              formatter_class=fmt)
    webhooks.add_argument("--concurrency", type=int, default=8, help="deliveries at once")
    webhooks.set_defaults(func=cmd_webhooks)

    up = sub.add_parser("up", help="run Redis (embedded unless NST_REDIS_URL), API and workers",
                        formatter_class=fmt)
    up.add_argument("--host", default="127.0.0.1", help="API listen address")
    up.add_argument("--port", type=int, default=8000, help="API listen port")
    up.add_argument("--workers", type=int, default=1, help="worker processes to start")
    up.set_defaults(func=cmd_up)

    add_job_parsers(sub, fmt)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `nst` console script."""
    in_process = argv is not None
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["stylize"]:
        from nst_core.cli import exit_process  # torch: only this subcommand needs it
        from nst_core.cli import main as stylize_main

        code = stylize_main(argv[1:]) or 0
        return code if in_process else exit_process(code)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as e:  # a bad NST_ setting: one clear message, not a traceback
        print(f"nst {args.command}: invalid configuration: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
