"""The rehearsal-cost benchmark's pure parts: the migrations it adds to the sample app,
which created containers and networks are the rehearsal's, the rehearsal's share of a deploy."""

from benchmarks import rehearsal_cost
from benchmarks.rehearsal_cost import Deployed, rehearsal_s, rehearsals_own
from tasks.migrations import Script, heads, read_script


def test_each_release_adds_one_migration_on_top_of_the_last(tmp_path):
    app = rehearsal_cost.release(tmp_path, 5, 4)
    versions = app / "apps/api/alembic/versions"
    scripts = [read_script(path.read_text(), path.name) for path in sorted(versions.glob("*.py"))]
    assert Script("0003", ("0002",)) in scripts and Script("0004", ("0003",)) in scripts
    assert heads(script for script in scripts if script) == ["0004"]
    assert 'op.execute("UPDATE events SET summary_0004 = title")' in (versions / "0004_summary.py").read_text()
    assert not list(rehearsal_cost.release(tmp_path, 6, 2).glob("apps/api/alembic/versions/000[3-9]*"))


def test_only_the_rehearsals_containers_and_network_are_counted():
    events = ("container srq-hpn-rehearsal-db-42 42\n"
              "container srq-hpn-api-run-0123 42\n"
              "container srq-hpn-api-run-4567 <no value>\n"  # production's migration
              "container srq-hpn-api-standby <no value>\n"
              "network srq-hpn-rehearsal-42 \n"
              "network srq-hpn_default \n")
    assert rehearsals_own(events) == ["container srq-hpn-rehearsal-db-42", "container srq-hpn-api-run-0123",
                                      "network srq-hpn-rehearsal-42"]


def test_the_rehearsals_share_is_the_operation_less_productions_migration():
    record = {"result": "migrated", "duration_s": 1.2, "rehearsal": {"result": "passed", "duration_s": 1.4}}
    rehearsed = Deployed("migration", True, 17.7, 6.8, record, 1, 1, [], 9)
    assert round(rehearsal_s(rehearsed), 1) == 5.6
    off = Deployed("migration", False, 13.6, 1.3, {**record, "rehearsal": {"result": "not-rehearsed"}}, 1, 1, [], 9)
    assert rehearsal_s(off) is None
    assert rehearsal_s(Deployed("no migration", True, 9.9, 0.0, None, 0, 0, [], 7)) is None
