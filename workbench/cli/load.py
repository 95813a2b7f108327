"""Many users at once (issue 15): ``python -m workbench.bench --load N [--calls M]``.

Starts the app (``app.py``, the shipped weights) in its own process on a free local port,
then runs ``N`` concurrent ``gradio_client`` users calling ``/verify`` (two example references
against a third example signature) until ``M`` calls have been made, and reports calls per
second, the 50th and 95th percentile latency, errors, and the server's resident memory at
the start, at its peak and at the end (from ``/proc``). gradio_client comes with the test
requirements (``requirements-test.txt``).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from workbench.config import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak (VmRSS, VmHWM) of process ``pid``, in MB."""
    found = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time process ``pid`` has used (``/proc/<pid>/stat``), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout:.0f} s")


def _users(
    url: str, users: int, calls: int, download: bool, endpoint: str
) -> tuple[list[float], list[str], float, float, float]:
    """``users`` client threads in this process making ``calls`` calls in all.

    Returns (latencies in seconds, errors, wall start and end as ``time.time()``, this
    process's CPU seconds over the run).
    """
    import resource

    from gradio_client import Client, handle_file

    references = [handle_file(str(EXAMPLES_DIR / f"writer1_genuine_{i}.png")) for i in (1, 2)]
    questioned = handle_file(str(EXAMPLES_DIR / "writer1_genuine_3.png"))
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    remaining = [calls]

    def user() -> None:
        # ssl_verify off: the URL is plain http on this machine, so nothing is verified either
        # way, but gradio_client otherwise builds a certificate store for every request it
        # makes (about 160 ms of the client's CPU per call, measured), which the clients,
        # sharing the server's cores, would take from the server.
        client = Client(url, verbose=False, download_files=download, ssl_verify=False)
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            began = time.perf_counter()
            try:
                client.predict(
                    references=references,
                    questioned=questioned,
                    threshold=0.5,
                    api_name=f"/{endpoint}",
                )
                with lock:
                    latencies.append(time.perf_counter() - began)
            except Exception as error:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")

    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    threads = [threading.Thread(target=user) for _ in range(users)]
    began = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return latencies, errors, began, ended, usage.ru_utime + usage.ru_stime - cpu


def _share(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal whole shares, larger first."""
    return [total // parts + (i < total % parts) for i in range(parts)]


def run_load(
    users: int,
    calls: int,
    *,
    weights: str | None = None,
    download: bool = True,
    endpoint: str = "verify",
    processes: int = 1,
) -> dict:
    """Serve the app, run ``users`` concurrent clients for ``calls`` ``/verify`` calls in all;
    with ``download`` off the clients take each answer without fetching its images (a
    program that wants the verdict and the scores); ``endpoint`` ``verify_data`` asks for the
    verdict as data, without images. ``processes`` > 1 spreads the users (and the calls) over
    that many client processes, so that the clients' own Python is not one interpreter lock
    shared by every user.

    Returns:
        {"users", "calls", "answered", "errors", "calls_per_s", "p50_s", "p95_s", "max_s",
        "server_cpu_ms_per_call", "client_cpu_ms_per_call", "server_rss_start_mb",
        "server_rss_end_mb", "server_rss_peak_mb", "first_error", ...}.
    """
    try:
        import gradio_client  # noqa: F401
    except ImportError:
        raise RuntimeError(
            "--load needs gradio_client: pip install -r requirements-test.txt"
        ) from None
    if users < 1 or calls < 1:
        raise ValueError("--load and --calls must be at least 1.")
    if not 1 <= processes <= users:
        raise ValueError("--client-processes must lie between 1 and the number of users.")
    port = _free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    if weights:
        env["SIGNATURE_WEIGHTS"] = str(weights)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for(url, server)
        start_memory = _memory_mb(server.pid)
        start_cpu = _cpu_seconds(server.pid)
        if processes == 1:
            runs = [_users(url, users, calls, download, endpoint)]
        else:
            import concurrent.futures

            with concurrent.futures.ProcessPoolExecutor(processes) as pool:
                jobs = [
                    pool.submit(_users, url, u, c, download, endpoint)
                    for u, c in zip(_share(users, processes), _share(calls, processes))
                ]
                runs = [job.result() for job in jobs]
        latencies = [x for run in runs for x in run[0]]
        errors = [e for run in runs for e in run[1]]
        wall = max(run[3] for run in runs) - min(run[2] for run in runs)
        client_cpu = sum(run[4] for run in runs)
        end_memory = _memory_mb(server.pid)
        end_cpu = _cpu_seconds(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    ordered = sorted(latencies)
    return {
        "users": users,
        "calls": calls,
        "answered": len(latencies),
        "downloads": download,
        "endpoint": endpoint,
        "client_processes": processes,
        "errors": len(errors),
        "calls_per_s": len(latencies) / wall if wall > 0 else 0.0,
        "p50_s": statistics.median(ordered) if ordered else None,
        "p95_s": ordered[int(0.95 * (len(ordered) - 1))] if ordered else None,
        "max_s": ordered[-1] if ordered else None,
        # The server's own CPU per answered call: what the clients (same machine) do not use.
        "server_cpu_ms_per_call": (
            1000 * (end_cpu - start_cpu) / len(latencies)
            if latencies and None not in (start_cpu, end_cpu)
            else None
        ),
        # The clients' CPU per answered call (every client process, all their threads).
        "client_cpu_ms_per_call": 1000 * client_cpu / len(latencies) if latencies else None,
        "server_rss_start_mb": start_memory.get("VmRSS"),
        "server_rss_end_mb": end_memory.get("VmRSS"),
        "server_rss_peak_mb": end_memory.get("VmHWM"),
        "first_error": errors[0] if errors else None,
    }
