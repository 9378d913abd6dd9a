"""redis-server processes that the fault suite and the benches start on loopback: one that can be
SIGKILLed and started again on its AOF, and a Sentinel group (master, replica, three Sentinels)
that promotes the replica when the master dies. `nst up` needs neither.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Protocol

import redis
from redis.sentinel import Sentinel

from cli.stack import free_port, redis_server_binary, start_redis, stop_all, wait_until


class RedisDeployment(Protocol):
    """What a stack needs to know of its Redis: the settings that reach it and a client."""

    url: str  # NST_REDIS_URL; empty when Sentinels name the master

    def env(self) -> dict[str, str]: ...

    def client(self) -> redis.Redis: ...


class RedisServer:
    """A redis-server with AOF (`appendfsync everysec`) in its own directory, on a fixed port,
    so that it can be SIGKILLed and started again on the same data, as a crashed host would."""

    def __init__(self, data_dir: Path, *, replica_of: RedisServer | None = None) -> None:
        self.dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.replica_of = replica_of
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        """Start (or restart) the server and wait until it answers PING with its data loaded
        (a replica: until it is in sync with its master)."""
        extra = ("--replicaof", "127.0.0.1", str(self.replica_of.port)) if self.replica_of else ()
        self.proc, url = start_redis(self.dir, self.port, *extra)
        assert url == self.url
        if self.replica_of:
            wait_until(lambda: self.info()["master_link_status"] == "up", 20, self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL: no shutdown save, no AOF rewrite; what was written to the AOF survives."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (SIGKILL if it hangs)."""
        if self.proc is not None:
            stop_all([self.proc], 10)

    def env(self) -> dict[str, str]:
        """Settings besides NST_REDIS_URL: none."""
        return {}

    def client(self) -> redis.Redis:
        """A client of this server (decoded replies, short connect timeout)."""
        return redis.Redis.from_url(self.url, decode_responses=True, socket_connect_timeout=1)

    def info(self, section: str = "replication") -> dict:
        """INFO of one section."""
        return self.client().info(section)


class SentinelGroup:
    """A master and a replica (AOF each) watched by Sentinels on loopback (three, quorum 2): when
    the master dies they promote the replica, and clients that ask them find the new master."""

    url = ""  # clients ask the Sentinels for the master

    def __init__(self, root: Path, *, name: str = "nst", sentinels: int = 3, quorum: int = 2,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.root, self.name, self.quorum = root, name, quorum
        self.down_after_ms, self.failover_timeout_ms = down_after_ms, failover_timeout_ms
        self.master = RedisServer(root / "master")
        self.replica = RedisServer(root / "replica", replica_of=self.master)
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.sentinels: list[subprocess.Popen] = []

    def start(self) -> SentinelGroup:
        """Master, replica (in sync), then the Sentinels; returns once they all watch both."""
        self.master.start()
        self.replica.start()
        for i, port in enumerate(self.sentinel_ports):
            self.sentinels.append(self._start_sentinel(self.root / f"sentinel-{i}", port))
        # Each Sentinel finds the replica in the master's INFO and the others through hello
        # messages (every 2 s); a failover before that has no candidate or no majority.
        wait_until(self._watching, 30)
        return self

    def _start_sentinel(self, folder: Path, port: int) -> subprocess.Popen:
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "sentinel.conf"  # a Sentinel rewrites its config file: one each
        conf.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", f"dir {folder.resolve()}",
            f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} {self.quorum}",
            f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
            f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {self.name} 1", ""]))
        proc = subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                stdout=(folder / "sentinel.log").open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: redis.Redis(port=port, socket_connect_timeout=0.5).ping(), 20, proc)
        return proc

    def _sentinel(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_connect_timeout=0.5,
                           socket_timeout=2)

    def _watching(self) -> bool:
        for port in self.sentinel_ports:
            s = self._sentinel(port)
            if len(s.sentinel_slaves(self.name)) < 1:
                return False
            if len(s.sentinel_sentinels(self.name)) < len(self.sentinel_ports) - 1:
                return False
        return True

    def env(self) -> dict[str, str]:
        """The settings that make API and workers find the master through the Sentinels."""
        return {"NST_REDIS_URL": "",
                "NST_REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports),
                "NST_REDIS_MASTER_NAME": self.name}

    def client(self) -> redis.Redis:
        """A client of whichever server the Sentinels name master now."""
        sentinel = Sentinel([("127.0.0.1", p) for p in self.sentinel_ports],
                            socket_connect_timeout=0.5, socket_timeout=2)
        return sentinel.master_for(self.name, decode_responses=True, socket_connect_timeout=1,
                                   socket_timeout=5)

    def master_port(self) -> int:
        """The master's port as the first Sentinel that answers names it."""
        for port in self.sentinel_ports:
            try:
                return int(self._sentinel(port).sentinel_get_master_addr_by_name(self.name)[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answered")

    def kill_master(self) -> RedisServer:
        """SIGKILL the master; returns it (its AOF dir holds what it had acknowledged)."""
        self.master.kill()
        return self.master

    def wait_failover(self, timeout: float = 30) -> None:
        """Wait until the Sentinels name the replica master and it acts as one. The dead master
        stays out of the group (it is not started again)."""
        def promoted() -> bool:
            return (self.master_port() == self.replica.port
                    and self.replica.info()["role"] == "master")

        try:
            wait_until(promoted, timeout)
        except TimeoutError:
            raise TimeoutError(f"no failover in {timeout} s:\n{self.dump_logs()}") from None
        self.master, self.replica = self.replica, self.master

    def dump_logs(self) -> str:
        """The tail of every Sentinel's log, for failure reports."""
        return "\n".join(
            f"--- sentinel {i}\n" + "\n".join(
                (self.root / f"sentinel-{i}" / "sentinel.log").read_text(errors="replace")
                .splitlines()[-30:]) for i in range(len(self.sentinels)))

    def stop(self) -> None:
        """Sentinels first (so they start no failover), then both servers."""
        stop_all(self.sentinels, 10)
        self.replica.stop()
        self.master.stop()
