"""IBM's pyCSM 1.0.12 driving an active/standby pair of `zgate serve` processes
(protocol-specs/ha.md): set_standby_server on the active, get_active_standby_status
on both, takeover_standby_server on the standby, then session work on the new
active, the old active fenced, reconnect and remove."""

import time

from pyCSM.clients.hardware_client import hardwareClient
from pyCSM.clients.session_client import sessionClient
from pyCSM.clients.system_client import systemClient

from conftest import ADMIN_PASSWORD, HMC_PASSWORD, vol


def ok(resp):
    body = resp.json()
    assert resp.status_code == 200, resp.text
    assert body["msg"][-1] in "IW", resp.text
    return body


def status(system):
    body = ok(system.get_active_standby_status())
    assert body["msg"] == "IWNR3048I", body
    return body


def wait(what, done, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = what()
        if done(value):
            return value
        time.sleep(0.25)
    raise AssertionError(f"never got there: {value}")


def clients(pair, name):
    port = pair.servers[name]["rest"]
    return (systemClient("127.0.0.1", port, "admin", ADMIN_PASSWORD),
            sessionClient("127.0.0.1", port, "admin", ADMIN_PASSWORD),
            hardwareClient("127.0.0.1", port, "admin", ADMIN_PASSWORD))


def test_pycsm_pairs_takes_over_and_the_session_work_goes_on(pair):
    sys_a, sc_a, hw_a = clients(pair, "a")
    sys_b, sc_b, _ = clients(pair, "b")
    a_ha, b_ha = pair.servers["a"]["ha"], pair.servers["b"]["ha"]

    alone = status(sys_a)
    assert alone["islocalactive"] is True and alone["maxsupportedconnections"] == 1, alone
    assert alone["serverinfo"][0]["status"] == "No standby", alone

    # On the active, with the standby's Administrator: the standby's data is replaced.
    r = sys_a.set_standby_server(b_ha, "admin", ADMIN_PASSWORD)
    assert ADMIN_PASSWORD not in r.text, "the password is echoed"
    ok(r)
    synced = wait(lambda: status(sys_a),
                  lambda s: any(i["serverRole"] == "STANDBY" and i["status"] == "Synchronized"
                                for i in s["serverinfo"]))
    assert synced["ha"]["partner"] == b_ha, synced
    standby = status(sys_b)
    assert standby["islocalactive"] is False, standby

    # A server property (pyCSM's set_property), replicated like every change.
    ok(sys_a.set_property("rmserver.properties", "zgate.copy.poll.secs", "2"))
    # Work on the active, seen on the standby.
    ok(hw_a.add_device("ds8000", "127.0.0.1", "CSMADMIN", HMC_PASSWORD, device_port=str(pair.ds8k_port)))
    ok(sc_a.create_session("FCHA", "FC", "before the takeover"))
    ok(sc_a.add_copysets("FCHA", [[vol(0x3000), vol(0x3100)]]))
    wait(lambda: sc_b.get_session_info("FCHA").json(), lambda s: s.get("name") == "FCHA")
    # The standby refuses changes and names the active.
    r = sc_b.create_session("NOPE", "FC", None)
    assert r.json()["msg"] == "IWNR8108E" and a_ha in r.json()["msgTranslated"], r.text

    # Takeover on the standby, then the session work continues there.
    took = ok(sys_b.takeover_standby_server())
    assert "took over" in took["msgTranslated"], took
    assert status(sys_b)["islocalactive"] is True
    done = ok(sc_b.run_session_command("FCHA", "Flash"))
    assert done["msg"] == "IWNR1026I", done
    info = wait(lambda: sc_b.get_session_info("FCHA").json(),
                lambda s: s["state"] == "Target Available")
    assert info["description"] == "before the takeover", info
    ok(sc_b.create_session("AFTER", "SGC", None))

    # The old active learns of the higher epoch, stops acting and follows.
    fenced = wait(lambda: status(sys_a),
                  lambda s: s["islocalactive"] is False and s["ha"]["link"] == "Synchronized")
    assert fenced["ha"]["epoch"] == status(sys_b)["ha"]["epoch"], fenced
    wait(lambda: sc_a.get_session_info("AFTER").json(), lambda s: s.get("name") == "AFTER")

    # Reconnect, then remove the relationship on the new active.
    ok(sys_b.reconnect_active_standby_server())
    ok(sys_b.remove_active_or_standby_server(a_ha))
    alone = status(sys_b)
    assert alone["serverinfo"][0]["status"] == "No standby" and len(alone["serverinfo"]) == 1, alone
