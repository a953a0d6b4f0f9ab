"""The sensitivity family: the per-position math on hand-made logits, the model against a float64
reference computed here from the model's own logits, masking every k-th token against an explicit loop,
and the stitched bigWigs against the window that owns each base."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyBigWig
import pytest
import torch

from nttracks.config import parse_config
from nttracks.errors import ConfigError, ModelError
from nttracks.families import get_family
from nttracks.hubs import validate_hub
from nttracks.models.base import Geometry
from nttracks.models.loading import load_nt, save_random_nt
from nttracks.models.mlm import CHANNELS, MaskedLMTracks, base_scores, position_log_marginals, token_scores
from nttracks.models.nt import per_base_probabilities
from nttracks.models.tokenizer import V1, V2, tokenize, tokenize_acgt
from nttracks.planning import RunRequest, plan_run
from nttracks.registry import open_genome
from nttracks.runs import run_genome

ACGT = "ACGT"
NT_ORDER = "ATCG"  # the order of the 6-mer ids' base-4 digits


def kmer_letters() -> list[str]:
    return ["".join(k) for k in itertools.product(NT_ORDER, repeat=6)]


def encode(seq: str) -> torch.Tensor:
    return torch.tensor([[ACGT.index(c) for c in seq]], dtype=torch.uint8)


# ----------------------------------------------------------------------------- known answers by hand


def test_per_position_math_on_a_hand_made_token_distribution() -> None:
    """A product distribution, p(k) = q_0(k_0) ... q_5(k_5), has the q_i as its marginals exactly."""
    q = [[1 / 2, 1 / 4, 1 / 8, 1 / 8]] * 5 + [[1 / 8, 1 / 8, 1 / 4, 1 / 2]]  # columns A, C, G, T
    logits = torch.tensor([sum(math.log(q[i][ACGT.index(b)]) for i, b in enumerate(k)) for k in kmer_letters()])
    logits = (logits + 7.0).expand(3, 1, 4096)  # logits, not log-probabilities: any constant added
    log_marginals, log_z = position_log_marginals(logits)
    torch.testing.assert_close(log_marginals.exp()[0, 0], torch.tensor(q), atol=1e-6, rtol=0)
    torch.testing.assert_close(log_z, torch.full((3, 1), 7.0), atol=1e-5, rtol=0)

    # three windows of one token: the most likely 6-mer, and two others
    refs = ["AAAAAT", "CAAAAG", "GAAAAC"]
    codes = torch.cat([encode(r) for r in refs])
    base = base_scores(log_marginals.reshape(3, 6, 4), codes)
    # entropy of (1/2, 1/4, 1/8, 1/8) and of its permutation: 1/2 + 2/4 + 3/8 + 3/8 = 1.75 bits
    torch.testing.assert_close(base["entropy"], torch.full((3, 6), 1.75), atol=1e-5, rtol=0)
    # constraint in bits: log2 p(ref) - log2 max p(alt); ref A at offsets 1-4 in every window: 1/2 vs 1/4
    expected_constraint = [[1, 1, 1, 1, 1, 1],  # A (1/2 vs 1/4) ... T at offset 5 (1/2 vs 1/4)
                           [-1, 1, 1, 1, 1, -1],  # C at 0 (1/4 vs 1/2); G at 5 (1/4 vs 1/2)
                           [-2, 1, 1, 1, 1, -2]]  # G at 0 (1/8 vs 1/2); C at 5 (1/8 vs 1/2)
    torch.testing.assert_close(base["constraint"], torch.tensor(expected_constraint, dtype=torch.float32),
                               atol=1e-5, rtol=0)
    expected_ref = [[1 / 2] * 6, [1 / 4, *[1 / 2] * 4, 1 / 4], [1 / 8, *[1 / 2] * 4, 1 / 8]]
    torch.testing.assert_close(base["ref_prob"], torch.tensor(expected_ref), atol=1e-6, rtol=0)

    ids = torch.tensor([[kmer_letters().index(r)] for r in refs])
    tokens = token_scores(logits, ids, log_z)
    assert tokens["recon_accuracy"].tolist() == [[1.0], [0.0], [0.0]]
    # perplexity = 1 / p(true): (1/2)^6 -> 64; 1/4 (1/2)^4 1/4 -> 256; 1/8 (1/2)^4 1/8 -> 1024
    torch.testing.assert_close(tokens["perplexity"], torch.tensor([[64.0], [256.0], [1024.0]]), rtol=1e-5, atol=0)


def test_marginals_agree_with_per_base_probabilities_and_survive_extreme_logits() -> None:
    vocab = V2
    codes = np.random.default_rng(0).integers(0, 4, (2, 18), dtype=np.uint8)
    tokens = tokenize(codes, vocab)
    logits = torch.randn(2, tokens.ids.shape[1], vocab.size, generator=torch.Generator().manual_seed(0)) * 3
    expected = per_base_probabilities(logits, tokens, vocab)  # (2, 18, 4)
    kmer = logits[:, 1:, vocab.kmer_offset : vocab.kmer_offset + 4096]
    got = position_log_marginals(kmer)[0].exp().reshape(2, 18, 4)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    # one 6-mer 200 nats above the rest: certain, yet every score stays finite
    sharp = torch.zeros(1, 1, 4096)
    sharp[0, 0, kmer_letters().index("ACGTAC")] = 200.0
    scores = base_scores(position_log_marginals(sharp)[0].reshape(1, 6, 4), encode("ACGTAC"))
    assert all(torch.isfinite(v).all() for v in scores.values())
    assert (scores["constraint"] > 100).all() and scores["ref_prob"].eq(1).all()
    assert scores["entropy"].abs().max() < 1e-6
    # the true 6-mer 200 nats below the most likely one: a perplexity of e^200 is stored as e^80, never inf
    true = torch.tensor([[kmer_letters().index("ACGTAA")]])
    perplexity = token_scores(sharp, true, position_log_marginals(sharp)[1])["perplexity"]
    assert perplexity.item() == pytest.approx(math.exp(80), rel=1e-5)


# ----------------------------------------------------------------------------- the model, by a float64 reference


def reference(logits: np.ndarray, codes: np.ndarray) -> dict[str, np.ndarray]:
    """Every channel in float64 from full-vocabulary logits (windows, 1 + tokens, vocab) of N-free windows
    (windows, 6 * tokens): the brute-force marginal over the 6-mers' letters."""
    vocab = V2 if logits.shape[-1] == V2.size else V1
    z = logits[:, 1:, vocab.kmer_offset : vocab.kmer_offset + 4096].astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)  # (windows, tokens, 4096)
    letters = np.array([[ACGT.index(c) for c in k] for k in kmer_letters()])  # (4096, 6) ACGT column
    onehot = np.eye(4)[letters]  # (4096, 6, 4)
    marg = np.einsum("wtk,kic->wtic", p, onehot).reshape(len(codes), -1, 4)
    ref = codes.astype(np.int64)
    p_ref = np.take_along_axis(marg, ref[..., None], -1)[..., 0]
    alt = np.where(np.eye(4, dtype=bool)[ref], -np.inf, marg).max(-1)
    nt_digit = np.array([0, 2, 3, 1])[ref].reshape(len(codes), -1, 6)  # genome code -> ATCG digit
    true = (nt_digit * 4 ** np.arange(5, -1, -1)).sum(-1)
    p_true = np.take_along_axis(p, true[..., None], -1)[..., 0]
    return {
        "constraint": np.log2(p_ref) - np.log2(alt),
        "entropy": -(marg * np.log2(marg)).sum(-1),
        "ref_prob": p_ref,
        "recon_accuracy": np.repeat((p_true >= p.max(-1)).astype(float), 6, axis=1),
        "perplexity": np.repeat(1 / p_true, 6, axis=1),
    }


def stack(ref: dict[str, np.ndarray], channels: tuple[str, ...] = CHANNELS) -> np.ndarray:
    return np.stack([ref[c] for c in channels], -1)


def assert_scores_close(got: np.ndarray, want: np.ndarray, channels: tuple[str, ...] = CHANNELS) -> None:
    for j, channel in enumerate(channels):
        np.testing.assert_allclose(got[..., j], want[..., j], rtol=2e-5, atol=2e-5, err_msg=channel)


@pytest.fixture(scope="module", params=["v1", "v2"])
def lm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = save_random_nt(tmp_path_factory.mktemp(f"nt-{request.param}"), version=request.param, hidden=32,
                               layers=2, heads=4, seed=3)
    return load_nt(directory)


def windows(n: int = 3, length: int = 120, seed: int = 1) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 4, (n, length), dtype=np.uint8))


def test_every_channel_equals_a_float64_computation_from_the_models_logits(lm: Any) -> None:
    geometry = Geometry(120, 6, 6, 6)
    codes = windows()
    model = MaskedLMTracks(lm, geometry)
    with torch.inference_mode():
        got = model(codes).numpy()
        logits = lm(tokenize_acgt(codes, lm.config.vocab)).numpy()
    assert got.shape == (3, 120, 5) and got.dtype == np.float32
    assert_scores_close(got, stack(reference(logits, codes.numpy())))
    # channels chosen and ordered in config come out in that order
    two = MaskedLMTracks(lm, geometry, ("perplexity", "constraint"))
    with torch.inference_mode():
        np.testing.assert_array_equal(two(codes).numpy(), got[..., [4, 0]])


def explicit_masking_loop(lm: Any, codes: torch.Tensor, passes: list[list[int]]) -> np.ndarray:
    """Full-vocabulary logits with each token's row from the pass that masks it: one forward per pass,
    here written out, masking the listed DNA tokens (0-based) of every window."""
    ids = tokenize_acgt(codes, lm.config.vocab)
    out = torch.zeros(ids.shape[0], ids.shape[1], lm.config.vocab_size)
    with torch.inference_mode():
        for masked_tokens in passes:
            masked = ids.clone()
            for t in masked_tokens:
                masked[:, 1 + t] = lm.config.vocab.mask
            logits = lm(masked)
            for t in masked_tokens:
                out[:, 1 + t] = logits[:, 1 + t]
    return out.numpy()


def test_every_k_with_k_tokens_equals_masking_one_token_at_a_time(lm: Any) -> None:
    geometry = Geometry(120, 6, 6, 6)
    codes = windows(2, 60)  # 10 tokens
    loop = reference(explicit_masking_loop(lm, codes, [[t] for t in range(10)]), codes.numpy())
    for k in (10, 25):  # k = the window's token count, and more: passes past the last token mask nothing
        with torch.inference_mode():
            got = MaskedLMTracks(lm, geometry, masking="every_k", k=k)(codes).numpy()
        assert_scores_close(got, stack(loop))
    # k = 3: pass j masks tokens j, j + 3, j + 6, ...; all channels come from the same three passes
    with torch.inference_mode():
        got = MaskedLMTracks(lm, geometry, masking="every_k", k=3)(codes).numpy()
    want = reference(explicit_masking_loop(lm, codes, [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]), codes.numpy())
    assert_scores_close(got, stack(want))
    with torch.inference_mode():  # masking changes the answer (the loop is not the unmasked pass)
        unmasked = MaskedLMTracks(lm, geometry)(codes).numpy()
    assert np.abs(unmasked[..., 0] - got[..., 0]).max() > 1e-3


def test_the_cls_token_never_reaches_a_track(lm: Any) -> None:
    """Poison what the model computes at CLS: no track changes."""
    geometry = Geometry(120, 6, 6, 6)
    codes = windows()
    for masking, k in (("none", None), ("every_k", 4)):
        model = MaskedLMTracks(lm, geometry, masking=masking, k=k)
        with torch.inference_mode():
            clean = model(codes)
            hook = lm.backbone.register_forward_hook(lambda m, i, out: out.index_fill(1, torch.tensor([0]), math.nan))
            try:
                poisoned = model(codes)
            finally:
                hook.remove()
        assert torch.isfinite(poisoned).all()
        torch.testing.assert_close(poisoned, clean, atol=0, rtol=0)


def test_windows_hold_n_free_whole_6mers_only(lm: Any) -> None:
    model = MaskedLMTracks(lm, Geometry(120, 6, 6, 6))
    codes = windows()
    codes[1, 17] = 4
    with pytest.raises(ModelError, match="N-free windows only: window 1 has a non-ACGT base at position 17"):
        model(codes)
    with pytest.raises(ModelError, match="multiples of 6"):
        model(windows(1, 62))
    too_long = Geometry((lm.config.max_tokens) * 6, 6, 6, 6)
    with pytest.raises(ModelError, match="longer than this model takes"):
        MaskedLMTracks(lm, too_long)


# ----------------------------------------------------------------------------- the family


def test_settings_are_the_familys_own_and_checked() -> None:
    config = parse_config({"families": {"sensitivity": {"checkpoint": "demo", "channels": ["entropy", "constraint"],
                                                         "masking": "every_k", "k": 6}}})
    settings = config.families["sensitivity"]
    assert settings.channels == ("entropy", "constraint") and settings.k == 6
    assert get_family("sensitivity").channels(settings) == ("entropy", "constraint")
    assert parse_config({"families": {"sensitivity": {}}}).families["sensitivity"].channels == CHANNELS
    cases = [
        ({"channels": ["entropy", "gc"]}, r"c\.yaml: families\.sensitivity\.channels: .*gc is not one"),
        ({"channels": []}, r"families\.sensitivity\.channels: \[\] must name one or more"),
        ({"channels": ["entropy", "entropy"]}, r"names a channel twice"),
        ({"channels": "entropy"}, r"families\.sensitivity\.channels: expected a list of str"),
        ({"channels": [1]}, r"families\.sensitivity\.channels\[0\]: expected str"),
        ({"masking": "random"}, r"families\.sensitivity\.masking: 'random' is not one of none, every_k"),
        ({"masking": "every_k"}, r"families\.sensitivity\.k: masking every_k needs k >= 1"),
        ({"masking": "every_k", "k": 0}, r"families\.sensitivity\.k: masking every_k needs k >= 1"),
        ({"k": 6}, r"families\.sensitivity\.k: k is the pass count of masking every_k"),
        ({"heads": ["L0H0"]}, r"families\.sensitivity\.heads: unknown key"),  # the attention family's key
        ({"window": 1000}, r"families\.sensitivity\.window: 1000 bp is not whole 6-mers"),
    ]
    for raw, message in cases:
        with pytest.raises(ConfigError, match=message):
            parse_config({"families": {"sensitivity": raw}}, source="c.yaml")


def test_the_flop_estimate_scales_with_k() -> None:
    family = get_family("sensitivity")
    lengths = np.array([5994] * 10)

    def flops(**raw: Any) -> float:
        return family.flops(parse_config({"families": {"sensitivity": raw}}).families["sensitivity"], lengths)

    one, six = flops(), flops(masking="every_k", k=6)
    head = 10 * 999 * (2 * 1024**2 + 2 * 1024 * 4107)  # the LM head runs once per token whatever k
    assert six - head == pytest.approx(6 * (one - head))
    assert 5 < six / one < 6
    # NT-v2-500M shapes for a checkpoint not downloaded: ~2 * 500 M parameters * 1,000 tokens per window
    assert one / 10 == pytest.approx(2 * 0.5e9 * 1000, rel=0.35)
    assert flops(checkpoint="demo") < one / 1000


def read_tracks(out: Path, manifest: dict, chrom: str, length: int) -> np.ndarray:
    values = []
    for rel in manifest["tracks"].values():
        bw = pyBigWig.open(str(out / rel))
        try:
            values.append(np.array(bw.values(chrom, 0, length), dtype=np.float64))
        finally:
            bw.close()
    return np.stack(values, -1)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_random_nt(tmp_path_factory.mktemp("sens"), version="v2", hidden=32, layers=2, heads=4, seed=11)


@pytest.mark.parametrize(("masking", "chrom", "region"), [
    ({}, "chr3", None),  # the short chromosome: 14 windows, the last one aligned to its end
    ({"masking": "every_k", "k": 4}, "chr2", (0, 4_000)),  # from the gap at chr2's start into sequence
])
def test_every_base_of_a_stitched_track_is_the_owning_windows_own_computation(
    checkpoint: Path, tmp_path: Path, masking: dict, chrom: str, region: tuple[int, int] | None
) -> None:
    """stitch: nearest, so each base comes from exactly one window: the model's logits on that window,
    scored in float64 here, equal the bigWigs at every base the window owns (within each track's quantum)."""
    raw = {"checkpoint": str(checkpoint), "window": 240, "overlap": 120, "stitch": "nearest", **masking}
    config = parse_config({"families": {"sensitivity": raw}})
    regions = None
    if region is not None:
        regions = tmp_path / "regions.bed"
        regions.write_text(f"{chrom}\t{region[0]}\t{region[1]}\n")
    request = RunRequest(genome="demo", config=config, out=tmp_path / "hub", chroms=(chrom,), regions=regions)
    result = run_genome(request)
    out = tmp_path / "hub"
    assert validate_hub(out) == []
    manifest = result.manifest["families"]["sensitivity"]
    assert list(manifest["tracks"]) == list(CHANNELS)
    plan = plan_run(request).families[0]
    tiles = plan.plan
    lm = load_nt(checkpoint)
    genome = open_genome("demo")
    stored = read_tracks(out, manifest, chrom, genome.chrom_sizes[chrom])
    lo_region, hi_region = region or (0, genome.chrom_sizes[chrom])
    quanta = np.array([1e-3, 1e-3, 1 / 255, 1 / 255, 1e-2])
    k = masking.get("k")
    checked = 0
    for row in plan.window_rows:
        start, end = int(tiles.start[row]), int(tiles.end[row])
        codes = torch.from_numpy(genome.codes(chrom, start, end)[None])
        assert codes.max() < 4  # a window of N-free sequence only
        tokens = (end - start) // 6
        if k is None:
            with torch.inference_mode():
                logits = lm(tokenize_acgt(codes, lm.config.vocab)).numpy()
        else:
            logits = explicit_masking_loop(lm, codes, [list(range(j, tokens, k)) for j in range(min(k, tokens))])
        want = stack(reference(logits, codes.numpy()))[0]
        lo, hi = max(int(tiles.keep_start[row]), lo_region), min(int(tiles.keep_end[row]), hi_region)
        if lo >= hi:
            continue
        tol = quanta / 2 + 2e-5 * np.abs(want[lo - start : hi - start]) + 1e-6
        assert (np.abs(stored[lo:hi] - want[lo - start : hi - start]) <= tol).all(), row
        checked += hi - lo
    assert checked == plan.bases_scored == np.isfinite(stored[:, 0]).sum()
    if region is not None:  # the gap at the start of chr2: no window holds N, no value is written there
        assert np.isnan(stored[:1000]).all() and np.isfinite(stored[1000:4000]).all()


def test_dry_run_plans_the_demo_checkpoint_before_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTTRACKS_CACHE", str(tmp_path / "cache"))
    config = parse_config({"families": {"sensitivity": {"checkpoint": "demo"}}})
    plan = plan_run(RunRequest(genome="demo", config=config), dry_run=True)
    assert "checkpoint demo is not here yet; it is generated at first use" in plan.summary()
    assert not (tmp_path / "cache" / "models").exists()  # a dry run writes nothing
    text = json.dumps(get_family("sensitivity").describe(config.families["sensitivity"], plan.families[0].geometry,
                                                         plan.families[0].plan.overlap))
    assert '"masking": "none"' in text


def test_the_hg38_dry_run_prints_the_cost_of_both_masked_lm_families(capsys: pytest.CaptureFixture) -> None:
    from test_cli import run_cli

    code, out, err = run_cli(["genome", "hg38", "--dry-run", "--chroms", "chr21"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    for family, tracks in (("sensitivity", 5), ("attention", 3)):
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{family}: "))
        assert "windows of 12,282 bp" in lines[at] and f"{tracks} bigWig tracks" in lines[at]
        assert " FLOP: about " in lines[at + 2], lines[at : at + 3]
    assert "checkpoint InstaDeepAI/nucleotide-transformer-v2-500m-multi-species is not here yet" in out


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(checkpoint: Path) -> None:
    from nttracks.models.attention import AttentionTracks
    from nttracks.models.loading import load_nt_backbone

    codes = windows(4, 1200, seed=9)
    geometry = Geometry(1200, 6, 6, 6)
    with torch.inference_mode():
        cpu = MaskedLMTracks(load_nt(checkpoint), geometry, masking="every_k", k=3)(codes)
        fp32 = MaskedLMTracks(load_nt(checkpoint, device="cuda"), geometry, masking="every_k", k=3)(codes.cuda())
        unmasked = MaskedLMTracks(load_nt(checkpoint), geometry)(codes)
        bf16 = MaskedLMTracks(load_nt(checkpoint, device="cuda", dtype=torch.bfloat16), geometry)(codes.cuda())
        pairs = ((0, 1), (1, 3))
        attention_cpu = AttentionTracks(load_nt_backbone(checkpoint), geometry, pairs)(codes)
        attention_gpu = AttentionTracks(load_nt_backbone(checkpoint, device="cuda"), geometry, pairs)(codes.cuda())
    assert_scores_close(fp32.cpu().numpy(), cpu.numpy())
    assert torch.isfinite(bf16).all() and (bf16[..., 2].cpu() - unmasked[..., 2]).abs().max() < 0.05  # p(ref)
    torch.testing.assert_close(attention_gpu.cpu(), attention_cpu, atol=1e-6, rtol=1e-4)
