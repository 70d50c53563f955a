"""The world pyCSM talks to: a simulated DS8000 (`zgate ds8k`), an emulated z/OS
system with a password user (`zgate peer zos`), and `zgate serve` with its CSM REST
API on a free loopback port with a throwaway TLS certificate. Each process is the
real binary; nothing is mocked. Users are made with `zgate csm user-add` over the
binary CSM protocol, as an administrator would.
"""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERIAL = "75FA120"
HMC_PASSWORD = "HMCPASS1"
HOST_PASSWORD = "HOSTPW1"
ADMIN_PASSWORD = "Adm1n-pass-phrase"
USERS = {
    # name: (role, password, sessions, actions)
    "approver": ("Administrator", "Appr0ver-pass", None, None),
    "operator": ("Operator", "0perator-pass", "SGC1", "Backup,Recover Backup,Refresh States"),
}
# Tokens live this long, so that the renewal test waits little (rest.md §1).
TOKEN_LIFETIME_SECS = 4


def zgate_binary():
    """The binary `cargo test` (or `cargo build`) made; ZGATE_BIN overrides."""
    if os.environ.get("ZGATE_BIN"):
        return os.environ["ZGATE_BIN"]
    for profile in ("debug", "release"):
        candidate = ROOT / "target" / profile / "zgate"
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("no zgate binary: run cargo build first")


def vol(v):
    return f"DS8000:2107.{SERIAL}:VOL:{v:04X}"


class Proc:
    """A child process whose stdout is read line by line in the background."""

    def __init__(self, args, env, name):
        self.name = name
        self.lines = []
        self.p = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern, timeout=30):
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while time.time() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.p.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{self.name}: no line matching {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def cheap_hash(binary, password):
    env = dict(os.environ, PW=password)
    out = subprocess.run(
        [binary, "passwd", "--password-env", "PW", "--memory-kib", "256", "--passes", "1"],
        env=env, check=True, capture_output=True, text=True,
    )
    return out.stdout.strip()


class World:
    def __init__(self, copy_tracks_per_sec=5000, token_lifetime_secs=TOKEN_LIFETIME_SECS):
        self.binary = zgate_binary()
        self.dir = tempfile.TemporaryDirectory(prefix="zgate-pycsm-")
        d = Path(self.dir.name)
        env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1")
        env.pop("ZGATE_ADMIN_PASSWORD", None)
        self.procs = []

        (d / "ds8k.toml").write_text(f'''listen = "127.0.0.1:0"
image = "IBM.2107-{SERIAL}"
hmc = "HMC1"
tick_ms = 100
[limits]
allow_plaintext_passwords = true
[storage]
copy_tracks_per_sec = {copy_tracks_per_sec}
[[volumes]]
ids = "3000-3007"
ckd_cylinders = 100
safeguarded_percent = 50
[[volumes]]
ids = "3100-3107"
ckd_cylinders = 100
[[volumes]]
ids = "3200-3207"
ckd_cylinders = 100
[[users]]
user = "CSMADMIN"
password_hash = "{cheap_hash(self.binary, HMC_PASSWORD)}"
''')
        self.ds8k = self.start([self.binary, "ds8k", "--config", str(d / "ds8k.toml")], env, "ds8k")
        self.ds8k_port = int(self.ds8k.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))

        (d / "zos.toml").write_text(f'''listen = "127.0.0.1:0"
sysplex = "PLEX1"
system = "SYSA"
[limits]
allow_plaintext_passwords = true
[[users]]
user = "HOSTUSR"
password_hash = "{cheap_hash(self.binary, HOST_PASSWORD)}"
permits = ["FLASH", "SGC_BACKUP"]
[storage]
addr = "127.0.0.1:{self.ds8k_port}"
image = "IBM.2107-{SERIAL}"
user = "CSMADMIN"
password_env = "HMC_PW"
''')
        zenv = dict(env, HMC_PW=HMC_PASSWORD)
        self.zos = self.start([self.binary, "peer", "zos", "--config", str(d / "zos.toml")], zenv, "zos")
        self.zos_port = int(self.zos.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))

        (d / "zgate.toml").write_text(f'''[csm]
listen = "127.0.0.1:0"
[rest]
listen = "127.0.0.1:0"
token_lifetime_secs = {token_lifetime_secs}
[ha]
listen = "127.0.0.1:0"
[store]
dir = "{d / 'data'}"
[policy]
copy_poll_secs = 1
''')
        senv = dict(env, ZGATE_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.serve = self.start([self.binary, "serve", "--config", str(d / "zgate.toml")], senv, "serve")
        self.csm_addr = self.serve.wait_for(r"CSM protocol on (127\.0\.0\.1:\d+)").group(1)
        self.rest_port = int(self.serve.wait_for(r"REST API on https://127\.0\.0\.1:(\d+)/CSM/web").group(1))
        self.ca = str(d / "data" / "csm-ca.pem")
        for name, (role, password, sessions, actions) in USERS.items():
            self.csm(["user-add", "--role", role, name]
                     + (["--sessions", sessions] if sessions else [])
                     + (["--actions", actions] if actions else []),
                     extra_env={"ZGATE_NEW_PASSWORD": password})

    def start(self, args, env, name):
        p = Proc(args, env, name)
        self.procs.append(p)
        return p

    def csm(self, args, extra_env=None):
        """`zgate csm …` as admin; returns the completed process."""
        env = dict(os.environ, ZGATE_CSM_PASSWORD=ADMIN_PASSWORD, **(extra_env or {}))
        return subprocess.run(
            [self.binary, "csm", "--addr", self.csm_addr, "--ca", self.ca] + args,
            env=env, check=True, capture_output=True, text=True, timeout=60,
        )

    @property
    def base_url(self):
        return f"https://127.0.0.1:{self.rest_port}/CSM/web"

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def world():
    w = World()
    try:
        yield w
    finally:
        w.close()


@pytest.fixture(scope="session")
def clients(world):
    """pyCSM's own clients, as admin, operator and approver."""
    from pyCSM.clients.hardware_client import hardwareClient
    from pyCSM.clients.session_client import sessionClient
    from pyCSM.clients.system_client import systemClient

    host, port = "127.0.0.1", str(world.rest_port)
    out = {}
    for user, password in [("admin", ADMIN_PASSWORD)] + [(u, v[1]) for u, v in USERS.items()]:
        out[user] = {
            "session": sessionClient(host, port, user, password),
            "system": systemClient(host, port, user, password),
            "hardware": hardwareClient(host, port, user, password),
        }
    return out


@pytest.fixture(scope="session")
def storage(world, clients):
    """The DS8000 and the z/OS host, added through pyCSM's hardwareClient."""
    hw = clients["admin"]["hardware"]
    r = hw.add_device("ds8000", "127.0.0.1", "CSMADMIN", HMC_PASSWORD, device_port=str(world.ds8k_port))
    assert r.json()["msg"].endswith("I"), r.text
    r = hw.add_zos_host("127.0.0.1", HOST_PASSWORD, "HOSTUSR", str(world.zos_port))
    assert r.json()["msg"].endswith("I"), r.text
    return world


HA_KEY = "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"


class Pair:
    """An active/standby pair (protocol-specs/ha.md): a simulated DS8000 and two
    `zgate serve` processes with their own stores, the same sealing key, REST and
    HA listeners on free loopback ports. Not yet paired: the test pairs them."""

    def __init__(self):
        self.binary = zgate_binary()
        self.dir = tempfile.TemporaryDirectory(prefix="zgate-pycsm-ha-")
        d = Path(self.dir.name)
        env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1", ZGATE_HA_KEY=HA_KEY)
        env.pop("ZGATE_ADMIN_PASSWORD", None)
        self.procs = []
        (d / "ds8k.toml").write_text(f'''listen = "127.0.0.1:0"
image = "IBM.2107-{SERIAL}"
hmc = "HMC1"
tick_ms = 100
[limits]
allow_plaintext_passwords = true
[storage]
copy_tracks_per_sec = 50000
[[volumes]]
ids = "3000-3003"
ckd_cylinders = 100
[[volumes]]
ids = "3100-3103"
ckd_cylinders = 100
[[users]]
user = "CSMADMIN"
password_hash = "{cheap_hash(self.binary, HMC_PASSWORD)}"
''')
        self.ds8k = self.start([self.binary, "ds8k", "--config", str(d / "ds8k.toml")], env, "ds8k")
        self.ds8k_port = int(self.ds8k.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        self.servers = {}
        for name in ("a", "b"):
            (d / name).mkdir()
            (d / name / "zgate.toml").write_text(f'''[csm]
listen = "127.0.0.1:0"
[rest]
listen = "127.0.0.1:0"
[ha]
listen = "127.0.0.1:0"
heartbeat_ms = 200
dead_after_ms = 3000
[store]
dir = "{d / name / 'data'}"
key_env = "ZGATE_HA_KEY"
[policy]
copy_poll_secs = 1
''')
            senv = dict(env, ZGATE_ADMIN_PASSWORD=ADMIN_PASSWORD)
            p = self.start([self.binary, "serve", "--config", str(d / name / "zgate.toml")], senv, "serve-" + name)
            rest = int(p.wait_for(r"REST API on https://127\.0\.0\.1:(\d+)/CSM/web").group(1))
            ha = p.wait_for(r"HA \(active/standby\) on (127\.0\.0\.1:\d+)").group(1)
            self.servers[name] = {"rest": str(rest), "ha": ha}

    def start(self, args, env, name):
        p = Proc(args, env, name)
        self.procs.append(p)
        return p

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        self.dir.cleanup()


@pytest.fixture(scope="module")
def pair():
    p = Pair()
    try:
        yield p
    finally:
        p.close()
