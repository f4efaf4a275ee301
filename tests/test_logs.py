"""Raw security logs: every unusable line counted and sampled, and exact sessions from a small log."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tollgate.rawlogs.parse import RawLogError, log_files
from tollgate.rawlogs.sessions import attach_labels
from tollgate.rawlogs.stream import SessionStream, sessionise
from tollgate.synth.raw_logs import MALFORMED_KINDS, write_month

JSON_EVENTS = [
    # 10.0.0.1, 09:00–10:00 UTC: two failed logins and a success on ssh, then a transfer out
    {
        "timestamp": "2026-03-02T09:05:00Z",
        "src_ip": "10.0.0.1",
        "dst_ip": "10.9.9.9",
        "dst_port": 22,
        "user": "root",
        "event": "login_failure",
        "bytes": 0,
        "protocol": "tcp",
        "user_agent": "OpenSSH_8.9p1",
    },
    {
        "timestamp": "2026-03-02T11:06:00+02:00",
        "src_ip": "10.0.0.1",
        "dst_ip": "10.9.9.9",
        "dst_port": 22,
        "user": "root",
        "event": "login_failure",
        "bytes": 0,
        "protocol": "tcp",
        "user_agent": "OpenSSH_8.9p1",
    },
    {
        "timestamp": "2026-03-02T09:07:00Z",
        "src_ip": "10.0.0.1",
        "dst_ip": "10.9.9.9",
        "dst_port": 22,
        "user": "root",
        "event": "login_success",
        "bytes": 0,
        "protocol": "tcp",
        "user_agent": "OpenSSH_8.9p1",
    },
    {
        "timestamp": "2026-03-02T09:45:30Z",
        "src_ip": "10.0.0.1",
        "dst_ip": "8.8.4.4",
        "dst_port": 443,
        "user": "root",
        "event": "transfer",
        "bytes": 5000,
        "protocol": "tcp",
        "user_agent": "curl/8.5.0",
    },
    # 10.0.0.2, 10:00–11:00 UTC: a browser session
    {
        "timestamp": "2026-03-02T10:00:00Z",
        "src_ip": "10.0.0.2",
        "dst_ip": "1.1.1.1",
        "dst_port": 443,
        "user": "bob",
        "event": "connect",
        "bytes": 700,
        "protocol": "tcp",
        "user_agent": "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    },
]
SYSLOG_LINES = [
    # same source and hour as the first JSON events: joins that session (clock skew normalised: 04:30-05:00 = 09:30Z)
    "2026-03-02T04:30:00-05:00 gw01 tollgate-sensor: event=connect src=10.0.0.1 dst=10.9.9.8 port=3389 user=root "
    'bytes=300 proto=tcp ua="OpenSSH_8.9p1"',
    # a new hour for 10.0.0.2
    "2026-03-02T11:59:59Z gw01 tollgate-sensor: event=connect src=10.0.0.2 dst=1.1.1.1 port=53 user=bob bytes=90 "
    'proto=udp ua="Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"',
]


@pytest.fixture
def small_log(tmp_path):
    folder = tmp_path / "2026-03"
    folder.mkdir()
    lines = [json.dumps(event) for event in JSON_EVENTS]
    lines.insert(1, lines[0])  # delivered twice
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "auth.log").write_text("\n".join(SYSLOG_LINES) + "\n")
    (folder / "ground_truth.csv").write_text(
        "session_id,src_ip,window_start,attack_kind\n"
        "10.0.0.1@2026-03-02T09:00Z,10.0.0.1,2026-03-02T09:00:00+00:00,brute_force\n"
    )
    return folder


def test_small_log_gives_exactly_the_expected_sessions(small_log, security_spec):
    """Check the session table of a hand-written log, field by field (skewed clocks to UTC, a
    duplicate dropped, both formats in one session)."""
    sessions, report, _ = sessionise(log_files(small_log), security_spec, "2026-03")
    sessions = attach_labels(sessions, small_log / "ground_truth.csv", security_spec)
    expected = pd.DataFrame(
        [
            {
                "session_id": "10.0.0.1@2026-03-02T09:00Z",
                "src_ip": "10.0.0.1",
                "window_start": "2026-03-02T09:00:00+00:00",
                "failed_logins": 2,
                "successful_logins": 1,
                "unique_ports": 3,
                "unique_dst_ips": 3,
                "bytes_out": 5000.0,
                "bytes_in": 300.0,
                "duration_s": 2430.0,
                "requests": 5,
                "login_hour": 9,
                "protocol": "tcp",
                "service": "ssh",
                "user_agent_family": "openssh",
                "is_attack": 1,
                "attack_kind": "brute_force",
            },
            {
                "session_id": "10.0.0.2@2026-03-02T10:00Z",
                "src_ip": "10.0.0.2",
                "window_start": "2026-03-02T10:00:00+00:00",
                "failed_logins": 0,
                "successful_logins": 0,
                "unique_ports": 1,
                "unique_dst_ips": 1,
                "bytes_out": 0.0,
                "bytes_in": 700.0,
                "duration_s": 0.0,
                "requests": 1,
                "login_hour": 10,
                "protocol": "tcp",
                "service": "https",
                "user_agent_family": "chrome",
                "is_attack": 0,
                "attack_kind": "normal",
            },
            {
                "session_id": "10.0.0.2@2026-03-02T11:00Z",
                "src_ip": "10.0.0.2",
                "window_start": "2026-03-02T11:00:00+00:00",
                "failed_logins": 0,
                "successful_logins": 0,
                "unique_ports": 1,
                "unique_dst_ips": 1,
                "bytes_out": 0.0,
                "bytes_in": 90.0,
                "duration_s": 0.0,
                "requests": 1,
                "login_hour": 11,
                "protocol": "udp",
                "service": "dns",
                "user_agent_family": "chrome",
                "is_attack": 0,
                "attack_kind": "normal",
            },
        ]
    )
    pd.testing.assert_frame_equal(sessions[expected.columns].reset_index(drop=True), expected, check_dtype=False)
    assert report.lines == 8 and report.parsed == 7 and report.duplicates == 1 and not report.problems


def test_every_malformed_kind_is_counted_and_sampled(tmp_path, security_spec):
    """Check the generator's broken lines are all accounted for: counted by kind, sampled, none silent."""
    written = write_month("2026-03", 20_000, tmp_path / "2026-03", seed=3, malformed=0.05, progress=False)
    sessions, report, sample = sessionise(log_files(tmp_path / "2026-03"), security_spec, "2026-03")
    kinds = {"invalid_json", "missing_field", "bad_timestamp", "bad_number", "unrecognised_line"}
    assert kinds <= set(report.problems) and all(report.samples[kind] for kind in kinds)
    assert sum(report.problems.values()) == written["malformed"]
    assert report.lines == written["lines"]
    assert report.parsed + report.duplicates + sum(report.problems.values()) == report.lines
    assert report.duplicates == written["duplicates"]
    assert 0 < sample["parsed"].mean() < 1 and len(MALFORMED_KINDS) == 5
    assert sessions["requests"].sum() == report.parsed


def test_an_interrupted_generation_leaves_the_month_as_it_was(tmp_path, monkeypatch):
    """Check that rewriting a month that stops half-way leaves the previous files byte for byte, and
    that a completed rewrite replaces them and leaves nothing behind."""
    import tollgate.synth.raw_logs as raw_logs

    month = tmp_path / "2026-03"
    write_month("2026-03", 2_000, month, seed=1, progress=False)
    before = {path.name: path.read_bytes() for path in month.iterdir()}
    calls = {"n": 0}
    real_line = raw_logs._json_line

    def line_then_stop(*args):
        calls["n"] += 1
        if calls["n"] > 500:
            raise KeyboardInterrupt
        return real_line(*args)

    monkeypatch.setattr(raw_logs, "_json_line", line_then_stop)
    with pytest.raises(KeyboardInterrupt):
        write_month("2026-03", 2_000, month, seed=2, progress=False)
    assert {path.name: path.read_bytes() for path in month.iterdir()} == before
    monkeypatch.setattr(raw_logs, "_json_line", real_line)
    write_month("2026-03", 2_000, month, seed=2, progress=False)
    after = {path.name: path.read_bytes() for path in month.iterdir()}
    assert set(after) == set(before) and after["events.jsonl"] != before["events.jsonl"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["2026-03"]


def test_a_folder_without_logs_or_labels_is_a_clear_error(tmp_path, security_spec):
    """Check that no log files, or no incident records, stop with the folder or file named."""
    with pytest.raises(RawLogError, match="no log files"):
        log_files(tmp_path)
    (tmp_path / "events.jsonl").write_text("not a log line\n")
    with pytest.raises(RawLogError, match="no usable event"):
        sessionise(log_files(tmp_path), security_spec, "2026-03")


def test_an_attack_kind_held_out_of_training_still_scores_high(tmp_path, security_spec):
    """Check the anomaly detector, fitted without brute force sessions, ranks most brute force
    sessions of the next month in the top 1 % of normal traffic, and that the report written for the
    run (anomaly.md/.json/.png) carries the same figures."""
    from tasks.anomaly import anomaly_report
    from tollgate.core.anomaly import novelty_table
    from tollgate.core.clean import clean_frame
    from tollgate.core.split import TrainHoldout
    from tollgate.store.runs import RunPaths

    months = []
    for month in ("2026-02", "2026-03"):
        write_month(month, 60_000, tmp_path / month, seed=11, progress=False)
        sessions, _, _ = sessionise(log_files(tmp_path / month), security_spec, month)
        labelled = attach_labels(sessions, tmp_path / month / "ground_truth.csv", security_spec)
        months.append(clean_frame(labelled, security_spec).frame)
    split = TrainHoldout(months[0], months[1], "time", "2026-03")
    table = {row.kind: row for row in novelty_table(split, security_spec)}
    assert table["brute_force"].in_training and table["brute_force"].holdout_rows >= 10
    assert table["brute_force"].share_in_top_1pct >= 0.8
    assert table["credential_stuffing"].share_in_top_1pct >= 0.5

    run = RunPaths("test", tmp_path / "run")
    run.dir.mkdir()
    result = anomaly_report.fn(run, split, security_spec)
    reported = {row["kind"]: row for row in json.loads((run.dir / "anomaly.json").read_text())["kinds"]}
    assert reported["brute_force"]["share_in_top_1pct"] == table["brute_force"].share_in_top_1pct
    assert "normal_percentiles" not in reported["brute_force"]
    assert {row["kind"] for row in result.summary()["kinds"]} == {
        kind for kind, row in table.items() if row.share_in_top_1pct is not None
    }
    assert "![anomaly ranks](anomaly.png)" in (run.dir / "anomaly.md").read_text()
    assert (run.dir / "anomaly.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_blocks_on_worker_processes_give_the_same_sessions(tmp_path, security_spec):
    """Check that parsing in blocks on two worker processes gives exactly the sessions, counts and
    duplicates of one process reading the same files (repeats across block boundaries included)."""
    write_month("2026-03", 30_000, tmp_path / "2026-03", seed=9, duplicates=0.02, progress=False)
    files = log_files(tmp_path / "2026-03")
    one, one_report, _ = sessionise(files, security_spec, "2026-03", chunk_lines=4_000, workers=1)
    two, two_report, _ = sessionise(files, security_spec, "2026-03", chunk_lines=4_000, workers=2)
    whole, whole_report, _ = sessionise(files, security_spec, "2026-03", chunk_lines=1_000_000, workers=1)
    pd.testing.assert_frame_equal(one, two)
    pd.testing.assert_frame_equal(one, whole)
    assert one_report.as_dict() == two_report.as_dict()
    assert one_report.duplicates == whole_report.duplicates and one_report.problems == whole_report.problems


def test_sessions_are_emitted_as_their_windows_close(tmp_path, security_spec):
    """Check that streaming a month in small blocks hands out finished sessions all along (the state
    held is the open windows, not the month) and that they are exactly the sessions of one pass."""
    write_month("2026-03", 30_000, tmp_path / "2026-03", seed=5, progress=False)
    files = log_files(tmp_path / "2026-03")
    stream = SessionStream(files, security_spec, "2026-03", chunk_lines=2_000, workers=1)
    chunks, lines_read = [], []
    for chunk in stream:
        chunks.append(chunk)
        lines_read.append(stream.report.lines)
    assert len(chunks) >= 10
    assert lines_read[len(chunks) // 2] < 0.75 * stream.report.lines  # half the sessions out before the end
    streamed = pd.concat(chunks, ignore_index=True).sort_values("session_id", ignore_index=True)
    whole, report, _ = sessionise(files, security_spec, "2026-03", chunk_lines=1_000_000, workers=1)
    pd.testing.assert_frame_equal(streamed, whole)
    assert "late_event" not in stream.report.problems and stream.report.parsed == report.parsed


def test_an_event_after_its_session_is_final_is_counted_late(tmp_path, security_spec):
    """Check that an event arriving hours behind the other files' lines, once its hour is final, is
    counted and sampled as late_event, never merged or dropped silently, and that the raw-line
    expectations fail on time order (and only on it) when more than 1 % of events come late."""
    from tasks.quality import run_suite

    folder = tmp_path / "2026-03"
    folder.mkdir()
    event = {
        "src_ip": "10.0.0.7",
        "dst_ip": "1.1.1.1",
        "dst_port": 443,
        "user": "bob",
        "event": "connect",
        "bytes": 10,
        "protocol": "tcp",
        "user_agent": "curl/8.5.0",
    }
    lines = [
        json.dumps({"timestamp": f"2026-03-02T{10 + minute // 60:02d}:{minute % 60:02d}:00Z", **event})
        for minute in range(70)
    ]
    lines.append(json.dumps({"timestamp": "2026-03-02T05:00:00Z", **event}))  # five hours behind its neighbours
    (folder / "events.jsonl").write_text("\n".join(lines) + "\n")
    (folder / "auth.log").write_text(
        "2026-03-02T09:00:00Z gw01 tollgate-sensor: event=connect src=10.0.0.8 "
        'dst=1.1.1.1 port=443 user=ann bytes=5 proto=tcp ua="curl/8.5.0"\n'
    )
    sessions, report, sample = sessionise(log_files(folder), security_spec, "2026-03")
    assert report.problems == {"late_event": 1}
    assert report.samples["late_event"] == [lines[-1]]
    assert report.parsed + report.duplicates + sum(report.problems.values()) == report.lines == 72
    assert sessions["requests"].sum() == 71 and "10.0.0.7@2026-03-02T05:00Z" not in set(sessions["session_id"])
    assert sample["on_time"].value_counts().to_dict() == {1.0: 71, 0.0: 1}  # the sample is every line here
    suite = security_spec.raw_logs_suite_path()
    outcomes = run_suite({}, suite, tmp_path / "docs", {"raw lines 2026-03": (sample, suite)})
    assert [(o.column, o.severity) for o in outcomes if not o.success] == [("on_time", "critical")]


def test_a_block_starting_with_unreadable_lines_still_streams(tmp_path, security_spec):
    """Check that a block whose first lines have no readable time (its start unknown) is read, its
    garbage counted, and no event of the other file is taken for late."""
    folder = tmp_path / "2026-03"
    folder.mkdir()
    good = (
        "2026-03-02T09:{:02d}:00Z gw01 tollgate-sensor: event=connect src=10.0.0.8 dst=1.1.1.1 port=443 "
        'user=ann bytes=5 proto=tcp ua="curl/8.5.0"'
    )
    (folder / "auth.log").write_text(
        "\n".join([good.format(0)] + ["%%% not a log line %%%"] * 200 + [good.format(59)]) + "\n"
    )
    (folder / "events.jsonl").write_text(
        "\n".join(
            json.dumps(
                {
                    "timestamp": f"2026-03-02T{hour:02d}:00:00Z",
                    "src_ip": "10.0.0.7",
                    "dst_ip": "1.1.1.1",
                    "dst_port": 443,
                    "user": "bob",
                    "event": "connect",
                    "bytes": 10,
                    "protocol": "tcp",
                    "user_agent": "curl/8.5.0",
                }
            )
            for hour in range(24)
        )
        + "\n"
    )
    sessions, report, _ = sessionise(log_files(folder), security_spec, "2026-03", chunk_lines=5)
    assert report.problems == {"unrecognised_line": 200} and report.parsed == 26 and len(sessions) == 25
