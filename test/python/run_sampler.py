"""Runs examples/pytorch/schedule_sampler.py's command line several times in one process (torch is
imported once), for test/python/scheduleSampler.test.ts.

    python3 run_sampler.py RUNS.json RESULTS.json
RUNS.json: [["EXPORT_DIR", "--epochs", "6", ...], ...]; RESULTS.json: [{"code", "stdout", "stderr"}, ...].
"""
import contextlib
import io
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ inside the repository
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "pytorch"))
import schedule_sampler  # noqa: E402

with open(sys.argv[1], encoding="utf-8") as f:
    runs = json.load(f)
results = []
for args in runs:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = schedule_sampler.main(args)
        except SystemExit as exit:  # argparse errors
            code = exit.code
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(results, f)
