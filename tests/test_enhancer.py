"""The enhancer head: the 50-bin regression by hand, IA3 by hand, strict checkpoints, resumable fine-tuning,
the synthetic benchmark, and the ``enhancer`` family's stitched tracks against a hand computation."""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from nttracks.errors import CheckpointError, ModelError, UsageError
from nttracks.finetune import (
    FinetuneSettings,
    finetune,
    pearson,
    read_activity_data,
    split_data,
    synthetic_activity_data,
)
from nttracks.models.enhancer import (
    EnhancerModel,
    bin_centres,
    bin_loss,
    expectation,
    load_enhancer,
    save_enhancer,
    trained_tensors,
    two_bin_targets,
)
from nttracks.models.loading import load_nt_backbone, save_random_nt
from nttracks.models.nt import add_ia3, init_weights
from nttracks.models.tokenizer import V2, tokenize


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_nt(tmp_path_factory.mktemp("base"), hidden=16, layers=2, heads=2, seed=3)


def _model(base: Path, adapter: str = "ia3", seed: int = 0) -> EnhancerModel:
    model = EnhancerModel(load_nt_backbone(base), bin_centres(torch.tensor([0.0, -1.0]), torch.tensor([4.0, 1.0])),
                          adapter=adapter)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in trained_tensors(model).items():
            if name != "bins":
                p.copy_(p + 0.3 * torch.randn(p.shape, generator=g))
    return model.eval()


# --- the 50-bin regression, by hand ---------------------------------------------------------------


def test_bin_centres_expectation_and_two_bin_targets_by_hand() -> None:
    centres = bin_centres(torch.tensor([0.0, -1.0]), torch.tensor([4.0, 1.0]), num_bins=5)
    assert centres.tolist() == [[0, 1, 2, 3, 4], [-1, -0.5, 0, 0.5, 1]]
    assert bin_centres(torch.tensor([-2.0]), torch.tensor([6.0])).shape == (1, 50)
    assert bin_centres(torch.tensor([-2.0]), torch.tensor([6.0]))[0, 1].item() == pytest.approx(-2 + 8 / 49)
    # probabilities 1, 2, 1, 4, 2 (/10) over 0..4: (0 + 2 + 2 + 12 + 8) / 10 = 2.4; uniform over -1..1: 0
    logits = torch.stack([torch.log(torch.tensor([1.0, 2, 1, 4, 2])), torch.zeros(5)]).unsqueeze(0)
    assert expectation(logits, centres)[0].tolist() == pytest.approx([2.4, 0.0], abs=1e-6)
    # 2.25 between centres 2 and 3: 0.75 / 0.25; 0.2 between 0 and 0.5: 0.6 / 0.4; beyond the range and on
    # the first centre: all weight on the end bin
    targets = two_bin_targets(torch.tensor([[2.25, 0.2], [5.0, -1.0], [4.0, -3.0]]), centres)
    expected = torch.zeros(3, 2, 5)
    expected[0, 0, 2], expected[0, 0, 3] = 0.75, 0.25
    expected[0, 1, 2], expected[0, 1, 3] = 0.6, 0.4
    expected[1, 0, 4] = expected[1, 1, 0] = expected[2, 0, 4] = expected[2, 1, 0] = 1
    torch.testing.assert_close(targets, expected, atol=1e-6, rtol=0)
    # the loss: cross-entropy against those targets, averaged over the 2 activities of the batch of 1
    p = torch.tensor([1.0, 2, 1, 4, 2]) / 10
    by_hand = -(0.75 * math.log(p[2]) + 0.25 * math.log(p[3])) - (0.6 + 0.4) * math.log(1 / 5)
    loss = bin_loss(logits, torch.tensor([[2.25, 0.2]]), centres)
    assert loss.item() == pytest.approx(by_hand / 2, rel=1e-6)


def test_ia3_rescales_keys_values_and_the_ffn_activation_as_the_weights_would() -> None:
    """IA3 at 1 changes nothing; IA3 vectors s give the model whose key/value projections (rows) and second
    FFN linear (columns) are scaled by s -- the definition, by hand."""
    from nttracks.models.loading import tiny_nt_config
    from nttracks.models.nt import NTBackbone

    config = tiny_nt_config("v2", hidden=16, layers=2, heads=2)
    plain = NTBackbone(config)
    init_weights(plain, torch.Generator().manual_seed(1))
    ids = tokenize(np.random.default_rng(0).integers(0, 4, (3, 60)).astype(np.uint8), V2).ids
    adapted = NTBackbone(config)
    adapted.load_state_dict(plain.state_dict())
    params = add_ia3(adapted)
    assert len(params) == 3 * config.layers and {tuple(p.shape) for p in params} == {(2, 1, 8), (64,)}
    with torch.no_grad():
        torch.testing.assert_close(adapted(ids), plain(ids), atol=0, rtol=0)
        g = torch.Generator().manual_seed(2)
        for p in params:
            p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g))
        scaled = NTBackbone(config)
        scaled.load_state_dict(plain.state_dict())
        for block, ia3 in zip(scaled.blocks, adapted.blocks, strict=True):
            for proj, s in ((block.k, ia3.ia3_key), (block.v, ia3.ia3_value)):
                proj.weight.mul_(s.reshape(-1, 1))
                proj.bias.mul_(s.reshape(-1))
            block.ffn.fc2.weight.mul_(ia3.ffn.ia3_scale)
        torch.testing.assert_close(adapted(ids), scaled(ids), atol=1e-5, rtol=1e-5)
        assert (adapted(ids) - plain(ids)).abs().max() > 1e-2


# --- checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("adapter", ["ia3", "head", "full"])
def test_checkpoint_round_trip_keeps_bins_and_predictions(base: Path, tmp_path: Path, adapter: str) -> None:
    from nttracks.models.loading import checkpoint_digest

    model = _model(base, adapter)
    directory = save_enhancer(tmp_path / "head", model, base=str(base), base_digest=checkpoint_digest(base),
                              training={"test_pearson": {"developmental": 0.5}})
    assert oct((directory / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    names = set(load_file(str(directory / "model.safetensors")))
    assert {"head.weight", "head.bias", "bins"} <= names
    assert any(n.startswith("ia3.") for n in names) == (adapter == "ia3")
    assert any(n.startswith("esm.") for n in names) == (adapter == "full")
    loaded = load_enhancer(directory, resolve_base=Path)
    torch.testing.assert_close(loaded.bins, model.bins, atol=0, rtol=0)
    assert loaded.bins[0].tolist() == pytest.approx(np.linspace(0, 4, 50).tolist(), abs=1e-6)
    codes = torch.from_numpy(np.random.default_rng(1).integers(0, 4, (4, 249)).astype(np.uint8))
    with torch.no_grad():
        torch.testing.assert_close(loaded(codes), model(codes), atol=1e-6, rtol=1e-6)
    assert loaded(codes).shape == (4, 1, 2) and loaded.geometry.resolution == 0
    half = load_enhancer(directory, resolve_base=Path, dtype=torch.bfloat16)
    assert half.bins.dtype == torch.float32 and torch.equal(half.bins, model.bins)
    with torch.no_grad():
        torch.testing.assert_close(half(codes), model(codes), atol=0.1, rtol=0)


def test_a_checkpoint_missing_a_tensor_or_with_another_base_fails_naming_it(base: Path, tmp_path: Path) -> None:
    from nttracks.models.loading import checkpoint_digest

    directory = save_enhancer(tmp_path / "head", _model(base), base=str(base), base_digest=checkpoint_digest(base),
                              training={})
    weights = directory / "model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v for k, v in tensors.items() if k != "ia3.layer.1.value"}, str(weights))
    with pytest.raises(CheckpointError, match=r"lacks tensor ia3\.layer\.1\.value \(shape \(2, 1, 8\)\)"):
        load_enhancer(directory, resolve_base=Path)
    save_file({k: v for k, v in tensors.items() if k != "bins"}, str(weights))
    with pytest.raises(CheckpointError, match=r"lacks tensor bins \(shape \(2, 50\)\)"):
        load_enhancer(directory, resolve_base=Path)
    save_file({**tensors, "head.extra": torch.zeros(1)}, str(weights))
    with pytest.raises(CheckpointError, match=r"does not use: head\.extra"):
        load_enhancer(directory, resolve_base=Path)
    save_file({**tensors, "head.bias": torch.zeros(3)}, str(weights))
    with pytest.raises(CheckpointError, match=r"head\.bias has shape \(3,\), expected \(100,\)"):
        load_enhancer(directory, resolve_base=Path)
    save_file(tensors, str(weights))
    other = save_random_nt(tmp_path / "other", hidden=16, layers=2, heads=2, seed=4)
    with pytest.raises(CheckpointError, match=r"was trained on base .* but .*other has digest"):
        load_enhancer(directory, resolve_base=lambda ref: other)


# --- data -----------------------------------------------------------------------------------------


def test_deepstarr_fasta_and_activity_table_match_by_id_and_tsv(tmp_path: Path) -> None:
    fasta = tmp_path / "seqs.fa"
    fasta.write_text(">a desc\nACGT\nAC\n>b\nggcc\n>c\nNNAT\n")
    table = tmp_path / "act.txt"
    table.write_text("ID\tDev_log2_enrichment\tHk_log2_enrichment\nc\t3\t-3\na\t1.5\t-0.5\nb\t2\t0\n")
    data = read_activity_data(fasta, table)
    assert data.names == ("a", "b", "c")
    assert [c.tolist() for c in data.codes] == [[0, 1, 2, 3, 0, 1], [2, 2, 1, 1], [4, 4, 0, 3]]
    assert data.values.tolist() == [[1.5, -0.5], [2, 0], [3, -3]]
    table.write_text("Dev_log2_enrichment\tHk_log2_enrichment\n1\t2\n3\t4\n5\t6\n")  # no id: by order
    assert read_activity_data(fasta, table).values.tolist() == [[1, 2], [3, 4], [5, 6]]
    table.write_text("ID\tDev\tHk_log2_enrichment\na\t1\t2\n")
    with pytest.raises(UsageError, match=r"no column Dev_log2_enrichment"):
        read_activity_data(fasta, table)
    table.write_text("ID\tDev_log2_enrichment\tHk_log2_enrichment\na\t1\t2\nb\t1\t1\n")
    with pytest.raises(UsageError, match=r"no activity for sequence 'c'"):
        read_activity_data(fasta, table)
    tsv = tmp_path / "data.tsv"
    tsv.write_text("sequence\tdev\thk\nACGTAC\t0.5\t1\nGGGG\t2\t3\n")
    assert read_activity_data(tsv).values.tolist() == [[0.5, 1], [2, 3]]
    tsv.write_text("ACGTAC\t0.5\t1\nGGGG\tx\t3\n")
    with pytest.raises(UsageError, match=r"data\.tsv:2: activities 'x', '3' are not numbers"):
        read_activity_data(tsv)
    parts = split_data(synthetic_activity_data(50, seed=1), val_fraction=0.2, test_fraction=0.1, seed=5)
    assert [len(p) for p in parts] == [35, 10, 5]
    assert len({*parts[0].names, *parts[1].names, *parts[2].names}) == 50
    assert parts[1].names == split_data(synthetic_activity_data(50, seed=1), val_fraction=0.2,
                                        test_fraction=0.1, seed=5)[1].names


def test_pearson() -> None:
    x = np.array([[1.0, 1], [2, 2], [3, 3]])
    y = np.array([[2.0, 3], [4, 2], [6, 1]])
    assert pearson(x, y).tolist() == pytest.approx([1.0, -1.0])


# --- fine-tuning ----------------------------------------------------------------------------------


class _Killed(Exception):
    pass


def test_killed_and_resumed_training_ends_with_the_uninterrupted_weights(base: Path, tmp_path: Path) -> None:
    data = synthetic_activity_data(96, seed=2)
    train, val, test = split_data(data, val_fraction=0.25, test_fraction=0.25, seed=0)
    settings = FinetuneSettings(base=str(base), epochs=3, batch_size=8, lr=1e-2, warmup=2, patience=3,
                                save_every=2)

    def kill_at(step: int):
        def hook(s: int) -> None:
            if s == step:
                raise _Killed

        return hook

    whole = finetune(train, val, test, tmp_path / "whole", settings)
    # 48 training sequences, 6 steps an epoch: killed at step 9 (the last state is step 8's, saved mid-epoch by
    # save_every), resumed and killed again at step 13 (the last state: the end of epoch 2, step 12)
    for step, saved in ((9, (8, 2)), (13, (12, 0))):
        with pytest.raises(_Killed):
            finetune(train, val, test, tmp_path / "resumed", settings, on_step=kill_at(step))
        state = torch.load(tmp_path / "resumed" / ".finetune-state" / "state.pt", weights_only=False)
        assert (state["loop"]["step"], state["loop"]["step_in_epoch"]) == saved
        assert not (tmp_path / "resumed" / "config.json").exists()
    resumed = finetune(train, val, test, tmp_path / "resumed", settings)
    assert resumed.resumed and not whole.resumed
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "resumed"))
    assert sorted(a) == sorted(b) and len(a) == 3 + 3 * 2
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
    assert resumed.test_r == whole.test_r
    assert not (tmp_path / "resumed" / ".finetune-state").exists()
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["training"]["history"] == json.loads((tmp_path / "whole" / "config.json").read_text())[
        "training"]["history"]
    # a state from other settings is not resumed silently
    with pytest.raises(_Killed):
        finetune(train, val, test, tmp_path / "other", settings, on_step=kill_at(3))
    with pytest.raises(UsageError, match=r"holds an interrupted run with other data or settings"):
        finetune(train, val, test, tmp_path / "other", FinetuneSettings(**{**settings.__dict__, "lr": 0.02}))


def test_short_benchmark_learns_both_activities(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
                                                ) -> None:
    """The benchmark's task, shortened (the full one asks r >= 0.8; see README, Enhancer activity)."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_finetune.py"
    argv = ["bench", "--sequences", "2000", "--epochs", "3", "--batch-size", "16", "--lr", "1e-2", "--min-r", "0.5"]
    monkeypatch.setattr(sys, "argv", argv)
    threads = torch.get_num_threads()
    try:
        with pytest.raises(SystemExit) as exit_:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        torch.set_num_threads(threads)  # the script runs on one thread
    out = capsys.readouterr().out
    assert exit_.value.code == 0, out
    rs = [float(line.rsplit(" ", 1)[1]) for line in out.splitlines() if line.startswith("test Pearson r")]
    assert len(rs) == 2 and min(rs) >= 0.5, out
    assert "training time:" in out


# --- the CLI and the family -----------------------------------------------------------------------


def test_finetune_cli_then_the_family_stitches_every_base_as_the_taper_weighted_mean(
    base: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`nttracks finetune enhancer` on DeepSTARR-style files writes a checkpoint; `nttracks genome demo` with it
    writes two bigWigs whose every base is the taper-weighted mean of the predictions of the windows covering
    it, computed here window by window (tests/handstitch.py), within the 1/100 quantum."""
    import pyBigWig
    from handstitch import stitch_contig, windows_of
    from test_cli import run_cli

    from nttracks.finetune import resolve_base
    from nttracks.hubs import validate_hub
    from nttracks.registry import open_genome

    data = synthetic_activity_data(60, seed=4)
    fasta, table = tmp_path / "train.fa", tmp_path / "train_activity.txt"
    records = zip(data.names, data.codes, strict=True)
    fasta.write_text("".join(f">{n}\n{''.join('ACGT'[c] for c in s)}\n" for n, s in records))
    rows = zip(data.names[::-1], data.values[::-1], strict=True)  # another order: matched by id
    header = "ID\tDev_log2_enrichment\tHk_log2_enrichment\n"
    table.write_text(header + "".join(f"{n}\t{d}\t{h}\n" for n, (d, h) in rows))
    head = tmp_path / "head"
    code, out, err = run_cli(["finetune", "enhancer", str(fasta), "--activity", str(table), "--base", str(base),
                              "--out", str(head), "--epochs", "1", "--batch-size", "16", "--device", "cpu"], capsys)
    assert code == 0, err
    assert "training on 48 sequences, validating on 6, testing on 6" in err
    assert "test Pearson r developmental:" in out and "test Pearson r housekeeping:" in out
    config = json.loads((head / "config.json").read_text())
    assert config["base_checkpoint"] == str(base.resolve()) and config["units"] == "log2 enrichment"
    assert config["training"]["sequences"] == {"train": 48, "validation": 6, "test": 6}
    code, _, err = run_cli(["finetune", "enhancer", str(fasta), "--activity", str(table), "--base", str(base),
                            "--out", str(head)], capsys)
    assert code != 0 and "already holds a checkpoint; pass --force" in err

    stride = 100
    yaml_path = tmp_path / "enhancer.yaml"
    yaml_path.write_text(f"families:\n  enhancer:\n    checkpoint: {head}\n    overlap: {249 - stride}\n")
    hub = tmp_path / "hub"
    code, _, err = run_cli(["genome", "demo", "--config", str(yaml_path), "--out", str(hub), "--chroms", "chr2,chr3",
                            "--base-url", "https://example.org/hub"], capsys)
    assert code == 0, err
    assert validate_hub(hub) == []
    manifest = json.loads((hub / "manifest.json").read_text())["families"]["enhancer"]
    assert list(manifest["tracks"]) == ["developmental", "housekeeping"]

    model = load_enhancer(head, resolve_base=resolve_base)
    genome = open_genome("demo")

    # The model on its own, on every window (in plain batches), by window sequence; then stitched by hand.
    windows = {chrom: [(contig.start, windows_of(contig.end - contig.start, 249, stride, grid=1, multiple=1,
                                               minimum=249)) for contig in genome.contigs([chrom])]
               for chrom in ("chr2", "chr3")}
    seqs = [genome.codes(chrom)[c + s:c + e] for chrom, contigs in windows.items() for c, wins in contigs
            for s, e in wins]
    with torch.no_grad():
        values = np.concatenate([model(torch.from_numpy(np.stack(seqs[i:i + 256])))[:, 0].numpy()
                                 for i in range(0, len(seqs), 256)])
    by_sequence = {s.tobytes(): v for s, v in zip(seqs, values, strict=True)}

    def predict(codes: np.ndarray) -> np.ndarray:
        return np.repeat(by_sequence[codes.tobytes()][None].astype(np.float64), len(codes), axis=0)

    files = {ch: pyBigWig.open(str(hub / rel)) for ch, rel in manifest["tracks"].items()}
    try:
        checked = 0
        for chrom in ("chr2", "chr3"):
            codes = genome.codes(chrom)
            stored = np.stack([np.array(files[ch].values(chrom, 0, len(codes)), dtype=np.float64)
                               for ch in ("developmental", "housekeeping")], 1)
            expected = np.full_like(stored, np.nan)
            for (start, wins), contig in zip(windows[chrom], genome.contigs([chrom]), strict=True):
                if wins:
                    expected[start:contig.end] = stitch_contig(codes[start:contig.end], wins, predict, "taper")
            np.testing.assert_array_equal(np.isnan(stored), np.isnan(expected))
            scored = ~np.isnan(expected[:, 0])
            np.testing.assert_allclose(stored[scored], expected[scored], atol=0.5 / 100 + 1e-6, rtol=0)
            checked += int(scored.sum())
    finally:
        for f in files.values():
            f.close()
    assert checked > 150_000
    trackdb = (hub / "demo" / "trackDb.txt").read_text()
    assert "container multiWig" in trackdb and trackdb.count("parent enhancer") == 2
    washu = json.loads((hub / "washu.json").read_text())
    matplot = next(t for t in washu if t["name"] == "enhancer")
    assert matplot["type"] == "matplot"
    assert [t["name"] for t in matplot["tracks"]] == ["enhancer_developmental", "enhancer_housekeeping"]
    assert all(t["url"].startswith("https://example.org/hub/") for t in matplot["tracks"])
    page = (hub / "demo" / "enhancer.html").read_text()
    assert "log2 enrichment" in page and "test Pearson r" in page and str(fasta) in page
    r_dev = config["training"]["test_pearson"]["developmental"]
    assert f"<td>developmental</td><td>{r_dev:.3f}</td>" in page


def test_family_geometry_follows_the_checkpoint_and_preflight_names_a_wrong_one(base: Path, tmp_path: Path) -> None:
    from nttracks.families import get_family
    from nttracks.models.loading import checkpoint_digest

    family = get_family("enhancer")
    settings = family.settings(checkpoint=str(tmp_path / "head"))
    assert family.geometry(settings).window == 249  # not written yet: DeepSTARR's length
    model = EnhancerModel(load_nt_backbone(base), bin_centres(torch.zeros(2), torch.ones(2)), window=120)
    save_enhancer(tmp_path / "head", model, base=str(base), base_digest=checkpoint_digest(base), training={})
    geometry = family.geometry(settings)
    assert (geometry.window, geometry.min_length, geometry.grid, geometry.resolution) == (120, 120, 1, 0)
    assert family.preflight(settings, geometry, dry_run=True) == []
    with pytest.raises(ModelError, match=r"window of 249 bp, but checkpoint .* was trained on 120-bp sequences"):
        family.preflight(settings, geometry.with_window(249), dry_run=True)
    with pytest.raises(CheckpointError, match=r"model_type 'esm' is not 'nttracks-enhancer'"):
        family.preflight(family.settings(checkpoint=str(base)), geometry, dry_run=True)
    assert family.channels(settings) == ("developmental", "housekeeping")
    assert family.flops(settings, np.array([249])) > 0


@pytest.mark.slow  # a subprocess that imports torch
def test_sigkilled_cli_run_resumes_to_the_uninterrupted_weights(base: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """SIGKILL the CLI once its first training state is on disk; started again with the same arguments it
    resumes, and its weights equal an uninterrupted run's."""
    import os
    import signal
    import subprocess
    import time

    from test_cli import run_cli

    tsv = tmp_path / "data.tsv"
    data = synthetic_activity_data(40, seed=6)
    tsv.write_text("".join(f"{''.join('ACGT'[c] for c in s)}\t{d}\t{h}\n"
                           for s, (d, h) in zip(data.codes, data.values, strict=True)))

    def args(out: Path) -> list[str]:
        return ["finetune", "enhancer", str(tsv), "--base", str(base), "--out", str(out), "--epochs", "3",
                "--batch-size", "8", "--save-every", "1", "--device", "cpu", "--lr", "0.01"]

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "nttracks.cli", *args(killed)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (killed / ".finetune-state" / "state.pt").is_file() and proc.poll() is None:
            assert time.monotonic() < deadline, "the run wrote no training state"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (killed / "config.json").exists()
    code, _, err = run_cli(args(killed), capsys)
    assert code == 0 and "resumed an interrupted run" in err, err
    code, _, err = run_cli(args(tmp_path / "whole"), capsys)
    assert code == 0 and "resumed" not in err, err
    a, b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("killed", "whole"))
    assert sorted(a) == sorted(b)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=0, rtol=0)
