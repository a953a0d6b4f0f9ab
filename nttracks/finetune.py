"""Fine-tuning the enhancer head: data, split, training loop with resume, the checkpoint directory.

``read_activity_data`` reads sequences and their two activities, as DeepSTARR distributes them (a FASTA
plus a tab-separated table with ``Dev_log2_enrichment`` and ``Hk_log2_enrichment`` matched by sequence id,
or by order when the table has no id column) or from one TSV of (sequence, dev, hk). ``finetune`` trains
the head (and IA3 vectors) with AdamW, linear warm-up then cosine decay, and early stopping on the
validation Pearson r (the mean over the two activities); it checkpoints everything the run depends on
(trained tensors, optimizer, scheduler, RNG state, epoch and step) atomically every ``save_every`` steps
and at each epoch's end, so a killed run resumed with the same settings ends with exactly the weights of
an uninterrupted one. It writes the checkpoint directory the ``enhancer`` family loads and returns the
test Pearson r of each activity.

The library never prints: progress goes to an optional callback (the CLI draws a bar from it).
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .bases import NOT_A_LETTER, encode
from .errors import ConfigError, UsageError

DEV_COLUMN, HK_COLUMN = "Dev_log2_enrichment", "Hk_log2_enrichment"
ID_COLUMNS = ("ID", "id", "name", "seq_id", "sequence_id")
STATE_DIR = ".finetune-state"  # inside the output directory while training


@dataclass(frozen=True)
class ActivityData:
    """Sequences and activities. names: (n,); codes: n uint8 arrays (A0 C1 G2 T3 N4);
    values: (n, 2) float32 (developmental, housekeeping); source: where they came from (for the page)."""

    names: tuple[str, ...]
    codes: tuple[np.ndarray, ...]
    values: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: np.ndarray) -> ActivityData:
        return ActivityData(tuple(self.names[i] for i in index), tuple(self.codes[i] for i in index),
                            self.values[index], self.source)


def read_activity_data(path: str | os.PathLike[str], activity: str | os.PathLike[str] | None = None) -> ActivityData:
    """A FASTA with its activity table (``activity``), or one TSV (sequence, dev, hk; a header line is
    skipped when its value columns are not numbers). Errors name the file and line."""
    path = Path(path)
    if activity is not None:
        return _read_fasta_table(path, Path(activity))
    rows = _read_lines(path)
    names, codes, values = [], [], []
    for lineno, line in rows:
        fields = line.split("\t")
        if len(fields) < 3:
            raise UsageError(f"{path}:{lineno}: expected 3 tab-separated columns (sequence, dev, hk), "
                             f"got {len(fields)}; for a FASTA pass its activity table too")
        try:
            dev, hk = float(fields[1]), float(fields[2])
        except ValueError:
            if not names and lineno == rows[0][0]:
                continue  # a header
            raise UsageError(f"{path}:{lineno}: activities {fields[1]!r}, {fields[2]!r} are not numbers") from None
        names.append(f"{path.name}:{lineno}")
        codes.append(_codes(fields[0], f"{path}:{lineno}"))
        values.append((dev, hk))
    return _data(names, codes, values, str(path))


def _read_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    rows = [(i + 1, line.rstrip("\r\n")) for i, line in enumerate(text.splitlines())]
    return [(i, line) for i, line in rows if line.strip() and not line.startswith("#")]


def _codes(seq: str, where: str) -> np.ndarray:
    codes = encode(seq.strip())
    if len(codes) == 0 or (codes == NOT_A_LETTER).any():
        raise UsageError(f"{where}: sequence {seq[:30]!r} is empty or holds a letter that is no DNA base")
    return codes


def _read_fasta_table(fasta: Path, table: Path) -> ActivityData:
    names, seqs = [], []
    for lineno, line in _read_lines(fasta):
        if line.startswith(">"):
            names.append(line[1:].split()[0] if line[1:].strip() else "")
            seqs.append([])
        elif not seqs:
            raise UsageError(f"{fasta}:{lineno}: sequence before the first '>' header; is it a FASTA?")
        else:
            seqs[-1].append(line.strip())
    codes = [_codes("".join(s), f"{fasta} record {n!r}") for n, s in zip(names, seqs, strict=True)]
    try:
        with table.open(newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            header = reader.fieldnames or []
            rows = list(reader)
    except OSError as exc:
        raise UsageError(f"cannot read {table}: {exc.strerror or exc}") from exc
    missing = [c for c in (DEV_COLUMN, HK_COLUMN) if c not in header]
    if missing:
        raise UsageError(f"{table}: no column {', '.join(missing)} (columns: {', '.join(header)}); a DeepSTARR "
                         f"activity table has {DEV_COLUMN} and {HK_COLUMN}")
    id_column = next((c for c in ID_COLUMNS if c in header), None)

    def value(row: dict[str, str], line: int) -> tuple[float, float]:
        try:
            return float(row[DEV_COLUMN]), float(row[HK_COLUMN])
        except (TypeError, ValueError):
            raise UsageError(f"{table}:{line}: activities {row[DEV_COLUMN]!r}, {row[HK_COLUMN]!r} are not numbers"
                             ) from None

    if id_column is None:
        if len(rows) != len(names):
            raise UsageError(f"{table} has no id column ({', '.join(ID_COLUMNS)}) and {len(rows)} rows for "
                             f"{len(names)} sequences in {fasta}; add an id column or give them in the same order")
        values = [value(row, i + 2) for i, row in enumerate(rows)]
    else:
        by_id = {row[id_column]: (i + 2, row) for i, row in enumerate(rows)}
        absent = [n for n in names if n not in by_id]
        if absent:
            raise UsageError(f"{table}: no activity for sequence {absent[0]!r} of {fasta}"
                             + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))
        values = [value(by_id[n][1], by_id[n][0]) for n in names]
    return _data(names, codes, values, f"{fasta} + {table}")


def _data(names: list[str], codes: list[np.ndarray], values: list, source: str) -> ActivityData:
    if not names:
        raise UsageError(f"{source}: no sequences")
    arr = np.asarray(values, dtype=np.float32).reshape(-1, 2)
    if not np.isfinite(arr).all():
        raise UsageError(f"{source}: an activity is not a finite number (NaN or inf)")
    return ActivityData(tuple(names), tuple(codes), arr, source)


def split_data(data: ActivityData, *, val_fraction: float, test_fraction: float, seed: int
               ) -> tuple[ActivityData, ActivityData, ActivityData]:
    """Seeded random (train, validation, test) split; a fraction of 0 leaves that part empty (it is given
    separately), any other gives it at least one sequence."""
    n = len(data)
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise UsageError(f"split fractions val {val_fraction} and test {test_fraction} must be in [0, 1) and sum "
                         "below 1")
    n_val = max(1, round(n * val_fraction)) if val_fraction else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction else 0
    if n - n_val - n_test < 1:
        raise UsageError(f"{n} sequences are too few to split into train, validation and test")
    order = np.random.default_rng(seed).permutation(n)
    return (data.subset(order[n_val + n_test:]), data.subset(order[:n_val]),
            data.subset(order[n_val:n_val + n_test]))


# --- training -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FinetuneSettings:
    """How to fine-tune. adapter: ia3 (IA3 vectors + head), head (head only, backbone frozen) or full (every
    weight: for small backbones, whose random or weak features IA3 cannot rescale into shape);
    warmup: steps of linear warm-up; patience: epochs without a better validation r before stopping;
    save_every: steps between resumable checkpoints (0: at each epoch's end only)."""

    base: str
    adapter: str = "ia3"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 50
    patience: int = 3
    seed: int = 0
    num_bins: int = 50
    save_every: int = 0
    device: str = "cpu"

    def check(self) -> None:
        from .models.enhancer import ADAPTERS

        if self.adapter not in ADAPTERS:
            raise UsageError(f"adapter {self.adapter!r}: use one of {', '.join(ADAPTERS)}")
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup < 0 or self.save_every < 0:
            raise UsageError("lr must be > 0, and weight_decay, warmup and save_every >= 0")
        if self.num_bins < 2:
            raise UsageError(f"num_bins must be at least 2, got {self.num_bins}")


@dataclass(frozen=True)
class Progress:
    """One training step: step / total_steps (total: every epoch run), epoch (from 0), the step's loss,
    the last validation r per activity (None before the first epoch ends)."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    val_r: tuple[float, float] | None


@dataclass(frozen=True)
class FinetuneResult:
    directory: Path
    test_r: tuple[float, float]
    val_r: tuple[float, float]
    epochs: int
    seconds: float
    resumed: bool


def pearson(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Pearson r per column of (n, k) arrays (0 where a column is constant)."""
    p = pred - pred.mean(0)
    t = true - true.mean(0)
    denom = np.sqrt((p * p).sum(0) * (t * t).sum(0))
    return np.where(denom > 0, (p * t).sum(0) / np.where(denom > 0, denom, 1), 0.0)


def resolve_base(reference: str) -> Path:
    """A base checkpoint reference (a directory, an HF id, or ``demo``) -> its directory."""
    from .families import ntlm

    return ntlm.checkpoint_dir(ntlm.MaskedLMSettings(checkpoint=reference))


def base_reference(base: str) -> str:
    """How the checkpoint names its base: ``demo`` and HF ids as given, a directory by its absolute path."""
    path = Path(base).expanduser()
    return str(path.resolve()) if path.is_dir() else base


def finetune(
    train: ActivityData,
    val: ActivityData,
    test: ActivityData,
    out: str | os.PathLike[str],
    settings: FinetuneSettings,
    *,
    progress: Callable[[Progress], None] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> FinetuneResult:
    """Train, write the checkpoint directory ``out`` and return the test Pearson r per activity.

    A state left in ``out`` by an interrupted run with the same data and settings is resumed; one from
    other data or settings is an error (remove it to start afresh). on_step(step) is called after each
    optimizer step and any checkpoint it triggered (tests interrupt a run from it).
    """
    import torch

    from .models.enhancer import (
        WINDOW,
        EnhancerModel,
        bin_centres,
        bin_loss,
        expectation,
        save_enhancer,
        trained_tensors,
    )
    from .models.loading import checkpoint_digest, load_nt_backbone

    settings.check()
    start_time = time.perf_counter()
    out = Path(out)
    state_dir = out / STATE_DIR
    device = torch.device(settings.device)

    base_dir = resolve_base(settings.base)
    digest = checkpoint_digest(base_dir)
    fingerprint = _fingerprint(train, val, test, settings, digest)  # what a resumed run must match
    torch.manual_seed(settings.seed)
    backbone = load_nt_backbone(base_dir).requires_grad_(False)
    lo, hi = train.values.min(0), train.values.max(0)
    hi = np.where(hi > lo, hi, lo + 1.0)  # a constant target still gets a valid bin range
    lengths = {len(c) for c in train.codes}
    window = lengths.pop() if len(lengths) == 1 else WINDOW  # the length the family's windows will have
    model = EnhancerModel(backbone, bin_centres(torch.from_numpy(lo), torch.from_numpy(hi), settings.num_bins),
                          adapter=settings.adapter, window=window)
    generator = torch.Generator().manual_seed(settings.seed)
    with torch.no_grad():  # a seeded head, whatever torch's global RNG has done
        bound = 1 / math.sqrt(backbone.config.hidden)
        model.head.weight.copy_(torch.empty_like(model.head.weight).uniform_(-bound, bound, generator=generator))
        model.head.bias.zero_()
    model.to(device)
    params = [p for name, p in trained_tensors(model).items() if name != "bins"]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    per_epoch = math.ceil(len(train) / settings.batch_size)
    total = per_epoch * settings.epochs

    def schedule(step: int) -> float:
        if step < settings.warmup:
            return (step + 1) / settings.warmup
        frac = (step - settings.warmup) / max(1, total - settings.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    sets = {name: _tokenized(d, model, device) for name, d in (("train", train), ("val", val), ("test", test))}
    targets = torch.from_numpy(train.values).to(device)

    loop = {"epoch": 0, "step_in_epoch": 0, "step": 0, "best": -math.inf, "bad": 0, "history": [],
            "val_r": None, "done": False}
    best: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in trained_tensors(model).items()}
    resumed = False
    if (state_dir / "state.pt").is_file():
        saved = torch.load(state_dir / "state.pt", map_location=device, weights_only=False)
        if saved["fingerprint"] != fingerprint:
            raise UsageError(f"{state_dir} holds an interrupted run with other data or settings; remove it to start "
                             "afresh, or resume with the same data and settings")
        _restore(model, saved["trained"])
        best = saved["best_tensors"]
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        loop = saved["loop"]
        resumed = True

    def save_state() -> None:
        trained = {k: v.detach().clone() for k, v in trained_tensors(model).items()}
        state = {"fingerprint": fingerprint, "trained": trained,
                 "best_tensors": best, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                 "rng": torch.get_rng_state(), "loop": copy.deepcopy(loop)}
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp = state_dir / "state.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, state_dir / "state.pt")  # atomic: a kill leaves the previous state or this one

    def evaluate(name: str) -> np.ndarray:
        ids, mask = sets[name]
        model.eval()
        preds = []
        with torch.no_grad():
            for i in range(0, ids.shape[0], 256):
                m = None if mask is None else mask[i:i + 256]
                preds.append(expectation(model.logits(ids[i:i + 256], m), model.bins).cpu().numpy())
        model.train()
        truth = {"val": val, "test": test, "train": train}[name].values
        return pearson(np.concatenate(preds).astype(np.float64), truth.astype(np.float64))

    model.train()
    ids, mask = sets["train"]
    while not loop["done"] and loop["epoch"] < settings.epochs:
        epoch = loop["epoch"]
        # The epoch's order is a function of (seed, epoch) alone, so a resumed run sees the same batches.
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(settings.seed * 100003 + epoch))
        for b in range(loop["step_in_epoch"], per_epoch):
            index = order[b * settings.batch_size:(b + 1) * settings.batch_size].to(device)
            logits = model.logits(ids[index], None if mask is None else mask[index])
            loss = bin_loss(logits, targets[index], model.bins)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            loop["step"] += 1
            loop["step_in_epoch"] = b + 1
            if progress is not None:
                progress(Progress(loop["step"], total, epoch, float(loss.detach()), loop["val_r"]))
            if settings.save_every and loop["step"] % settings.save_every == 0 and b + 1 < per_epoch:
                save_state()
            if on_step is not None:
                on_step(loop["step"])
        r = evaluate("val")
        loop["val_r"] = (float(r[0]), float(r[1]))
        loop["history"].append({"epoch": epoch + 1, "val_r": list(loop["val_r"])})
        if float(r.mean()) > loop["best"]:
            loop["best"], loop["bad"] = float(r.mean()), 0
            best = {k: v.detach().clone() for k, v in trained_tensors(model).items()}
        else:
            loop["bad"] += 1
            loop["done"] = loop["bad"] >= settings.patience
        loop["epoch"], loop["step_in_epoch"] = epoch + 1, 0
        save_state()

    _restore(model, best)
    val_r, test_r = evaluate("val"), evaluate("test")
    training = {
        "data": train.source, "sequences": {"train": len(train), "validation": len(val), "test": len(test)},
        "settings": {k: v for k, v in dataclasses.asdict(settings).items() if k != "device"},
        "epochs_run": loop["epoch"], "history": loop["history"],
        "val_pearson": {"developmental": float(val_r[0]), "housekeeping": float(val_r[1])},
        "test_pearson": {"developmental": float(test_r[0]), "housekeeping": float(test_r[1])},
    }
    save_enhancer(out.with_name(out.name + ".new"), model.cpu(), base=base_reference(settings.base),
                  base_digest=digest, training=training)
    _install(out.with_name(out.name + ".new"), out)
    return FinetuneResult(out, (float(test_r[0]), float(test_r[1])), (float(val_r[0]), float(val_r[1])),
                          loop["epoch"], time.perf_counter() - start_time, resumed)


def _install(new: Path, out: Path) -> None:
    """Move the finished checkpoint files into ``out`` (config.json last) and drop the training state."""
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    os.replace(new / "model.safetensors", out / "model.safetensors")
    os.replace(new / "config.json", out / "config.json")
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(out / STATE_DIR, ignore_errors=True)


def _restore(model: Any, tensors: dict[str, Any]) -> None:
    import torch

    from .models.enhancer import trained_tensors

    with torch.no_grad():
        for name, param in trained_tensors(model).items():
            param.copy_(tensors[name])


def _tokenized(data: ActivityData, model: Any, device: Any) -> tuple[Any, Any]:
    """Token ids (n, tokens) of every sequence, right-padded, and the pad mask (None when all are equal)."""
    import torch

    from .models.tokenizer import tokenize

    vocab = model.backbone.config.vocab
    lengths = {len(c) for c in data.codes}
    if len(lengths) == 1:
        return tokenize(np.stack(data.codes), vocab).ids.to(device), None
    rows = [tokenize(c, vocab).ids[0] for c in data.codes]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), vocab.pad, dtype=torch.int64)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
    return ids.to(device), ids.eq(vocab.pad).to(device)


def _fingerprint(train: ActivityData, val: ActivityData, test: ActivityData, settings: FinetuneSettings,
                 base_digest: str) -> str:
    h = hashlib.sha256(json.dumps(dataclasses.asdict(settings), sort_keys=True).encode() + base_digest.encode())
    for data in (train, val, test):
        h.update(data.values.tobytes())
        for c in data.codes:
            h.update(len(c).to_bytes(4, "little"))
            h.update(c.tobytes())
    return h.hexdigest()


def check_out(out: Path, *, force: bool) -> None:
    """An output directory that already holds a finished checkpoint is only replaced with ``force``."""
    if (out / "config.json").is_file() and not (out / STATE_DIR).exists() and not force:
        raise UsageError(f"{out} already holds a checkpoint; pass --force to replace it, or choose another --out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a directory")


def summary_lines(result: FinetuneResult, names: Sequence[str] = ("developmental", "housekeeping")) -> list[str]:
    return [f"test Pearson r {n}: {r:.3f}" for n, r in zip(names, result.test_r, strict=True)]


# --- a synthetic task with a known answer ---------------------------------------------------------

# 12-bp sites (GATA- and E-box-like cores for developmental, AP-1- and DRE-like for housekeeping, with
# flanks): at any offset a site holds at least one whole 6-mer token of a small known set.
DEV_MOTIFS = ("AGATAAGGCTTA", "CACCTGCAGGTG")
HK_MOTIFS = ("TGACTCATGAGT", "TATCGATAGCGA")


def synthetic_activity_data(n: int, *, seed: int = 0, length: int = 249, noise: float = 0.3,
                            max_sites: int = 3) -> ActivityData:
    """Random sequences with 0..max_sites sites of each motif set planted at random positions; developmental
    activity = the number of DEV_MOTIFS sites, housekeeping = the number of HK_MOTIFS sites, each plus
    Gaussian noise of sd ``noise`` (log2 units). The best possible Pearson r is known from the noise."""
    rng = np.random.default_rng(seed)
    codes, values, names = [], [], []
    for i in range(n):
        seq = rng.integers(0, 4, length).astype(np.uint8)
        counts = rng.integers(0, max_sites + 1, 2)
        sites = [m for k, motifs in zip(counts, (DEV_MOTIFS, HK_MOTIFS), strict=True)
                 for m in rng.choice(motifs, k)]
        slots = rng.permutation(length // 16)[: len(sites)] * 16  # non-overlapping 16-bp slots
        for site, at in zip(sites, slots, strict=True):
            at = min(int(at) + int(rng.integers(0, 5)), length - len(site))
            seq[at:at + len(site)] = encode(site)
        codes.append(seq)
        values.append(counts + rng.normal(0, noise, 2))
        names.append(f"synthetic_{i}")
    return ActivityData(tuple(names), tuple(codes), np.asarray(values, dtype=np.float32),
                        f"synthetic motif task (seed {seed}, {n} sequences)")
