"""``bench --load``: the served app answers concurrent users (issue 15)."""

from __future__ import annotations

import json

from workbench.cli import bench


def test_the_load_bench_serves_the_app_and_counts_every_call(capsys):
    assert bench.main(["--load", "2", "--calls", "6"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["users"] == 2 and result["answered"] + result["errors"] == 6
    assert result["answered"] >= 1 and result["calls_per_s"] > 0
    assert result["p50_s"] is not None and result["p50_s"] <= result["p95_s"] <= result["max_s"]
    assert result["server_rss_peak_mb"] >= result["server_rss_start_mb"] > 0


def test_verdict_only_clients_get_every_answer_too(capsys):
    assert bench.main(["--load", "2", "--calls", "4", "--verdict-only"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["downloads"] is False and result["answered"] == 4 and result["errors"] == 0


def test_the_load_bench_calls_the_data_endpoint_from_several_client_processes(capsys):
    argv = ["--load", "2", "--calls", "5", "--endpoint", "verify_data", "--client-processes", "2"]
    assert bench.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["endpoint"] == "verify_data" and result["client_processes"] == 2
    assert result["answered"] == 5 and result["errors"] == 0  # 3 + 2 calls, every one counted
    assert result["client_cpu_ms_per_call"] > 0 and result["server_cpu_ms_per_call"] > 0


def test_the_load_bench_refuses_bad_counts(capsys):
    assert bench.main(["--load", "2", "--calls", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert bench.main(["--load", "2", "--client-processes", "3"]) == 2
    assert "between 1 and the number of users" in capsys.readouterr().err
