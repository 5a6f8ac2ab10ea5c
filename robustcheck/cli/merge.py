"""`python -m robustcheck merge reports-*/robustcheck.json --out reports/`: one report from a sharded run.

Reads every shard's record, merges them (`shard_merge.py`), copies the counterexample files
into the output folder, writes robustcheck.json and robustcheck.html there, prints the
summary, and exits as pytest would have: 0 when the run passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from robustcheck.paths import safe_name
from robustcheck.record import Counterexample, RunRecord, is_bad, load_record
from robustcheck.shard_merge import MergeError, merge_records
from robustcheck.typed_data import PlainDataError

HELP = "merge the records of a sharded run (--robustcheck-shard K/N) into one report"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m robustcheck merge",
                                     description="Merge the robustcheck.json records of a sharded run.")
    parser.add_argument("records", nargs="+", type=Path, help="robustcheck.json of every shard")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="folder for the merged reports")
    args = parser.parse_args(argv)
    records = []
    for path in args.records:
        try:
            records.append(load_record(path))
        except (OSError, ValueError, PlainDataError) as exc:
            print(f"{path}: not a robustcheck record ({exc})", file=sys.stderr)
            return 2
    try:
        merged = merge_records(records, [str(p) for p in args.records])
    except MergeError as exc:
        print(f"robustcheck merge: {exc}", file=sys.stderr)
        return 2
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    merged = _with_files(merged, out, [p.parent for p in args.records])
    merged = replace(merged, run=replace(merged.run, report_dir=str(out)))
    from robustcheck.report import write_reports
    from robustcheck.report.console import render_summary
    from robustcheck.report.terminal import make_console

    write_reports(merged, out / "robustcheck.json", out / "robustcheck.html")
    for model in merged.models:  # what pytest prints for a failed item, which the shards only partly knew
        for item in model.items:
            if is_bad(item.verdict):
                print(f"{item.verdict.upper()} {item.nodeid}\n{item.message}\n")
    render_summary(merged, console=make_console(sys.stdout), html_path=out / "robustcheck.html",
                   json_path=out / "robustcheck.json")
    return 0 if merged.verdict in ("passed", "skipped") else 1


def _with_files(record: RunRecord, out: Path, folders: list[Path]) -> RunRecord:
    """The record with its counterexamples' .npz/.png copied under `out` (the shards' report
    folders are usually CI artifacts downloaded elsewhere than where they were written)."""
    for model in record.models:
        target = out / "counterexamples" / safe_name(model.name)
        model.counterexamples = [_copy(c, target, folders) for c in model.counterexamples]
    return record


def _copy(c: Counterexample, target: Path, folders: list[Path]) -> Counterexample:
    files: dict[str, str | None] = {"npz": c.npz, "png": c.png}
    for key, name in list(files.items()):
        if not name:
            continue
        here = [Path(name)] + [f / "counterexamples" / safe_name(c.model) / Path(name).name for f in folders]
        found = next((p for p in here if p.is_file()), None)
        if found is not None:
            target.mkdir(parents=True, exist_ok=True)
            if found.resolve() != (target / found.name).resolve():
                shutil.copyfile(found, target / found.name)
            files[key] = str(target / found.name)
    return replace(c, npz=files["npz"], png=files["png"])
