#!/usr/bin/env python3
"""Train on a clipcurate dynamic selection (CRAIG/AdaCore with epochs, CREST, GRAFT, SeTa,
augmentation coresets) in PyTorch, following its schedule.

`curate export` writes, for a dynamic selection, every sample any round of the schedule uses (the
static picks first, then the other schedule keys) and copies `schedule.jsonl` beside them. This file
reads such an export folder and yields, batch by batch, *export positions* (row i of
manifest.jsonl / manifest.csv, line i of keys.txt, the i-th sample of the WebDataset shards in
order) with the loss weight of each position.

Which round when (docs/schedules.md):
  - progress is epoch / epochs for `unit: "epoch"` schedules, step / steps for `unit: "step"`
    (CREST: rounds can be shorter than an epoch, so the round is looked up at every step);
  - the round in force is the last one whose `start` <= progress;
  - before the first round's start (CREST's warm-up epoch) the trainer uses every exported sample,
    weight 1 (CREST warms up on the full data; the export's union is the data it has);
  - a key may appear several times in a round with different weights (CREST's overlapping random
    subsets): each occurrence is its own entry, so weights go with positions in the round, never
    through a key -> weight map.

Use:
    schedule = ExportSchedule("subset/")
    sampler = ScheduleBatchSampler(schedule, epochs=10, batch_size=128)
    loader = DataLoader(WeightedPositions(my_dataset), batch_sampler=sampler)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for (images, captions), weights in loader:
            loss = (per_sample_loss(images, captions) * weights).mean()

`my_dataset[i]` must be export position i. Command line, a per-epoch summary of what it yields:
    python3 schedule_sampler.py EXPORT_DIR [--epochs E] [--batch-size B] [--steps S]

Needs only the standard library, numpy and torch (no pyarrow: parquet exports need `keys=`).
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import tarfile
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

SCHEDULE_FORMAT = "clipcurate-schedule"
SCHEDULE_VERSION = 1
WARMUP = -1
# Progress values computed two ways (epoch / epochs here, epoch / total in the proxy run) are equal
# doubles when the fractions are equal; the slack only absorbs sums a trainer may accumulate.
SLACK = 1e-12


class ScheduleError(ValueError):
    """The export folder or its schedule cannot be used as asked; the message says why."""


@dataclass
class Round:
    """One round of the schedule in export positions; `number` is WARMUP for the warm-up."""

    number: int
    start: float
    end: float
    positions: np.ndarray  # int64, one entry per schedule entry (a key may repeat)
    weights: np.ndarray  # float64, the loss weight of each entry
    batches: Optional[np.ndarray]  # int64 mini-batch coreset id per entry (CREST), else None
    dropped: int = 0  # entries whose key the export left out (skipped or rejected in review)

    def __len__(self) -> int:
        return len(self.positions)


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ScheduleError(f"{path} is missing: is this a folder written by `curate export`?") from None
    except json.JSONDecodeError as err:
        raise ScheduleError(f"{path}: not JSON ({err})") from None


def read_schedule(path: str) -> Tuple[dict, List[dict]]:
    """The header and round lines of a schedule.jsonl, checked as clipcurate's readSchedule does."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    except FileNotFoundError:
        raise ScheduleError(
            f"{path} is missing: only dynamic selections have a schedule "
            "(CRAIG/AdaCore/GRAFT/augmentation coresets with epochs > 0, CREST, SeTa)"
        ) from None
    records = []
    for n, line in lines:
        try:
            records.append((n, json.loads(line)))
        except json.JSONDecodeError:
            raise ScheduleError(f"{path}:{n}: not JSON") from None
    if not records:
        raise ScheduleError(f"{path}: empty schedule file")
    (n, header), rounds = records[0], records[1:]
    if header.get("format") != SCHEDULE_FORMAT:
        raise ScheduleError(f"{path}:{n}: not a {SCHEDULE_FORMAT} file (format {header.get('format')})")
    if header.get("version") != SCHEDULE_VERSION:
        raise ScheduleError(f"{path}:{n}: schedule version {header.get('version')}, this reads {SCHEDULE_VERSION}")
    if header.get("unit") not in ("epoch", "step"):
        raise ScheduleError(f"{path}:{n}: unit {header.get('unit')!r} is neither 'epoch' nor 'step'")
    if len(rounds) != header.get("rounds") or not rounds:
        raise ScheduleError(f"{path}: header announces {header.get('rounds')} rounds, found {len(rounds)}")
    previous = 0.0
    for n, r in rounds:
        if not (0 <= r["start"] < 1 and r["start"] <= r["end"] <= 1) or r["start"] < previous:
            raise ScheduleError(f"{path}:{n}: round {r.get('round')} spans [{r['start']}, {r['end']}) out of order")
        if len(r["keys"]) != len(r["weights"]):
            raise ScheduleError(f"{path}:{n}: round {r.get('round')} needs one weight per key")
        previous = r["start"]
    return header, [r for _, r in rounds]


def export_keys(export_dir: str, provenance: dict) -> Tuple[List[str], str]:
    """Catalog keys in export-position order, and the file they came from."""
    fmt = provenance.get("export", {}).get("format")
    if fmt in ("jsonl", "csv"):
        path = os.path.join(export_dir, f"manifest.{fmt}")
        with open(path, encoding="utf-8", newline="") as f:
            if fmt == "jsonl":
                return [json.loads(line)["key"] for line in f if line.strip()], path
            return [row["key"] for row in csv.DictReader(f)], path
    if fmt == "keys":
        path = os.path.join(export_dir, "keys.txt")
        # A key holding a line break is written as its export name; provenance.json maps it back.
        renamed = provenance["export"]["names"].get("renamedInKeysTxt", [])
        back = {r["name"]: r["key"] for r in renamed}
        with open(path, encoding="utf-8", newline="\n") as f:
            names = f.read().split("\n")
        if names and names[-1] == "":
            names.pop()
        return [back.get(n, n) for n in names], path
    if fmt == "webdataset":
        shards = [f["name"] for f in provenance["export"]["files"] if f["name"].endswith(".tar")]
        keys = []
        for shard in shards:
            with tarfile.open(os.path.join(export_dir, shard), "r|") as tar:
                for member in tar:
                    # NAME.curate.json holds clipcurate's facts; a source's own NAME.json is kept as it was.
                    if member.name.endswith(".curate.json"):
                        keys.append(json.load(tar.extractfile(member))["key"])
        return keys, ", ".join(shards)
    if fmt == "parquet":
        raise ScheduleError(
            f"{export_dir} is a parquet export: read manifest.parquet's key column yourself (pyarrow, pandas) "
            "and pass it as ExportSchedule(dir, keys=...), or export with --format jsonl, csv or keys"
        )
    raise ScheduleError(f"{export_dir}/provenance.json: unknown export format {fmt!r}")


class ExportSchedule:
    """An export folder's schedule, in export positions: `rounds`, `warmup`, `round_at(progress)`."""

    def __init__(self, export_dir: str, keys: Optional[Sequence[str]] = None):
        provenance = _read_json(os.path.join(export_dir, "provenance.json"))
        self.schedule_file = os.path.join(export_dir, "schedule.jsonl")
        self.header, lines = read_schedule(self.schedule_file)
        if keys is None:
            keys, self.rows_file = export_keys(export_dir, provenance)
        else:
            self.rows_file = "the keys given"
        self.keys = list(keys)
        position = {}
        for i, k in enumerate(self.keys):
            if k in position:
                raise ScheduleError(f"{self.rows_file}: key {k!r} appears twice (positions {position[k]} and {i})")
            position[k] = i
        # Keys the export left out on purpose: the trainer leaves them out of their rounds.
        exported = provenance.get("export", {})
        absent = {s["key"] for s in exported.get("skipped", [])} | set(exported.get("review", {}).get("rejected", []))
        self.rounds = [self._round(line, position, absent) for line in lines]
        n = len(self.keys)
        self.warmup = Round(WARMUP, 0.0, self.rounds[0].start, np.arange(n, dtype=np.int64), np.ones(n), None)
        self._starts = np.array([r.start for r in self.rounds])

    def _round(self, line: dict, position: dict, absent: set) -> Round:
        keep, dropped = [], 0
        for j, key in enumerate(line["keys"]):
            if key in position:
                keep.append(j)
            elif key in absent:
                dropped += 1
            else:
                raise ScheduleError(
                    f"{self.schedule_file}: round {line['round']} names key {key!r}, which is not in {self.rows_file} "
                    "and not listed as skipped or rejected in provenance.json: export the selection again "
                    "(curate export writes every schedule key of a dynamic selection)"
                )
        batches = line.get("batches")
        return Round(
            number=int(line["round"]),
            start=float(line["start"]),
            end=float(line["end"]),
            positions=np.array([position[line["keys"][j]] for j in keep], dtype=np.int64),
            weights=np.array([line["weights"][j] for j in keep], dtype=np.float64),
            batches=np.array([batches[j] for j in keep], dtype=np.int64) if batches is not None else None,
            dropped=dropped,
        )

    @property
    def unit(self) -> str:
        return self.header["unit"]

    @property
    def params(self) -> dict:
        return self.header.get("provenance", {}).get("params", {})

    def round_index(self, progress: np.ndarray) -> np.ndarray:
        """Index into `rounds` in force at each progress value; WARMUP before the first start."""
        progress = np.asarray(progress, dtype=np.float64)
        if np.any(~np.isfinite(progress)) or np.any(progress < 0) or np.any(progress > 1):
            raise ScheduleError(f"training progress must lie in [0, 1], got {progress}")
        return np.searchsorted(self._starts, progress + SLACK, side="right") - 1

    def round_at(self, progress: float) -> Round:
        i = int(self.round_index(np.array([progress]))[0])
        return self.warmup if i == WARMUP else self.rounds[i]

    def round_by_index(self, i: int) -> Round:
        return self.warmup if i == WARMUP else self.rounds[i]


class ScheduleBatchSampler(Sampler):
    """Batches of (export position, weight) pairs for one epoch at a time (call `set_epoch`).

    Epoch-unit schedules: epoch e trains one shuffled pass over the round in force at e / epochs.
    Step-unit schedules: `steps` steps (default: the proxy run's) split evenly over `epochs`; step t
    draws `batch_size` entries from the round in force at t / steps, walking a fresh shuffle of that
    round from its first step on (reshuffled when it runs out), so every round gets its share of
    steps however short. `exact_batches` (CREST) yields the round's mini-batch coresets as batches.
    """

    def __init__(
        self,
        schedule: ExportSchedule,
        epochs: Optional[int] = None,
        batch_size: Optional[int] = None,
        steps: Optional[int] = None,
        seed: int = 0,
        exact_batches: bool = False,
    ):
        self.schedule = schedule
        params = schedule.params
        default_epochs = params.get("epochs") if isinstance(params.get("epochs"), int) else None
        if schedule.unit == "epoch":
            default_epochs = int(schedule.header["total"])
        self.epochs = int(epochs if epochs is not None else default_epochs or 1)
        self.batch_size = int(batch_size if batch_size is not None else params.get("batchSize", 256))
        if self.epochs < 1 or self.batch_size < 1:
            raise ScheduleError(f"epochs ({self.epochs}) and batch size ({self.batch_size}) must be >= 1")
        if schedule.unit == "epoch" and steps is not None:
            raise ScheduleError("steps applies to step-unit schedules only: this schedule changes rounds per epoch")
        self.steps = int(steps if steps is not None else schedule.header["total"])
        if schedule.unit == "step" and self.steps < self.epochs:
            raise ScheduleError(f"{self.steps} steps cannot cover {self.epochs} epochs")
        if exact_batches and any(r.batches is None for r in schedule.rounds):
            raise ScheduleError("exact_batches needs a schedule with mini-batch ids per key (CREST)")
        self.seed = seed
        self.exact_batches = exact_batches
        self.epoch = 0
        if schedule.unit == "step":
            progress = np.arange(self.steps, dtype=np.float64) / self.steps
            self._round_of_step = schedule.round_index(progress)
            first = {}
            for t, r in enumerate(self._round_of_step.tolist()):
                first.setdefault(r, t)
            self._first_step = first

    def set_epoch(self, epoch: int) -> None:
        if not 0 <= epoch < self.epochs:
            raise ScheduleError(f"epoch {epoch} is outside 0…{self.epochs - 1}")
        self.epoch = epoch

    def epoch_steps(self, epoch: int) -> range:
        """Global step numbers of an epoch (step-unit schedules)."""
        return range(epoch * self.steps // self.epochs, (epoch + 1) * self.steps // self.epochs)

    def plan(self, epoch: int) -> List[Tuple[int, np.ndarray, np.ndarray]]:
        """The epoch's batches: (round number or WARMUP, positions, weights)."""
        if self.schedule.unit == "epoch":
            i = int(self.schedule.round_index(np.array([epoch / self.epochs]))[0])
            r = self.schedule.round_by_index(i)
            rng = np.random.default_rng([self.seed, epoch])
            if self.exact_batches and r.batches is not None:
                groups = self._groups(r, rng.permutation(self._group_ids(r)))
                return [(r.number, r.positions[g], r.weights[g]) for g in groups]
            order = rng.permutation(len(r))
            chunks = [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]
            return [(r.number, r.positions[c], r.weights[c]) for c in chunks]
        return [self._step_batch(t) for t in self.epoch_steps(epoch)]

    def _step_batch(self, t: int) -> Tuple[int, np.ndarray, np.ndarray]:
        i = int(self._round_of_step[t])
        r = self.schedule.round_by_index(i)
        k = t - self._first_step[i]  # the round's k-th step
        if self.exact_batches and r.number != WARMUP:
            ids = self._group_ids(r)
            cycle, j = divmod(k, len(ids))
            group = np.random.default_rng([self.seed, i + 1, cycle]).permutation(ids)[j]
            chosen = np.flatnonzero(r.batches == group)
        else:
            n = len(r)
            if n == 0:
                raise ScheduleError(f"round {r.number} has no entry left in this export")
            index = np.arange(k * self.batch_size, (k + 1) * self.batch_size)
            cycles, offsets = np.divmod(index, n)
            chosen = np.empty(len(index), dtype=np.int64)
            for cycle in np.unique(cycles).tolist():
                perm = np.random.default_rng([self.seed, i + 1, cycle]).permutation(n)
                chosen[cycles == cycle] = perm[offsets[cycles == cycle]]
        return r.number, r.positions[chosen], r.weights[chosen]

    @staticmethod
    def _group_ids(r: Round) -> np.ndarray:
        return np.unique(r.batches)

    @staticmethod
    def _groups(r: Round, ids: np.ndarray) -> List[np.ndarray]:
        return [np.flatnonzero(r.batches == g) for g in ids]

    def __iter__(self) -> Iterator[List[Tuple[int, float]]]:
        for _, positions, weights in self.plan(self.epoch):
            yield list(zip(positions.tolist(), weights.tolist()))

    def __len__(self) -> int:
        if self.schedule.unit == "step":
            return len(self.epoch_steps(self.epoch))
        return len(self.plan(self.epoch))


class WeightedPositions(Dataset):
    """`dataset` indexed by the sampler's (position, weight) pairs: items become (dataset[position], weight)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: Tuple[int, float]):
        position, weight = item
        return self.dataset[position], torch.tensor(weight, dtype=torch.float32)


class _Positions(Dataset):
    """Stand-in dataset for the command line: item i is i."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def _rounds_text(numbers: List[int]) -> str:
    named = ["warm-up (whole export, weight 1)" if n == WARMUP else f"round {n}" for n in numbers]
    return ", ".join(named)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="What a clipcurate schedule sampler yields, epoch by epoch.")
    ap.add_argument("export_dir")
    ap.add_argument("--epochs", type=int, help="training epochs (default: the proxy run's)")
    ap.add_argument("--batch-size", type=int, help="default: the method's batchSize, else 256")
    ap.add_argument("--steps", type=int, help="step-unit schedules: training steps (default: the proxy run's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--exact-batches", action="store_true", help="CREST: the round's mini-batch coresets as batches")
    ap.add_argument("--json-out", help="also write every batch (epoch, step, round, positions, weights) as JSON Lines")
    a = ap.parse_args(argv)
    try:
        schedule = ExportSchedule(a.export_dir)
        sampler = ScheduleBatchSampler(schedule, a.epochs, a.batch_size, a.steps, a.seed, a.exact_batches)
    except ScheduleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    h = schedule.header
    dropped = sum(r.dropped for r in schedule.rounds)
    print(
        f"{h['method']}: {len(schedule.rounds)} rounds, unit {h['unit']} ({h['total']} in the proxy run); "
        f"export: {len(schedule.keys)} samples in {schedule.rows_file}"
        + (f"; {dropped} schedule entries left out (skipped or rejected at export)" if dropped else "")
    )
    if h["unit"] == "step":
        print(f"training: {sampler.epochs} epochs, {sampler.steps} steps of {sampler.batch_size}"
              + (" (exact mini-batch coresets)" if a.exact_batches else ""))
    else:
        print(f"training: {sampler.epochs} epochs, batches of {sampler.batch_size}")
    if schedule.rounds[0].start > 0:
        print(f"warm-up: progress [0, {schedule.rounds[0].start:g}) trains on the whole export, weight 1")
    loader = DataLoader(WeightedPositions(_Positions(len(schedule.keys))), batch_sampler=sampler)
    out = open(a.json_out, "w", encoding="utf-8") if a.json_out else None
    used = set()
    for epoch in range(sampler.epochs):
        sampler.set_epoch(epoch)
        plan = sampler.plan(epoch)
        weights, positions = [], []
        for b, (batch_positions, batch_weights) in enumerate(loader):
            number = plan[b][0]
            used.add(number)
            positions.append(batch_positions.numpy())
            weights.append(batch_weights.numpy())
            if out:
                step = sampler.epoch_steps(epoch)[b] if h["unit"] == "step" else b
                out.write(json.dumps({"epoch": epoch, "step": step, "round": number,
                                      "positions": batch_positions.tolist(), "weights": batch_weights.tolist()}) + "\n")
        p = np.concatenate(positions) if positions else np.zeros(0, dtype=np.int64)
        w = np.concatenate(weights) if weights else np.zeros(0)
        numbers = sorted({n for n, _, _ in plan})
        stats = f"weights min {w.min():.3f} mean {w.mean():.3f} max {w.max():.3f}" if len(w) else "no samples"
        print(f"epoch {epoch}: {len(plan)} batches, {len(p)} samples ({len(np.unique(p))} distinct); "
              f"{_rounds_text(numbers)}; {stats}")
    if out:
        out.close()
    missing = [r.number for r in schedule.rounds if r.number not in used]
    print(f"rounds used: {len(schedule.rounds) - len(missing)} of {len(schedule.rounds)}"
          + (f" (never in force: {', '.join(map(str, missing))}; train longer or with more steps)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
