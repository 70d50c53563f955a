"""Safeguarded Copy retention through IBM's pyCSM 1.0.12: a backup past the
retention time is expired only while more than the minimum number remain
(protocol-specs/policy.md §3.2). Retention is counted in minutes on the server's clock,
so this test waits a real minute; it is in its own file so that it waits beside the
other files' tests (pytest-xdist, `--dist loadfile`), each with its own world.
"""

import time

from conftest import vol
from test_pycsm import backups, ok, option, set_options


def test_retention_keeps_the_minimum_number_of_backups(storage, clients):
    sc = clients["admin"]["session"]
    ok(sc.create_session("SGC2", "SGC", "retention"))
    ok(sc.add_copysets("SGC2", [[vol(0x3004), vol(0x3204)]]))
    ok(set_options(clients, "admin", "SGC2", [option("retention", 1), option("minbackups", 3)]))
    for _ in range(3):
        ok(sc.run_session_command("SGC2", "Backup"))
        time.sleep(1.1)
    # A minute later the three are past retention; two more backups make four
    # expirable by age, but retention leaves three.
    time.sleep(61)
    for _ in range(2):
        ok(sc.run_session_command("SGC2", "Backup"))
        time.sleep(1.1)
    deadline = time.time() + 15
    while time.time() < deadline and len(backups(sc, "SGC2")) > 3:
        time.sleep(0.5)
    assert len(backups(sc, "SGC2")) == 3, sc.get_session_info("SGC2").text
    events = clients["admin"]["system"].get_log_events(20, "SGC2").json()
    assert any(e["msg"] == "IWNR8014I" for e in events), events
