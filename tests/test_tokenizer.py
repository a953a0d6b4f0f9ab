from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nttracks.errors import ModelError
from nttracks.models.tokenizer import V1, V2, kmer_base_matrix, tokenize, tokenize_acgt, vocabulary_for

CODE = {"A": 0, "C": 1, "G": 2, "T": 3, "N": 4}


def codes_of(text: str) -> np.ndarray:
    return np.array([CODE[c] for c in text], dtype=np.uint8)


def reference_tokens(text: str, vocab) -> list[int]:
    """The JAX NucleotidesKmersTokenizer algorithm, one character at a time."""
    ids = [vocab.cls]
    for i, run in enumerate(text.split("N")):
        if i:
            ids.append(vocab.single_id("N"))
        full = len(run) // 6 * 6
        ids += [vocab.kmer_id(run[j : j + 6]) for j in range(0, full, 6)]
        ids += [vocab.single_id(c) for c in run[full:]]
    return ids


def test_v2_documented_ids():
    assert (V2.cls, V2.pad, V2.mask, V2.unk) == (3, 1, 2, 0)
    assert V2.kmer_id("AAAAAA") == 6
    assert V2.kmer_id("AAAAAT") == 7  # nucleotide order A, T, C, G
    assert V2.kmer_id("GGGGGG") == 4101
    assert [V2.single_id(b) for b in "ATCGN"] == [4102, 4103, 4104, 4105, 4106]
    assert tokenize(codes_of("AAAAAA"), V2).ids.tolist() == [[3, 6]]
    assert tokenize(codes_of("TAAAAAA"), V2).ids.tolist() == [[3, 1030, 4102]]
    assert vocabulary_for(4107) is V2


def test_v1_documented_ids():
    assert V1.kmer_id("AAAAAA") == 4
    assert V1.kmer_id("GGGGGG") == 4099
    assert [V1.single_id(b) for b in "ATCGN"] == [4100, 4101, 4102, 4103, 4104]
    assert tokenize(codes_of("AAAAAAT"), V1).ids.tolist() == [[3, 4, 4101]]
    assert vocabulary_for(4105) is V1
    with pytest.raises(ModelError, match="4100"):
        vocabulary_for(4100)


def test_documented_split():
    text = "ACGTGTACNTGCACGGANCGACTAGTCTGA"
    tokens = tokenize(codes_of(text), V2)
    words = [V2.token_text(int(t)) for t in tokens.ids[0]]
    assert words == "<cls> ACGTGT A C N TGCACG G A N CGACTA GTCTGA".split()
    # where each base went
    assert tokens.token_of_base[0, :8].tolist() == [1] * 6 + [2, 3]
    assert tokens.offset_in_token[0, :8].tolist() == [0, 1, 2, 3, 4, 5, 0, 0]
    assert tokens.in_kmer[0, :8].tolist() == [True] * 6 + [False, False]
    assert not tokens.padded and tokens.pad_mask is None


def test_empty_and_no_eos():
    assert tokenize(np.zeros(0, np.uint8), V2).ids.tolist() == [[3]]
    assert tokenize(codes_of("A"), V2).ids.tolist() == [[3, 4102]]


def test_ragged_batch_is_right_padded():
    batch = np.stack([codes_of("ACGTGTACGTGT"), codes_of("ACGNGTACGTGT")])
    tokens = tokenize(batch, V2)
    assert tokens.padded
    assert tokens.ids[0].tolist()[3:] == [1] * (tokens.ids.shape[1] - 3)
    assert tokens.pad_mask is not None and tokens.pad_mask.sum().item() == tokens.ids.shape[1] - 3


def test_rejects_bad_codes():
    with pytest.raises(ModelError, match=r"0\.\.4"):
        tokenize(np.array([0, 1, 7], np.uint8), V2)
    with pytest.raises(ModelError, match="uint8"):
        tokenize(np.array([0, 1], np.int64), V2)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet="ACGTN", max_size=40), min_size=1, max_size=4).filter(
        lambda rows: len({len(r) for r in rows}) == 1
    )
)
def test_matches_reference_algorithm(rows):
    tokens = tokenize(np.stack([codes_of(r) for r in rows]), V2)
    for i, text in enumerate(rows):
        expected = reference_tokens(text, V2)
        got = tokens.ids[i].tolist()
        assert got[: len(expected)] == expected
        assert set(got[len(expected) :]) <= {V2.pad}
        # every base maps back to a token that contains it
        for j, base in enumerate(text):
            token = V2.token_text(got[tokens.token_of_base[i, j]])
            assert token[tokens.offset_in_token[i, j]] == base


def test_kmer_base_matrix():
    matrix = kmer_base_matrix(V2)
    assert matrix.shape == (4096, 6, 4)
    for k, kmer in enumerate(itertools.islice(itertools.product("ATCG", repeat=6), 0, 4096, 37)):
        k *= 37
        assert ["ACGT"[int(c)] for c in matrix[k].argmax(-1)] == list(kmer)


@pytest.mark.parametrize("with_n", [False, True])
def test_tokenize_one_thread_large_batch(with_n):
    """The batch the pipeline feeds (64 windows of 12,282 bases), on one torch thread, with and without N.

    Its speed (issue 3: at least 20 Mbp/s per core) is measured by ``benchmarks/bench_backbone.py``, not here:
    a timed assertion fails on a busy CI machine.
    """
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 4, (64, 12_282), dtype=np.uint8)
    if with_n:
        codes[:, 100] = 4
        codes[::2, 5000:5003] = 4
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tokens = tokenize(codes, V2)
    finally:
        torch.set_num_threads(threads)
    for i in (0, 1, 63):
        text = "".join("ACGTN"[c] for c in codes[i])
        expected = reference_tokens(text, V2)
        assert tokens.ids[i].tolist()[: len(expected)] == expected
        assert set(tokens.ids[i].tolist()[len(expected):]) <= {V2.pad}
    assert tokens.padded == with_n


def test_tokenize_acgt_matches_tokenize():
    codes = torch.from_numpy(np.random.default_rng(1).integers(0, 4, (3, 64), dtype=np.uint8))
    assert torch.equal(tokenize_acgt(codes, V1), tokenize(codes, V1).ids)
