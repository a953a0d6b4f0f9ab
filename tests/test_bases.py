"""Base codes and the ASCII lookup table."""

from __future__ import annotations

import numpy as np

from nttracks.bases import ASCII_TO_CODE, BASES, NOT_A_LETTER, A, C, G, N, T, encode


def test_codes() -> None:
    assert (A, C, G, T, N) == (0, 1, 2, 3, 4)
    assert [BASES[code] for code in (A, C, G, T, N)] == list("ACGTN")


def test_encode_lut() -> None:
    np.testing.assert_array_equal(encode("ACGTacgtNnRYkm"), [0, 1, 2, 3, 0, 1, 2, 3, 4, 4, 4, 4, 4, 4])
    assert encode(b"1-*")[0] == 255  # not a letter: flagged, rejected by Genome
    assert NOT_A_LETTER == 255 and not ASCII_TO_CODE.flags.writeable
    np.testing.assert_array_equal(encode(np.frombuffer(b"gT", dtype=np.uint8)), [G, T])
