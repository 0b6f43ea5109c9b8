"""``python -m tests.fuzz TARGET [--seconds N | --runs N] [--seed S] [--corpus DIR]``: one target under
libFuzzer (atheris). The seed corpus is written by code into the corpus directory (a temporary one
unless given), and crash inputs go to ``--artifacts`` (default: the current directory);
``--replay FILE`` runs one such input again. The exit status is 0 when the run ended clean and
non-zero when the target broke an invariant."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import sys
import tempfile
from pathlib import Path

from tests.fuzz import TARGETS

_INSTRUMENTED = ["offline_service", "tests.fuzz", "json", "zipfile", "base64", "bz2", "lzma"]
_CANARY = "_canary"  # a target that fails on purpose, for the test that a finding fails the run


def _write_seeds(module: object, corpus: Path) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = module.seeds()  # type: ignore[attr-defined]
    for seed in seeds:
        (corpus / hashlib.sha256(seed).hexdigest()[:16]).write_bytes(seed)
    return len(seeds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("target", choices=(*TARGETS, _CANARY), metavar="TARGET", help=", ".join(TARGETS))
    parser.add_argument("--seconds", type=int, default=60, help="stop after this long (default 60)")
    parser.add_argument("--runs", type=int, help="stop after this many inputs instead")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (default 1)")
    parser.add_argument("--corpus", type=Path, help="corpus directory, kept between runs if given")
    parser.add_argument("--artifacts", type=Path, default=Path("."), help="where crash inputs go")
    parser.add_argument("--replay", type=Path, help="run this one input (a crash file) and stop")
    args = parser.parse_args(argv)

    import atheris  # imported here: the package's other modules must not need it

    # Coverage of the project and of the standard library code it parses with; instrumenting
    # everything loaded (starlette, jinja2, ...) would take longer than a short run.
    with atheris.instrument_imports(include=_INSTRUMENTED):
        module = importlib.import_module(f"{__package__}.{args.target}")
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{args.target}-") as tmp:
        corpus = args.corpus or Path(tmp)
        if args.replay is None:
            count = _write_seeds(module, corpus)
            print(f"fuzz {args.target}: {count} seeds in {corpus}", file=sys.stderr, flush=True)
        args.artifacts.mkdir(parents=True, exist_ok=True)
        libfuzzer = [
            sys.argv[0],
            f"-seed={args.seed}",
            f"-max_len={module.MAX_LEN}",
            f"-artifact_prefix={args.artifacts.resolve()}/{args.target}-",
            "-timeout=20",  # seconds for one input: a hang is a finding too
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
        ]
        libfuzzer.append(f"-runs={args.runs}" if args.runs is not None else f"-max_total_time={args.seconds}")
        libfuzzer.append(str(args.replay or corpus))  # libFuzzer runs a file once, fuzzes a directory
        atheris.Setup(libfuzzer, module.one_input)
        atheris.Fuzz()  # libFuzzer ends the process itself
    return 0


if __name__ == "__main__":
    sys.exit(main())
