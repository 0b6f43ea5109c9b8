"""The short fuzz run of ``make test``: each target under libFuzzer for a fixed number of inputs and
a fixed seed, each in its own process (atheris can set up only one fuzzer per process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from offline_service.errors import OfflineServiceError
from offline_service.fileformat import messages
from tests.fuzz import TARGETS, archives, json_bodies, request_files, response_files
from tests.fuzz._signing import MACHINE_SECRET, SERVICE_SECRET, token_of

ROOT = Path(__file__).resolve().parents[2]
RUNS = 5_000
MODULES: dict[str, ModuleType] = {
    "request_files": request_files,
    "response_files": response_files,
    "archives": archives,
    "json_bodies": json_bodies,
}


def fuzz(target: str, artifacts: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.fuzz", target, "--artifacts", str(artifacts), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )


def test_every_target_is_listed_and_run_by_make_fuzz() -> None:
    assert set(MODULES) == set(TARGETS)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"FUZZ_TARGETS := {' '.join(TARGETS)}\n" in makefile


@pytest.mark.parametrize("target", TARGETS)
def test_every_seed_keeps_the_invariants(target: str) -> None:
    module = MODULES[target]
    seeds = module.seeds()
    assert len(seeds) >= 4 and all(len(s) <= module.MAX_LEN for s in seeds)
    for seed in seeds:
        module.one_input(seed)


def test_the_file_seeds_are_accepted_so_the_round_trip_checks_run() -> None:
    for seed in request_files.seeds():
        messages.parse_request(token_of(seed, request_files._HEADER, MACHINE_SECRET))
    for seed in response_files.seeds():
        messages.parse_response(token_of(seed, response_files._HEADER, SERVICE_SECRET), response_files._KEYS)
    with pytest.raises(OfflineServiceError):
        messages.parse_request(request_files.seeds()[0][1:-2])  # and a cut signature is not


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_a_short_fuzz_run_is_clean(target: str, tmp_path: Path) -> None:
    run = fuzz(target, tmp_path, f"--runs={RUNS}", "--seed=1")
    assert run.returncode == 0, run.stdout[-4000:]
    assert f"Done {RUNS} runs" in run.stdout
    assert list(tmp_path.iterdir()) == []  # no crash, leak or timeout input written


@pytest.mark.slow
def test_a_broken_invariant_fails_the_run_and_keeps_the_input(tmp_path: Path) -> None:
    run = fuzz("_canary", tmp_path, "--runs=100", "--seed=1")
    assert run.returncode != 0
    assert "the canary's invariant broke" in run.stdout
    [crash] = tmp_path.iterdir()
    assert crash.name.startswith("_canary-crash-") and crash.read_bytes().startswith(b"boom")
    replay = fuzz("_canary", tmp_path / "again", f"--replay={crash}")
    assert replay.returncode != 0 and "the canary's invariant broke" in replay.stdout
