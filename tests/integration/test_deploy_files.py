"""docker-compose.yml and the Dockerfiles cannot run here: check they parse and match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cli.main import build_parser
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_ENV = {f"NST_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_profiles(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"redis", "api", "worker", "webhooks", "flower", "proxy"}
    assert services["flower"]["profiles"] == ["monitoring"]
    for name in ("redis", "api", "worker", "webhooks"):
        assert "test" in services[name]["healthcheck"], name


def test_flower_reads_task_states_and_serves_its_api_on_loopback_only(compose: dict) -> None:
    flower = compose["services"]["flower"]
    assert flower["environment"]["FLOWER_UNAUTHENTICATED_API"] == "true"  # Flower 2.x's API
    assert flower["ports"] and all(p.startswith("127.0.0.1:") for p in flower["ports"])
    assert "--result-backend=redis://redis:6379/0" in flower["command"]


def test_redis_keeps_jobs(compose: dict) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_every_nst_variable_is_a_setting(compose: dict) -> None:
    for name in ("api", "worker"):
        env = compose["services"][name]["environment"]
        names = {k for k in env if k.startswith("NST_")}
        assert names <= SETTINGS_ENV, names - SETTINGS_ENV
        assert {"NST_REDIS_URL", "NST_API_KEYS", "NST_DATA_DIR", "NST_STORAGE"} <= names


def test_commands_are_real_nst_subcommands(compose: dict) -> None:
    parser = build_parser()
    for name, sub in (("api", "api"), ("worker", "worker")):
        command = compose["services"][name]["command"]
        assert command[0] == "nst" and command[1] == sub
        args = parser.parse_args(command[1:])  # exits (SystemExit) on an unknown option
        assert args.command == sub


def test_worker_is_scalable_with_a_gpu_and_shares_results(compose: dict) -> None:
    worker, api = compose["services"]["worker"], compose["services"]["api"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    data_dir = worker["environment"]["NST_DATA_DIR"]
    assert f"results:{data_dir}" in worker["volumes"] and f"results:{data_dir}" in api["volumes"]
    assert "results" in compose["volumes"]


def test_dockerfiles() -> None:
    api = (ROOT / "Dockerfile.api").read_text()
    worker = (ROOT / "Dockerfile.worker").read_text()
    assert "torch" not in re.sub(r"#.*|'torch' not in|api imports torch", "", api)
    assert "pip install ." in api and "[worker]" not in api
    assert re.search(r"^FROM nvidia/cuda:\S+-runtime", worker, re.M)
    assert "pip install '.[worker]'" in worker
    assert "Stylizer(weights='original'" in worker  # the weights are loaded at build time
    for text in (api, worker):
        cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
        assert cmd is not None
        build_parser().parse_args(yaml.safe_load(cmd.group(1))[1:])


def test_the_api_is_published_through_the_proxy_only(compose: dict) -> None:
    """Issue 11 #7: slow senders and idle sockets are nginx's to cut, with timeouts set."""
    services = compose["services"]
    assert "ports" not in services["api"] and services["proxy"]["ports"]
    conf = (ROOT / "deploy/nginx.conf").read_text()
    for directive in ("client_header_timeout", "client_body_timeout", "client_max_body_size",
                      "limit_conn", "keepalive_timeout"):
        assert f"{directive} " in conf, directive
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in services["proxy"]["volumes"]
