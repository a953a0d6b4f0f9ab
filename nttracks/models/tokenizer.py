"""Nucleotide Transformer 6-mer tokenizer, vectorized over uint8 base codes.

Input is the genome's base codes (A=0, C=1, G=2, T=3, N=4; see ``nttracks.bases``).
The NT vocabulary orders nucleotides A, T, C, G (so AAAAAT follows AAAAAA), cuts each N-free run
left to right into non-overlapping 6-mers, emits the remainder of a run (< 6 bases) and every N as
single-nucleotide tokens, prepends ``<cls>`` and appends no ``<eos>``. Rows of a batch that end up
with fewer tokens are right-padded with ``<pad>`` (id 1).

Everything is whole-array torch arithmetic (no per-character Python), so it runs on the device the
codes are on. Windows without N take a reshape-only fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError

KMER = 6
NUM_KMERS = 4**KMER

# genome code (A=0, C=1, G=2, T=3, N=4) -> NT nucleotide index (A=0, T=1, C=2, G=3, N=4)
_TO_NT = torch.tensor([0, 2, 3, 1, 4], dtype=torch.int64)
# NT nucleotide index (A=0, T=1, C=2, G=3) -> output column in genome order (A, C, G, T)
NT_TO_ACGT = (0, 3, 1, 2)
# output column (A, C, G, T) -> NT nucleotide index
ACGT_TO_NT = (0, 2, 3, 1)
_WEIGHTS = torch.tensor([4 ** (KMER - 1 - i) for i in range(KMER)], dtype=torch.int64)


@dataclass(frozen=True)
class Vocabulary:
    """Token ids of one NT vocabulary.

    kmer_offset: id of AAAAAA; 6-mers follow in A,T,C,G order (itertools.product("ATCG", repeat=6)).
    single_offset: id of the single-nucleotide token A; T, C, G, N follow.
    size: rows of the embedding table.
    """

    name: str
    kmer_offset: int
    single_offset: int
    size: int
    unk: int = 0
    pad: int = 1
    mask: int = 2
    cls: int = 3

    def kmer_id(self, kmer: str) -> int:
        """Id of a 6-mer written in letters, e.g. ``"ACGTGT"``."""
        if len(kmer) != KMER or any(c not in "ATCG" for c in kmer):
            raise ModelError(f"{kmer!r} is not a 6-mer over A, T, C, G")
        value = 0
        for c in kmer:
            value = value * 4 + "ATCG".index(c)
        return self.kmer_offset + value

    def single_id(self, base: str) -> int:
        """Id of the single-nucleotide token for ``base`` (A, T, C, G or N)."""
        if base not in "ATCGN" or len(base) != 1:
            raise ModelError(f"{base!r} is not one of A, T, C, G, N")
        return self.single_offset + "ATCGN".index(base)

    def token_text(self, token: int) -> str:
        """Readable form of an id (for tests and debugging)."""
        specials = {self.unk: "<unk>", self.pad: "<pad>", self.mask: "<mask>", self.cls: "<cls>"}
        if token in specials:
            return specials[token]
        if self.kmer_offset <= token < self.kmer_offset + NUM_KMERS:
            value = token - self.kmer_offset
            return "".join("ATCG"[(value >> (2 * (KMER - 1 - i))) & 3] for i in range(KMER))
        if self.single_offset <= token < self.single_offset + 5:
            return "ATCGN"[token - self.single_offset]
        return f"<{token}>"


# NT v1 (4105 embedding rows; <eos>/<bos> exist in the HF tokenizer but not in the embedding).
V1 = Vocabulary("v1", kmer_offset=4, single_offset=4100, size=4105)
# NT v2 and SegmentNT (4107 rows): <eos>=4, <bos>=5 sit before the 6-mers.
V2 = Vocabulary("v2", kmer_offset=6, single_offset=4102, size=4107)


def vocabulary_for(vocab_size: int) -> Vocabulary:
    """The vocabulary whose embedding table has ``vocab_size`` rows (4105: v1, 4107: v2)."""
    for vocab in (V1, V2):
        if vocab.size == vocab_size:
            return vocab
    raise ModelError(
        f"vocab_size {vocab_size} is not a Nucleotide Transformer vocabulary "
        f"(expected {V1.size} for NT v1 or {V2.size} for NT v2/SegmentNT)"
    )


@dataclass(frozen=True)
class Tokens:
    """A tokenized batch and where each base went.

    ids: (batch, tokens) int64, ``<cls>`` first, right-padded with ``<pad>``.
    token_of_base: (batch, length) int64, index into the token axis of the token holding each base.
    offset_in_token: (batch, length) int64, position of the base inside its token (0..5; 0 for singles).
    in_kmer: (batch, length) bool, whether the base sits in a 6-mer token (else a single-nucleotide token).
    padded: whether any row has ``<pad>`` tokens (False for equal-length N-free windows).
    """

    ids: torch.Tensor
    token_of_base: torch.Tensor
    offset_in_token: torch.Tensor
    in_kmer: torch.Tensor
    padded: bool

    @property
    def pad_mask(self) -> torch.Tensor | None:
        """(batch, tokens) bool, True at ``<pad>``; None when nothing is padded."""
        return self.ids.eq(1) if self.padded else None


def _as_codes(codes: torch.Tensor | np.ndarray) -> torch.Tensor:
    if isinstance(codes, np.ndarray):
        codes = torch.from_numpy(np.ascontiguousarray(codes))
    if codes.dtype != torch.uint8:
        raise ModelError(f"base codes must be uint8 (A=0, C=1, G=2, T=3, N=4), got {codes.dtype}")
    if codes.dim() == 1:
        codes = codes.unsqueeze(0)
    if codes.dim() != 2:
        raise ModelError(f"base codes must have shape (batch, length), got {tuple(codes.shape)}")
    return codes


def tokenize(codes: torch.Tensor | np.ndarray, vocab: Vocabulary) -> Tokens:
    """Tokenize a batch of windows of base codes.

    codes: (batch, length) or (length,) uint8, A=0, C=1, G=2, T=3, N=4 (values > 4 are rejected).
    Returns ``Tokens`` on the device of ``codes``.
    """
    codes = _as_codes(codes)
    batch, length = codes.shape
    device = codes.device
    if length == 0:
        ids = torch.full((batch, 1), vocab.cls, dtype=torch.int64, device=device)
        empty = torch.zeros((batch, 0), dtype=torch.int64, device=device)
        return Tokens(ids, empty, empty, empty.bool(), False)
    if bool(codes.max() > 4):
        raise ModelError(f"base codes must be 0..4 (A, C, G, T, N); found {int(codes.max())}")
    if not bool(codes.eq(4).any()):
        return _tokenize_clean(_TO_NT.to(device)[codes.long()], vocab)
    return _tokenize_general(codes, vocab)


def tokenize_acgt(codes: torch.Tensor, vocab: Vocabulary) -> torch.Tensor:
    """Token ids (batch, 1 + length // 6 + length % 6) of N-free codes, with no check and no host sync.

    For callers that have already rejected N and values > 3 (e.g. SegmentNT), so a GPU batch
    tokenizes without waiting on the device.
    """
    return _tokenize_clean(_TO_NT.to(codes.device)[codes.long()], vocab).ids


def _tokenize_clean(nt: torch.Tensor, vocab: Vocabulary) -> Tokens:
    """N-free windows: full 6-mers, then ``length % 6`` single-nucleotide tokens."""
    batch, length = nt.shape
    device = nt.device
    n_kmers = length // KMER
    full = n_kmers * KMER
    kmer_ids = nt[:, :full].reshape(batch, n_kmers, KMER) @ _WEIGHTS.to(device) + vocab.kmer_offset
    cls = torch.full((batch, 1), vocab.cls, dtype=torch.int64, device=device)
    ids = torch.cat([cls, kmer_ids, nt[:, full:] + vocab.single_offset], dim=1)
    pos = torch.arange(length, device=device)
    token_of_base = torch.where(pos < full, pos // KMER, n_kmers + pos - full) + 1
    offset = torch.where(pos < full, pos % KMER, 0)
    in_kmer = pos < full
    expand = (batch, length)
    return Tokens(ids, token_of_base.expand(expand), offset.expand(expand), in_kmer.expand(expand), False)


def _tokenize_general(codes: torch.Tensor, vocab: Vocabulary) -> Tokens:
    """Windows with N: each N-free run is cut into 6-mers on its own, N and leftovers are singles.

    Runs in NumPy on the host (its cumulative max/min and where are several times faster than
    torch's on CPU); windows with N are rare in the pipeline, which tiles N-free contigs.
    """
    device = codes.device
    x = _TO_NT.numpy().astype(np.int32)[codes.cpu().numpy()]
    batch, length = x.shape
    is_n = x == 4
    pos = np.arange(length, dtype=np.int32)
    # each base's N-free run: [one past the last N before it, the first N after it)
    last_n = np.maximum.accumulate(np.where(is_n, pos, -1), axis=1)
    next_n = np.minimum.accumulate(np.where(is_n, pos, length)[:, ::-1], axis=1)[:, ::-1]
    offset = pos - last_n - 1
    run_full = (next_n - last_n - 1) // KMER * KMER
    in_kmer = (offset < run_full) & ~is_n
    offset6 = offset % KMER
    starts = ~in_kmer | (offset6 == 0)
    token_of_base = np.cumsum(starts, axis=1, dtype=np.int64)  # 1-based: index 0 is <cls>
    flat = np.flatnonzero(starts)
    xf = x.ravel()
    kmer = in_kmer.ravel()[flat]
    values = xf[flat] + vocab.single_offset
    kmer_starts = flat[kmer]  # a 6-mer never crosses an N or a row end, so flat + 5 stays in its run
    kmer_values = xf[kmer_starts]
    for i in range(1, KMER):
        kmer_values = kmer_values * 4 + xf[kmer_starts + i]
    values[kmer] = kmer_values + vocab.kmer_offset
    counts = token_of_base[:, -1]
    width = int(counts.max()) + 1
    ids = np.full((batch, width), vocab.pad, dtype=np.int64)
    ids[:, 0] = vocab.cls
    ids[flat // length, token_of_base.ravel()[flat]] = values
    padded = bool((counts + 1 < width).any())

    def back(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return Tokens(
        back(ids),
        back(token_of_base),
        back(np.where(in_kmer, offset6, 0).astype(np.int64)),
        back(in_kmer),
        padded,
    )


def kmer_base_matrix(vocab: Vocabulary, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(4096, 6, 4) one-hot: entry [k, i, b] = 1 when 6-mer k has base b (A, C, G, T) at offset i.

    Multiplying 6-mer probabilities by it marginalizes them into per-offset base probabilities.
    """
    values = torch.arange(NUM_KMERS)
    digits = torch.stack([(values >> (2 * (KMER - 1 - i))) & 3 for i in range(KMER)], dim=1)  # ATCG index
    acgt = torch.tensor(NT_TO_ACGT)[digits]
    return torch.nn.functional.one_hot(acgt, 4).to(dtype)
