"""IBM's pyCSM 1.0.12, unchanged, driving a Metro Mirror Failover/Failback session with
HyperSwap through zgate's CSM REST API (protocol-specs/rest.md, policy.md §5.8): a
`zgate ds8k` complex of two storage images (H1 75FA120, H2 75FA121, each with its own
HMC listener), an emulated z/OS (`zgate peer zos`) with HyperSwap on that storage and
its applications writing, and `zgate serve`. Each is the real binary.
"""

import json
import os
import time
from pathlib import Path

import pytest

from conftest import ADMIN_PASSWORD, HMC_PASSWORD, HOST_PASSWORD, World, cheap_hash

H1, H2 = "75FA120", "75FA121"
VOLUMES = [0x3000, 0x3001, 0x3002, 0x3003]


def vol(serial, v):
    return f"DS8000:2107.{serial}:VOL:{v:04X}"


def ok(resp):
    body = resp.json()
    assert resp.status_code == 200, resp.text
    assert body["msg"][-1] in "IW", resp.text
    return body


class MirrorWorld(World):
    """The base world's gateway, with a Metro Mirror complex and a z/OS on it."""

    def __init__(self):
        super().__init__()
        d = Path(self.dir.name)
        env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1")
        env.pop("ZGATE_ADMIN_PASSWORD", None)
        hmc_hash = cheap_hash(self.binary, HMC_PASSWORD)
        (d / "complex.toml").write_text(f'''listen = "127.0.0.1:0"
image = "IBM.2107-{H1}"
hmc = "HMC1"
tick_ms = 100
[limits]
allow_plaintext_passwords = true
[mirror]
copy_tracks_per_sec = 20000
[[volumes]]
ids = "3000-3003"
ckd_cylinders = 100
[[users]]
user = "CSMADMIN"
password_hash = "{hmc_hash}"
[[remote]]
listen = "127.0.0.1:0"
image = "IBM.2107-{H2}"
hmc = "HMC2"
[[remote.volumes]]
ids = "3000-3003"
ckd_cylinders = 100
[[remote.users]]
user = "CSMADMIN"
password_hash = "{hmc_hash}"
''')
        self.complex = self.start([self.binary, "ds8k", "--config", str(d / "complex.toml")],
                                  env, "complex")
        self.h1_port = int(self.complex.wait_for(
            rf"DS8000 IBM\.2107-{H1} .* listening on 127\.0\.0\.1:(\d+)").group(1))
        self.h2_port = int(self.complex.wait_for(
            rf"DS8000 IBM\.2107-{H2} .* listening on 127\.0\.0\.1:(\d+)").group(1))
        (d / "sysb.toml").write_text(f'''listen = "127.0.0.1:0"
sysplex = "PLEX1"
system = "SYSB"
[limits]
allow_plaintext_passwords = true
[[users]]
user = "HOSTUSR"
password_hash = "{cheap_hash(self.binary, HOST_PASSWORD)}"
permits = ["HYPERSWAP"]
[storage]
addr = "127.0.0.1:{self.h1_port}"
image = "IBM.2107-{H1}"
user = "CSMADMIN"
password_env = "HMC_PW"
[[hyperswap_storage]]
addr = "127.0.0.1:{self.h2_port}"
image = "IBM.2107-{H2}"
user = "CSMADMIN"
password_env = "HMC_PW"
[workload]
writes_per_sec = 50
tracks = 15
''')
        self.sysb = self.start([self.binary, "peer", "zos", "--config", str(d / "sysb.toml")],
                               dict(env, HMC_PW=HMC_PASSWORD), "sysb")
        self.sysb_port = int(self.sysb.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))


@pytest.fixture(scope="module")
def mirror():
    w = MirrorWorld()
    try:
        yield w
    finally:
        w.close()


def wait_state(sc, name, state, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = sc.get_session_info(name).json()
        if info["state"] == state:
            return info
        time.sleep(0.2)
    raise AssertionError(f"{name} never {state}: {info}")


def short_row(sc, name):
    return {s["name"]: s for s in sc.get_session_overviews_short().json()}[name]


def test_a_metro_mirror_session_with_hyperswap_through_start_hyperswap_and_stop(mirror):
    from pyCSM.clients.hardware_client import hardwareClient
    from pyCSM.clients.session_client import sessionClient
    from pyCSM.clients.system_client import systemClient

    host, port = "127.0.0.1", str(mirror.rest_port)
    hw = hardwareClient(host, port, "admin", ADMIN_PASSWORD)
    sc = sessionClient(host, port, "admin", ADMIN_PASSWORD)
    sysc = systemClient(host, port, "admin", ADMIN_PASSWORD)
    for hmc_port in (mirror.h1_port, mirror.h2_port):
        r = hw.add_device("ds8000", "127.0.0.1", "CSMADMIN", HMC_PASSWORD, device_port=str(hmc_port))
        assert r.json()["msg"].endswith("I"), r.text
    r = hw.add_zos_host("127.0.0.1", HOST_PASSWORD, "HOSTUSR", str(mirror.sysb_port))
    assert r.json()["msg"].endswith("I"), r.text

    types = {t["shortname"]: t for t in sysc.get_session_types().json()}
    assert types["MM"]["name"] == "Metro Mirror Failover/Failback", types
    ok(sc.create_session("MM1", "Metro Mirror Failover/Failback", "payroll, mirrored"))
    row = short_row(sc, "MM1")
    assert row["type"] == "MM" and row["rulesname"] == "Metro Mirror Failover/Failback", row
    assert row["hyperswapstatus"] == "off" and row["productionhost"] == "H1", row
    r = sc.add_copysets("MM1", [[vol(H1, v), vol(H2, v)] for v in VOLUMES])
    assert "4 copy sets were added" in ok(r)["msgTranslated"], r.text
    r = sysc.rest_put(
        f"{sysc.base_url}/sessions/MM1/options",
        {"options": json.dumps([
            {"type": "hyperswap", "properties": [{"value": True}]},
            {"type": "hostsystem", "properties": [{"value": "SYSB"}]},
        ])},
        {"Accept-Language": "en-US", "Content-Type": "application/x-www-form-urlencoded"},
    )
    ok(r)
    assert short_row(sc, "MM1")["hyperswapstatus"] == "hs not loaded"
    assert sc.get_available_commands("MM1").json() == ["Start H1->H2"]

    done = ok(sc.run_session_command("MM1", "Start H1->H2"))
    assert done["msg"] == "IWNR1026I", done
    info = wait_state(sc, "MM1", "Prepared")
    assert info["status"] == "Normal", info
    row = short_row(sc, "MM1")
    assert row["hyperswapstatus"] == "hs enabled" and row["productionhost"] == "H1", row
    assert "HyperSwap" in sc.get_available_commands("MM1").json()
    pairs = sc.get_pair_info("MM1", "H1-H2").json()
    assert [p["targetvolume"] for p in pairs] == [vol(H2, v) for v in VOLUMES], pairs

    # The same session through `zgate csm`, the CLI door.
    listed = mirror.csm(["sessions"]).stdout
    line = next(l for l in listed.splitlines() if l.startswith("MM1"))
    assert "Prepared" in line and "hs enabled" in line and "H1" in line, listed
    refreshed = mirror.csm(["run", "MM1", "Refresh States"]).stdout
    assert "Refresh States" in refreshed, refreshed
    mirror.csm(["create", "HS1", "--type", "HS", "--description", "Basic HyperSwap"])
    assert short_row(sc, "HS1")["rulesname"] == "Basic HyperSwap"

    # A planned HyperSwap through SYSB while its applications write.
    done = ok(sc.run_session_command("MM1", "HyperSwap"))
    assert "production is H2" in done["msgTranslated"], done
    row = short_row(sc, "MM1")
    assert row["state"] == "Target Available" and row["productionhost"] == "H2", row
    assert row["hyperswapstatus"] == "hs disabled", row

    # Back in step from H2, then Stop: suspended without a freeze.
    ok(sc.run_session_command("MM1", "Start H2->H1"))
    wait_state(sc, "MM1", "Prepared")
    assert short_row(sc, "MM1")["hyperswapstatus"] == "hs enabled"
    done = ok(sc.run_session_command("MM1", "Stop"))
    assert done["msg"] == "IWNR1026I", done
    row = short_row(sc, "MM1")
    assert (row["state"], row["status"], row["productionhost"]) == ("Suspended", "Severe", "H2"), row
    assert set(sc.get_available_commands("MM1").json()) >= {"Start H2->H1", "Recover", "Terminate"}
    ok(sc.run_session_command("MM1", "Terminate"))
    row = short_row(sc, "MM1")
    assert (row["state"], row["hyperswapstatus"]) == ("Defined", "hs not loaded"), row
    events = [e["msg"] for e in sysc.get_log_events(100, "MM1").json()]
    assert "IWNR8017I" in events, events
