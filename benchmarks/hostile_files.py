"""Hostile files against the readers and the model loader: outcome, peak memory and time, each beside a
baseline tree measured in the same run.

    python -m benchmarks.hostile_files --model_dir=runs/demo --work_dir=../runs/hostile \
        --baseline_root=../quickdraw-tf-baseline --rounds=3

--model_dir is a trained run (`make demo` writes runs/demo); --baseline_root another checkout of the
project (e.g. `git archive <commit> | tar -x -C DIR`), whose commands are run the same way. The files,
built in --work_dir:

  npz_426      a 426-byte .npz whose `train` member is 200,000 int8 zeros
  npz_bomb     a 1.04 MB .npz of four zero-filled 256 MiB uint8 members (deflate, level 6)
  model dirs   copies of --model_dir: unchanged (the reference); preprocessing.json with max_points -1000,
               or "50" (a string); classes.txt with its last line dropped, 10 million lines (~90 MB), a
               blank line, a repeated word, a word with a trailing space

Measured for each tree, the trees alternating, --rounds times (the figure is the median, with the range);
a command still running after 60 s is stopped and reported so, with the peak sampled until then:

  reader   the npz files through formats.read_source_records + parse_record, in a process without
           TensorFlow: records, rejections, wall seconds, peak RSS (wait4's ru_maxrss)
  predict  python -m quickdraw_tf.predict --input=<npz>: exit status, wall seconds, peak RSS, and the
           bytes of rejected-predict.ndjson
  load     Predictor.load(<model dir>) then the probabilities of two real drawings, in a process of its
           own: what happened, the seconds from the call (TensorFlow already imported), peak RSS
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys

import numpy as np

from benchmarks.process_memory import REPO_ROOT, measure
from tests.npz_payloads import zero_bomb

MB = 1e6
TIME_LIMIT_S = 60.0  # a baseline reader can take hours over an archive bomb: it is stopped and reported so
SAMPLE = os.path.join("data", "sample", "simplified", "lamnguyen5464-Sketch-dataset", "belt.ndjson")
READER_CHILD = """
import json, sys, time
from quickdraw_tf.data import formats
start, records, rejected = time.perf_counter(), 0, 0
with open(sys.argv[1], "rb") as f:
    for record in formats.read_source_records(f, sys.argv[1], "npz"):
        records += 1
        try:
            formats.parse_record(record)
        except ValueError:
            rejected += 1
seconds = time.perf_counter() - start
print("RESULT", json.dumps({"records": records, "rejected": rejected, "seconds": seconds}))
"""
LOAD_CHILD = """
import json, sys, time
from quickdraw_tf import quiet
quiet.import_tensorflow_quietly()
import numpy as np
from quickdraw_tf.data import formats
from quickdraw_tf.inference.predictor import Predictor
drawings = [d for _, d in zip(range(2), formats.iter_drawings(sys.argv[2]))]
start, what = time.perf_counter(), "load"
try:
    predictor = Predictor.load(sys.argv[1])
    what = "predict"
    rows = predictor.probabilities([predictor.prepare(d) for d in drawings])
    outcome = f"loaded; the two drawings' probabilities {'are equal' if np.allclose(*rows) else 'differ'}"
except Exception as error:
    first = (str(error).strip().splitlines() or [""])[0][:150]
    outcome = f"{what} failed: {type(error).__name__}: {first}"
print("RESULT", json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start}))
"""


# ---------------------------------------------------------------------------------------------------
# The files


def npz_426() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train=np.zeros(200_000, np.int8))
    return buffer.getvalue()


def npz_bomb() -> bytes:
    return zero_bomb(compresslevel=6)


def _edit_json(path: str, **changes) -> None:
    with open(path, encoding="utf-8") as f:
        values = json.load(f)
    values.update(changes)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f)


def _write_words(path: str, words: list[str]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{word}\n" for word in words))


def model_dirs(model_dir: str, work_dir: str) -> dict[str, str]:
    """Hostile copies of model_dir (only its small files differ; model.keras is linked, not copied)."""
    with open(os.path.join(model_dir, "classes.txt"), encoding="utf-8") as f:
        words = f.read().splitlines()

    def ten_million_lines(path: str) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for start in range(0, 10_000_000, 100_000):
                f.write("".join(f"w{n}\n" for n in range(start, start + 100_000)))

    def classes(changed: list[str]):
        return lambda d: _write_words(os.path.join(d, "classes.txt"), changed)

    def preprocessing(**changes):
        return lambda d: _edit_json(os.path.join(d, "preprocessing.json"), **changes)

    edits = {
        "reference": lambda d: None,
        "max_points -1000": preprocessing(max_points=-1000),
        'max_points "50"': preprocessing(max_points="50"),
        f"{len(words) - 1}-line classes.txt": classes(words[:-1]),
        "10M-line classes.txt": lambda d: ten_million_lines(os.path.join(d, "classes.txt")),
        "a blank line": classes([*words[:-1], ""]),
        "a repeated word": classes([*words[:-1], words[0]]),
        "a trailing space": classes([*words[:-1], words[-1] + " "]),
    }
    dirs = {}
    for number, (name, edit) in enumerate(edits.items()):
        target = os.path.join(work_dir, f"model-{number}")
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        for entry in ("config.json", "preprocessing.json", "classes.txt", "model.keras"):
            source = os.path.abspath(os.path.join(model_dir, entry))
            if entry == "model.keras":
                os.symlink(source, os.path.join(target, entry))
            else:
                shutil.copyfile(source, os.path.join(target, entry))
        edit(target)
        dirs[name] = target
    return dirs


# ---------------------------------------------------------------------------------------------------
# Measuring


def _stopped(measured) -> dict:
    return {"outcome": f"stopped at the {TIME_LIMIT_S:.0f} s limit"} if measured.timed_out else {}


def _peak_mb(measured) -> float:
    """wait4's maxrss, or the sampled peak of the tree when the command was killed at the time limit."""
    return (measured.maxrss or measured.peak_tree_rss) / MB


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT ") :]) if lines else {"outcome": "exit: " + stdout[-300:].strip()}


def run_reader(root: str, path: str, log: str) -> dict:
    measured = measure([sys.executable, "-c", READER_CHILD, path], log, root=root, time_limit=TIME_LIMIT_S)
    return {**_result(measured.stdout), **_stopped(measured), "maxrss_mb": _peak_mb(measured),
            "wall_s": measured.wall_s}


def run_predict(root: str, model_dir: str, path: str, work: str, log: str) -> dict:
    output = os.path.join(work, "predictions.csv")
    rejected = os.path.join(work, "rejected-predict.ndjson")
    for stale in (output, rejected):
        if os.path.exists(stale):
            os.remove(stale)
    cmd = [sys.executable, "-m", "quickdraw_tf.predict", f"--model_dir={model_dir}", f"--input={path}",
           f"--output={output}"]
    measured = measure(cmd, log, root=root, time_limit=TIME_LIMIT_S)
    lines = measured.stdout.strip().splitlines()
    return {
        "outcome": f"exit {measured.returncode}: {lines[-1][:150] if lines else ''}",
        **_stopped(measured),
        "wall_s": measured.wall_s,
        "maxrss_mb": _peak_mb(measured),
        "rejected_mb": os.path.getsize(rejected) / MB if os.path.exists(rejected) else 0.0,
    }


def run_load(root: str, model_dir: str, log: str) -> dict:
    cmd = [sys.executable, "-c", LOAD_CHILD, model_dir, SAMPLE]
    measured = measure(cmd, log, root=root, time_limit=TIME_LIMIT_S)
    return {**_result(measured.stdout), **_stopped(measured), "maxrss_mb": _peak_mb(measured)}


def _summary(results: list[dict], key: str) -> str:
    values = [r[key] for r in results if key in r]
    if not values:
        return "-"
    return f"{statistics.median(values):,.2f} ({min(values):,.2f}-{max(values):,.2f})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_dir", default="runs/demo")
    parser.add_argument("--work_dir", default=os.path.join("..", "runs", "hostile"))
    parser.add_argument("--baseline_root", default=None, help="Another checkout, measured the same way.")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    work = os.path.abspath(args.work_dir)
    os.makedirs(work, exist_ok=True)
    files = {}
    for name, make in (("npz_426", npz_426), ("npz_bomb", npz_bomb)):
        files[name] = os.path.join(work, f"sketchrnn_{name}.npz")
        with open(files[name], "wb") as f:
            f.write(make())
    dirs = model_dirs(os.path.abspath(args.model_dir), work)
    trees = {"this tree": REPO_ROOT}
    if args.baseline_root:
        trees["baseline"] = os.path.abspath(args.baseline_root)
    rows: dict[tuple[str, str, str], list[dict]] = {}
    for round_number in range(args.rounds):
        for tree, root in trees.items():
            log = os.path.join(work, f"{tree.replace(' ', '_')}.log")
            for name, path in files.items():
                rows.setdefault(("reader", name, tree), []).append(run_reader(root, path, log))
                predicted = run_predict(root, dirs["reference"], path, work, log)
                rows.setdefault(("predict", name, tree), []).append(predicted)
            for name, model_dir in dirs.items():
                rows.setdefault(("load", name, tree), []).append(run_load(root, model_dir, log))
        print(f"round {round_number + 1} of {args.rounds} done", file=sys.stderr, flush=True)
    sizes = {name: os.path.getsize(path) for name, path in files.items()}
    print(f"files: {', '.join(f'{name} {size:,} bytes' for name, size in sizes.items())}")
    print(f"{'what':8} {'input':22} {'tree':10} {'seconds':>22} {'peak RSS MB':>26}  outcome")
    for (what, name, tree), results in rows.items():
        seconds = _summary(results, "seconds" if what != "predict" else "wall_s")
        extra = f", rejected file {_summary(results, 'rejected_mb')} MB" if what == "predict" else ""
        if what == "reader":
            extra = f"; {results[-1].get('records')} records, {results[-1].get('rejected')} rejected"
        outcomes = sorted({r.get("outcome", "") for r in results})
        print(f"{what:8} {name:22} {tree:10} {seconds:>22} {_summary(results, 'maxrss_mb'):>26}  "
              f"{' | '.join(o for o in outcomes if o) or 'read'}{extra}")


if __name__ == "__main__":
    main()
