"""The speed benchmark's pure parts: reading Docker's timestamps and pyinfra's stamped
lines, the readiness lags, the phases each way runs, the goals' verdicts."""

from benchmarks import speed, speed_report
from tests.testbed.cli import OutputLine, PyinfraRun

START = 1_700_000_000.0


def stamped_run(*lines: tuple[float, str], seconds: float = 10.0) -> PyinfraRun:
    run = PyinfraRun(["pyinfra"], 0, "", "")
    run.lines = [OutputLine(at, START + at, "stderr", text) for at, text in lines]
    run.seconds, run.started_at = seconds, START
    return run


def test_docker_timestamps_keep_microseconds_and_are_utc():
    assert speed.docker_time("2023-11-14T22:13:20.123456789Z") == START + 0.123456
    assert speed.docker_time("2023-11-14T22:13:20Z") == START


def test_deploy_steps_are_pyinfra_headers_with_the_time_to_the_next_one():
    run = stamped_run((1.0, "--> Connecting to hosts..."), (1.5, "[127.0.0.1] noise"),
                      (2.0, "\x1b[34m--> Starting operation:\x1b[0m Start the database first | Ensure db runs"),
                      seconds=5.0)
    assert speed.deploy_steps(run) == [
        (0.0, 1.0, "(pyinfra starting: Python and its imports)"),
        (1.0, 1.0, "Connecting to hosts..."),
        (2.0, 3.0, "Starting operation: Start the database first | Ensure db runs"),
    ]


def test_quick_operations_of_one_step_are_collapsed():
    steps = [(0.0, 0.2, "Starting operation: Programs | a"), (0.2, 0.3, "Starting operation: Programs | b"),
             (0.5, 4.0, "Starting operation: Programs | slow"), (4.5, 0.1, "Starting operation: Other | c")]
    assert speed_report.collapsed(steps) == [
        (0.0, 0.5, "Programs | 2 operations, each < 0.5 s"),
        (0.5, 4.0, "Starting operation: Programs | slow"),
        (4.5, 0.1, "Starting operation: Other | c"),
    ]


def test_the_lags_are_measured_from_readiness():
    run = stamped_run((3.0, "[127.0.0.1] db (srq-hpn-db) is ready after 2s"),
                      (3.2, "--> Starting operation: Start the database first | Ensure the limited role"),
                      (8.0, "[127.0.0.1] api (srq-hpn-api) is ready after 1s"),
                      (9.0, "--> Starting operation: Start the stack and verify it | Ensure https://"))
    assert speed.arrival(run, "db (srq-hpn-db) is ready after") == START + 3.0
    assert speed.arrival(run, "--> Starting operation", after=START + 3.0) == START + 3.2
    events = {"PostgreSQL ready": 2.5, "next operation after db": 3.2, "api ready": 7.6, "api ready seen": 8.0,
              "next operation after api": 9.0}
    found = speed_report.lags(events)
    assert round(found["db"], 2) == 0.7 and round(found["api"], 2) == 0.4
    assert round(found["api to next operation"], 2) == 1.4
    assert speed_report.lags({"PostgreSQL ready": None})["db"] is None


def test_each_way_runs_the_cold_setup_that_its_later_phases_need():
    assert speed.plan({"noop"}) == {speed.BY_HAND: [], speed.DEPLOY: ["cold", "noop"]}
    assert speed.plan({"bad"}) == {speed.BY_HAND: [], speed.DEPLOY: ["bad"]}
    assert speed.plan({"lag"}) == {speed.BY_HAND: [], speed.DEPLOY: ["cold"]}
    assert speed.plan(set(speed.PHASES)) == {
        speed.BY_HAND: ["cold", "update", "migration"],
        speed.DEPLOY: ["cold", "update", "migration", "noop", "bad"],
    }


def test_the_goals_are_judged_on_medians():
    results = speed_report.Results(rounds=3)
    for number, (by_hand, deployed) in enumerate([(40, 26), (50, 30), (45, 60)], start=1):
        results.put("cold", speed.BY_HAND, number, speed_report.Outcome(by_hand))
        results.put("cold", speed.DEPLOY, number, speed_report.Outcome(deployed))
        results.put("noop", speed.DEPLOY, number, speed_report.Outcome(1.5, facts={"changed": [], "restarted": []}))
    results.put("noop", speed.DEPLOY, 3, speed_report.Outcome(1.0, facts={"changed": ["x"], "restarted": []}))
    verdicts = {goal.split()[0]: met for goal, _figures, met in speed_report.goals(results)}
    assert verdicts["P1"] is True  # 30 / 45
    assert verdicts["P2"] is False  # one run changed something
    assert verdicts["P3"] is None and verdicts["P4"] is None


def test_the_cold_floor_is_docker_then_the_longest_path():
    by_hand = speed_report.Outcome(40.0, [(0.0, 10.0, "install Docker (prerequisite)"), (10.0, 0.1, "passwords"),
                                          (10.1, 14.0, "pull the database's image"),
                                          (24.1, 5.0, "db up, initialised"), (29.1, 3.0, "wait until healthy"),
                                          (29.1, 6.0, "build and start api"), (35.1, 0.6, "migrate"),
                                          (35.7, 3.3, "start all")])
    assert speed_report.floor_of(by_hand) == 29.0  # the database's path: 14.0 + 5.0 > 6.0 + 3.3
    slow_builds = speed_report.Outcome(40.0, [(0.0, 10.0, "install Docker (prerequisite)"),
                                              (10.0, 3.0, "pull the database's image"),
                                              (13.0, 2.0, "db up, initialised"),
                                              (15.0, 12.0, "build and start api"), (27.0, 3.0, "start all")])
    assert speed_report.floor_of(slow_builds) == 25.0  # the builds' path
    assert speed_report.floor_of(speed_report.Outcome(5.0, [(0.0, 5.0, "start all")])) is None
    results = speed_report.Results(1)
    results.put("cold", speed_report.BY_HAND, 1, by_hand)
    results.put("cold", speed_report.DEPLOY, 1, speed_report.Outcome(31.9))
    assert round(speed_report.floor_ratio(results), 2) == 1.1
