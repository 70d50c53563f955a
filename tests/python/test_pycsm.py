"""IBM's pyCSM 1.0.12, unchanged, driving zgate's CSM REST API
(protocol-specs/rest.md) against a simulated DS8000 and an emulated z/OS system.
Every call goes through pyCSM's sessionClient, systemClient or hardwareClient (or,
where pyCSM has a service function but no client method, that function with the
client's token); plain `requests` only for what pyCSM cannot send (a missing token).
"""

import json
import time

import requests
from pyCSM.authorization import auth

from conftest import ADMIN_PASSWORD, TOKEN_LIFETIME_SECS, vol

HEADERS = {"Accept-Language": "en-US", "Content-Type": "application/x-www-form-urlencoded"}


def ok(resp):
    """The result object of a command that must succeed (I or W)."""
    body = resp.json()
    assert resp.status_code == 200, resp.text
    assert body["msg"][-1] in "IW", resp.text
    return body


def refused(resp, status, msg=None, holds=None):
    """A refusal: an E result object, the HTTP status, the id and text expected."""
    body = resp.json()
    assert resp.status_code == status, resp.text
    assert body["msg"].endswith("E"), resp.text
    if msg:
        assert body["msg"] == msg, resp.text
    if holds:
        assert holds in body["msgTranslated"], resp.text
    assert body["msgTranslated"].startswith(body["msg"] + " ["), resp.text
    assert body["timestamp"] > 0
    return body


def set_options(clients, user, session, options):
    """pyCSM has no client method for options; its system client's rest_put sends
    the form pyCSM's set_session_options would."""
    sysc = clients[user]["system"]
    return sysc.rest_put(
        f"{sysc.base_url}/sessions/{session}/options",
        {"options": json.dumps(options)},
        dict(HEADERS),
    )


def option(kind, value):
    return {"type": kind, "properties": [{"value": value}]}


def backups(sc, name):
    info = sc.get_session_info(name).json()
    return [b["backupID"] for b in info["backupInfo"][0]["BackupResults"]]


def test_token_and_renewal_after_expiry(world, clients):
    sc = clients["admin"]["session"]
    first = sc.tk
    assert sc.get_session_overviews_short().status_code == 200
    time.sleep(TOKEN_LIFETIME_SECS + 1)
    # The token has expired: the server says 401, pyCSM fetches a new one and retries.
    r = sc.get_session_overviews_short()
    assert r.status_code == 200, r.text
    assert sc.tk != first
    # A missing or made-up token is 401 with a result object.
    for headers in [{}, {"X-Auth-Token": "not-a-token"}]:
        r = requests.get(f"{world.base_url}/sessions/short", headers=headers, verify=False)
        refused(r, 401, "IWNR8010E")
    # A wrong password gets no token.
    r = requests.post(f"{world.base_url}/system/v1/tokens",
                      data={"username": "admin", "password": "wrong"}, verify=False)
    refused(r, 401, "IWNR8010E")


def test_storage_and_hosts_are_added_with_pycsm(storage, clients):
    hw = clients["admin"]["hardware"]
    devices = hw.get_devices("ds8000").json()
    assert [d["id"] for d in devices] == ["DS8000:BOX:2107.75FA120"], devices
    assert "HMCPASS1" not in json.dumps(devices)
    hosts = hw.get_zos_host().json()
    assert hosts[0]["system"] == "SYSA" and hosts[0]["credential"] == "password", hosts


def test_flashcopy_with_inhibit_target_writes_and_minimum_time_frame(storage, clients):
    sc = clients["admin"]["session"]
    ok(sc.create_session("FC1", "FC", "nightly copy"))
    # The short list (served from a cache kept until the state changes) shows it at once.
    short = {s["name"]: s for s in sc.get_session_overviews_short().json()}
    assert short["FC1"]["state"] == "Defined" and short["FC1"]["rulesname"] == "FlashCopy", short
    r = sc.add_copysets("FC1", [[vol(0x3000), vol(0x3100)], [vol(0x3001), vol(0x3101)]])
    assert "2 copy sets were added" in ok(r)["msgTranslated"], r.text
    assert len(sc.get_copysets("FC1").json()) == 2
    ok(set_options(clients, "admin", "FC1", [option("inhibittargetwrites", True),
                                            option("minflashinterval", 30),
                                            option("hostsystem", "SYSA")]))
    opts = {o["type"]: o["properties"][0]["value"] for o in sc.get_session_options("FC1").json()}
    assert opts["inhibittargetwrites"] is True and opts["minflashinterval"] == 30, opts
    assert opts["hostsystem"] == "SYSA"
    assert "Flash" in sc.get_available_commands("FC1").json()
    # The flash goes through z/OS; the reply is its completion.
    done = ok(sc.run_session_command("FC1", "Flash"))
    assert done["msg"] == "IWNR1026I", done
    assert "The Flash command in the FC1 session completed" in done["msgTranslated"]
    # A second flash inside the window: refused with the next allowed time.
    refused(sc.run_session_command("FC1", "Flash"), 409, "IWNR8011E", "the next is allowed at")
    # Background copy ends with IWNR2772I in the log events.
    deadline = time.time() + 60
    while time.time() < deadline:
        events = clients["admin"]["system"].get_log_events(50, "FC1").json()
        if any(e["msg"] == "IWNR2772I" for e in events):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no IWNR2772I: {events}")
    info = sc.get_session_info("FC1").json()
    assert info["state"] == "Target Available" and info["recoverable"] is True, info
    pairs = sc.get_pair_info("FC1", "H1-T1").json()
    assert pairs[0]["sourcevolume"] == vol(0x3000), pairs


def test_safeguarded_copy_backups_recover_and_expiry(storage, clients):
    sc = clients["admin"]["session"]
    ok(sc.create_session("SGC1", "SGC", None))
    ok(sc.add_copysets("SGC1", [[vol(0x3002), vol(0x3200)]]))
    ok(set_options(clients, "admin", "SGC1", [option("minbackups", 2)]))
    for _ in range(3):
        assert ok(sc.run_session_command("SGC1", "Backup"))["msg"] == "IWNR1026I"
        time.sleep(1.1)  # the box's backup ids are epoch seconds
    ids = backups(sc, "SGC1")
    assert len(ids) == 3, ids
    details = sc.get_backup_details("SGC1", "H1", ids[0]).json()
    assert details["backupID"] == ids[0] and details["recoverable"] is True, details
    # Recover the middle backup to R1.
    r = sc.sgc_recover("SGC1", "Recover Backup", "H1", ids[1])
    assert "Recover Backup" in ok(r)["msgTranslated"], r.text
    assert [b["backupID"] for b in sc.get_recovered_backups("SGC1").json()] == [ids[1]]
    # Manual expiry is off by default: refused, saying so.
    refused(sc.run_backup_command("SGC1", "H1", ids[0], "Expire Backup"), 409,
            "IWNR8011E", "does not allow backups to be manually expired")
    ok(set_options(clients, "admin", "SGC1", [option("allowmanualexpire", True)]))
    ok(sc.run_backup_command("SGC1", "H1", ids[0], "Expire Backup"))
    assert backups(sc, "SGC1") == ids[1:]
    # Two are left and the session keeps at least two: refused.
    refused(sc.run_backup_command("SGC1", "H1", ids[1], "Expire Backup"), 409,
            "IWNR8011E", "keeps at least 2")


def test_dual_control_in_safeguarded_copy_mode(storage, clients):
    admin, approver, operator = (clients[u] for u in ("admin", "approver", "operator"))
    sc = admin["session"]
    if "SGC1" not in [s["name"] for s in sc.get_session_overviews_short().json()]:
        test_safeguarded_copy_backups_recover_and_expiry(storage, clients)
    # The mode change itself needs a second user.
    held = ok(admin["system"].change_dual_control_state("sgc"))
    assert held["msg"] == "IWNR8003W", held
    assert admin["system"].get_dual_control_requests().json()[0]["requestid"] == held["requestid"]
    refused(admin["system"].approve_dual_control_request(held["requestid"]), 403, "IWNR8010E")
    ok(approver["system"].approve_dual_control_request(held["requestid"]))
    assert admin["system"].get_dual_control_state().json()["mode"] == "sgc"
    ids = backups(sc, "SGC1")
    # An operator's recover becomes a request; the approver runs it.
    req = ok(operator["session"].sgc_recover("SGC1", "Recover Backup", "H1", ids[0]))
    assert req["msg"] == "IWNR8003W" and req["requestid"], req
    done = ok(approver["system"].approve_dual_control_request(req["requestid"]))
    assert done["msg"] == "IWNR1026I" and "Recover Backup" in done["msgTranslated"], done
    # A backup is not gated in this mode; another recover is, and is rejected with a
    # comment.
    assert ok(operator["session"].run_session_command("SGC1", "Backup"))["msg"] == "IWNR1026I"
    req = ok(operator["session"].sgc_recover("SGC1", "Recover Backup", "H1", ids[1]))
    assert req["msg"] == "IWNR8003W", req
    rej = ok(approver["system"].reject_dual_control_request(req["requestid"], "not now"))
    assert rej["msg"] == "IWNR2605I" and "not now" in rej["msgTranslated"], rej
    assert admin["system"].get_dual_control_requests().json() == []
    # Back to no dual control (a second user again).
    off = ok(admin["system"].change_dual_control_state(False))
    ok(approver["system"].approve_dual_control_request(off["requestid"]))
    assert admin["system"].get_dual_control_state().json()["enabled"] is False


def test_scheduled_task_created_and_run(storage, clients):
    sc = clients["admin"]["session"]
    ok(sc.create_session("SGC3", "SGC", None))
    ok(sc.add_copysets("SGC3", [[vol(0x3005), vol(0x3205)]]))
    task = {
        "name": "hourly backup",
        "description": "Hourly SGC3 backup for the audit team",
        "schedule": {"type": "IntervalTaskSchedule", "interval": 3_600_000},
        "actions": [{"step": 1, "sessionName": "SGC3", "command": "Backup"}],
        "enabled": False,
    }
    ok(sc.create_scheduled_task(json.dumps(task)))
    tasks = sc.get_scheduled_tasks().json()
    mine = [t for t in tasks if t["name"] == "hourly backup"]
    assert len(mine) == 1 and mine[0]["enabled"] is False, tasks
    tid = mine[0]["id"]
    assert sc.get_scheduled_task(tid).json()["schedule"]["interval"] == 3_600_000
    assert mine[0]["description"] == "Hourly SGC3 backup for the audit team", mine
    ok(sc.enable_scheduled_task(tid))
    assert sc.get_scheduled_task(tid).json()["enabled"] is True
    # Run it now: the backup is taken.
    done = ok(sc.run_scheduled_task(tid, synchronous=True))
    assert len(backups(sc, "SGC3")) == 1, done
    # pyCSM's run_task_now posts without the /sessions prefix; it runs too.
    time.sleep(1.1)  # the box's backup ids are epoch seconds
    # pyCSM's run_task_now renews an expired token for its first call (a cancel) but
    # not for its second (the run), and this world's tokens live 4 s: a token that
    # expires between the two fails the run with 401. Start it with a fresh token,
    # fetched the way pyCSM fetches one.
    sc.tk = auth.get_token(sc.base_url, sc.username, sc.password)
    ok(sc.run_task_now(tid, synchronous=True))
    assert len(backups(sc, "SGC3")) == 2
    ok(sc.disable_scheduled_task(tid))
    # Enabled again from a time on: the interval starts then (UTC).
    ok(sc.enable_scheduled_task_at_time(tid, "2030-01-01T00-00"))
    t = sc.get_scheduled_task(tid).json()
    assert t["enabled"] is True and t["schedule"]["startTime"] == 1_893_456_000_000, t
    assert t["nextRun"] == 1_893_456_000_000, t
    refused(sc.enable_scheduled_task_at_time(tid, "next-tuesday"), 400, "IWNR8012E")
    ok(sc.disable_scheduled_task(tid))
    # A Safeguarded Copy backup every 10 minutes is refused (policy.md §7: 30 at least).
    task["name"], task["schedule"]["interval"] = "too often", 600_000
    refused(sc.create_scheduled_task(json.dumps(task)), 400, None, "30")
    ok(sc.delete_task(tid))
    assert all(t["id"] != tid for t in sc.get_scheduled_tasks().json())


def test_an_operator_is_refused_an_ungranted_command(storage, clients):
    sc = clients["admin"]["session"]
    if "FC1" not in [s["name"] for s in sc.get_session_overviews_short().json()]:
        ok(sc.create_session("FC1", "FC", None))
    op = clients["operator"]["session"]
    refused(op.run_session_command("FC1", "Flash"), 403, "IWNR8010E", "operator")
    # Granted Backup and Recover Backup on SGC1 only: Expire Backup is refused too.
    sgc = op.get_session_info("SGC1").json()
    first = sgc["backupInfo"][0]["BackupResults"][0]["backupID"]
    refused(op.run_backup_command("SGC1", "H1", first, "Expire Backup"), 403, "IWNR8010E",
            "Expire Backup")
    # Server actions are the Administrator's.
    refused(clients["operator"]["hardware"].remove_device("DS8000:BOX:2107.75FA120"), 403,
            "IWNR8010E")


def test_bad_input_gets_clear_errors(world, clients):
    sc = clients["admin"]["session"]
    refused(sc.get_session_info("NOSUCH"), 404, "IWNR1502E", "NOSUCH")
    refused(sc.run_session_command("NOSUCH", "Flash"), 404, "IWNR1502E")
    refused(sc.create_session("BAD", "GM", None), 400, "IWNR8012E", "FC")
    refused(sc.add_copysets("NOSUCH", "[[unclosed"), 400, "IWNR8012E", "copysets")
    refused(sc.get_backup_details("NOSUCH", "H1", "abc"), 400, "IWNR8012E")
    # Something pyCSM offers but zgate does not serve: a clear error, not a crash.
    refused(clients["admin"]["system"].create_log_pkg(), 404, "IWNR8012E", "does not implement")
    # GET /storagedevices/paths falls on DELETE /storagedevices/{id}: 405, same message.
    refused(clients["admin"]["hardware"].get_paths(), 405, "IWNR8012E", "does not implement")
    # The server is still fine.
    assert sc.get_session_overviews_short().status_code == 200
    assert clients["admin"]["system"].get_server_version().json()["version"] == "6.3.7"
    types = {t["shortname"] for t in clients["admin"]["system"].get_session_types().json()}
    assert types == {"FC", "SGC", "MM", "HS"}
    assert clients["admin"]["system"].get_active_standby_status().json()["msg"] == "IWNR3048I"


def test_the_admin_password_never_comes_back(world, clients):
    for path in ["sessions", "storagedevices", "storagedevices/zoshost", "system/logevents?count=100"]:
        r = requests.get(f"{world.base_url}/{path}",
                         headers={"X-Auth-Token": clients["admin"]["session"].tk}, verify=False)
        for secret in (ADMIN_PASSWORD, "HMCPASS1", "HOSTPW1"):
            assert secret not in r.text, path


def test_copy_sets_description_volumes_and_removals(storage, world, clients):
    sc, hw = clients["admin"]["session"], clients["admin"]["hardware"]
    ok(sc.create_session("FC9", "FC", "scratch"))
    # Volumes listed T1 first, with the role order saying so.
    ok(sc.add_copysets("FC9", [[vol(0x3107), vol(0x3007)]], ["T1", "H1"]))
    sets = sc.get_copysets("FC9").json()
    assert [v["elementid"] for v in sets[0]["volumelist"]] == [vol(0x3007), vol(0x3107)], sets
    ok(sc.modify_session_description("FC9", "renamed"))
    assert sc.get_session_info("FC9").json()["description"] == "renamed"
    volumes = hw.get_volumes("DS8000:BOX:2107.75FA120").json()
    assert any(v["elementid"] == vol(0x3007) and "FC9" in v["sessions"] for v in volumes), volumes
    assert clients["admin"]["system"].get_volume_counts().json()["total"] >= 2
    ok(sc.remove_copysets("FC9", [[vol(0x3007), vol(0x3107)]]))
    assert sc.get_session_info("FC9").json()["numcopysets"] == 0
    ok(sc.delete_session("FC9"))
    refused(sc.get_session_info("FC9"), 404, "IWNR1502E")
    # A host a session flashes through cannot be removed (FC1 uses SYSA).
    if "FC1" in [s["name"] for s in sc.get_session_overviews_short().json()]:
        r = hw.remove_zos_host("127.0.0.1", str(world.zos_port))
        assert r.json()["msg"].endswith("E") and "FC1" in r.json()["msgTranslated"], r.text
    # No host at that address: a clear error.
    refused(hw.remove_zos_host("127.0.0.1", "1"), 400, "IWNR8012E", "no host connection")
