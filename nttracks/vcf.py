"""VCF input and the variant outputs: records split into (record, ALT) alleles; chromosome naming; TSV and VCF out.

Reading is pysam's (htslib): plain or bgzipped VCF (or BCF). Every record is split into one ``Allele`` per
ALT (a record with no ALT, ``.``, gives one allele whose ALT is empty), numbered by record and ALT, so each
one gets a row in the outputs whether it is scored or not.

Chromosome naming: a VCF may name chromosomes ``1``/``MT`` (Ensembl) where the genome has ``chr1``/``chrM``
(UCSC), or the reverse. ``ChromMapper`` maps each VCF name to the genome's: the name itself when the genome
has it, else its counterpart under the other convention; a name under neither is unknown (its alleles are
reported as ``unknown_contig``). Two VCF names that would land on one genome chromosome (``1`` and ``chr1``)
are ambiguous, and refused with an error naming both.

Outputs: a TSV with one row per allele (every allele, in input order), and a sites-only VCF (bgzip + tabix
index) with one line per allele carrying the scores as INFO fields declared in the header. The VCF keeps
each record's CHROM, POS, ID, QUAL and FILTER and the original REF and ALT; its own INFO and samples are not
carried over (they cannot be split per ALT faithfully). Both are written beside the final names and
renamed into place when complete.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import OutputError, VariantsError

_OTHER = {"chrM": "MT", "MT": "chrM", "M": "chrM", "chrMT": "MT"}
_INFO_SAFE = re.compile(r"[^A-Za-z0-9_.:+-]")


@dataclass(frozen=True)
class Allele:
    """One ALT of one VCF record. record: 1-based record number; allele: 1-based ALT index (1 for no ALT);
    pos: the VCF's 1-based POS; alt: '' when the record has no ALT ('.'); id: '.' when none."""

    record: int
    allele: int
    chrom: str
    pos: int
    id: str
    ref: str
    alt: str
    qual: str
    filter: str


class VcfReader:
    """An open VCF: ``header_lines`` (the ## lines), declared ``contigs`` {name: length or None}, and its
    alleles, in file order, from ``alleles()``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import pysam

        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise VariantsError(f"VCF {self.path} not found; check the path")
        # htslib warns on stderr of every contig and FILTER the header does not declare; nttracks accounts
        # for those records itself (unknown_contig, declared FILTERs in the output), so it is quiet here.
        self._verbosity = pysam.set_verbosity(0)
        try:
            self._vf = pysam.VariantFile(str(self.path))
        except (OSError, ValueError) as exc:
            pysam.set_verbosity(self._verbosity)
            raise VariantsError(f"VCF {self.path} cannot be read as VCF/BCF ({exc}); give a VCF (plain or "
                                "bgzip) with a ##fileformat line and a #CHROM header") from None
        header = self._vf.header
        self.header_lines = [line for line in str(header).splitlines() if line.startswith("##")]
        self.contigs: dict[str, int | None] = {name: header.contigs[name].length for name in header.contigs}
        self.filters = set(header.filters)

    def alleles(self) -> Iterator[Allele]:
        record = 0
        try:
            for rec in self._vf:
                record += 1
                qual = "." if rec.qual is None else _number(rec.qual)
                filters = ";".join(rec.filter.keys()) or "."
                ident = rec.id or "."
                alts = rec.alts or ("",)
                for i, alt in enumerate(alts, start=1):
                    yield Allele(record, i, rec.chrom, rec.pos, ident, rec.ref or "", alt or "", qual, filters)
        except (OSError, ValueError) as exc:
            raise VariantsError(f"VCF {self.path}: record {record + 1} cannot be read ({exc}); fix or remove "
                                "it (bcftools view reports the same problem)") from None

    def close(self) -> None:
        import pysam

        self._vf.close()
        pysam.set_verbosity(self._verbosity)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class ChromMapper:
    """VCF chromosome name -> the genome's, or None when the genome has it under neither naming."""

    def __init__(self, genome_chroms: Sequence[str], vcf_names: Sequence[str] = ()) -> None:
        self.genome = set(genome_chroms)
        self._map: dict[str, str | None] = {}
        self._owner: dict[str, str] = {}  # genome chromosome -> the VCF name mapped onto it
        for name in vcf_names:
            self(name)

    def __call__(self, name: str) -> str | None:
        if name in self._map:
            return self._map[name]
        target = name if name in self.genome else counterpart(name, self.genome)
        if target is not None:
            other = self._owner.get(target)
            if other is not None and other != name:
                raise VariantsError(
                    f"the VCF names chromosome {target} of the genome twice, as {other!r} and as {name!r}; "
                    "the naming is ambiguous: rename one of them (e.g. bcftools annotate --rename-chrs)"
                )
            self._owner[target] = name
        self._map[name] = target
        return target

    @property
    def renamed(self) -> dict[str, str]:
        """The VCF names that were mapped to another genome name."""
        return {k: v for k, v in self._map.items() if v is not None and v != k}


def counterpart(name: str, chroms: set[str] | Mapping[str, Any]) -> str | None:
    """``name`` under the other naming convention (chr1 <-> 1, chrM <-> MT), when ``chroms`` has it."""
    candidates = [_OTHER.get(name), name.removeprefix("chr") if name.startswith("chr") else "chr" + name]
    return next((c for c in candidates if c is not None and c in chroms), None)


# ----------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Field:
    """A score column: TSV header name, INFO ID and the header's description."""

    name: str
    description: str
    type: str = "Float"

    @property
    def info(self) -> str:
        return "NT_" + self.name.upper()


def _format(value: Any) -> str:
    if value is None:
        return "NA"
    if isinstance(value, float):
        return "NA" if math.isnan(value) else f"{value:.6g}"
    return str(value)


class TsvWriter:
    """One row per allele: record, allele, chrom, pos, id, ref, alt, status, reason, detail, then the scores."""

    COLUMNS = ("record", "allele", "chrom", "pos", "id", "ref", "alt", "status", "reason", "detail")

    def __init__(self, path: Path, fields: Sequence[Field]) -> None:
        self.path = path
        self.fields = tuple(fields)
        self._tmp = path.with_name(f".{path.name}.partial")
        self._f: TextIO = open(self._tmp, "w")  # closed in close() or abort()
        self._f.write("\t".join([*self.COLUMNS, *(f.name for f in self.fields)]) + "\n")

    def write(self, a: Allele, status: str, reason: str, detail: str, scores: Mapping[str, float]) -> None:
        row = [a.record, a.allele, a.chrom, a.pos, a.id, a.ref, a.alt or ".", status, reason or ".",
               detail.replace("\t", " ") or "."]
        self._f.write("\t".join([*map(_format, row), *(_format(scores.get(f.name)) for f in self.fields)]) + "\n")

    def close(self) -> None:
        self._f.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)


class VcfWriter:
    """The sites VCF, bgzipped and tabix-indexed. Lines are staged in input order; ``close`` writes the header
    (every INFO field declared, every contig and FILTER used), sorts when the input was not sorted, compresses
    and indexes."""

    STATUS = (Field("status", "nttracks: scored, or skipped (with NT_REASON)", "String"),
              Field("reason", "nttracks: why the allele was not scored (skipped only)", "String"),
              Field("record", "nttracks: 1-based number of the input record", "Integer"),
              Field("allele", "nttracks: 1-based index of this ALT in the input record", "Integer"))

    def __init__(self, path: Path, fields: Sequence[Field], reader: VcfReader, chrom_sizes: Mapping[str, int],
                 mapper: ChromMapper, extra_header: Sequence[str] = ()) -> None:
        if not path.name.endswith(".vcf.gz"):
            raise VariantsError(f"output VCF {path}: the name must end in .vcf.gz (it is bgzipped)")
        self.path = path
        self.fields = tuple(fields)
        self.reader, self.chrom_sizes, self.mapper = reader, chrom_sizes, mapper
        self.extra_header = list(extra_header)
        self._body = path.with_name(f".{path.name}.body")
        self._f: TextIO = open(self._body, "w")
        self._order: dict[str, int] = {c: i for i, c in enumerate(reader.contigs)}
        self._last: tuple[int, int] = (-1, 0)
        self._sorted = True
        self._filters: set[str] = set()

    def write(self, a: Allele, status: str, reason: str, scores: Mapping[str, float]) -> None:
        rank = self._order.setdefault(a.chrom, len(self._order))
        if (rank, a.pos) < self._last:
            self._sorted = False
        self._last = (rank, a.pos)
        self._filters.update(f for f in a.filter.split(";") if f not in (".", "PASS"))
        info = [f"NT_STATUS={status}", f"NT_RECORD={a.record}", f"NT_ALLELE={a.allele}"]
        if reason:
            info.append(f"NT_REASON={_INFO_SAFE.sub('_', reason)}")
        info += [f"{f.info}={_format(scores[f.name])}" for f in self.fields
                 if f.name in scores and not math.isnan(scores[f.name])]
        alt = a.alt or "."
        self._f.write(f"{a.chrom}\t{a.pos}\t{a.id}\t{a.ref}\t{alt}\t{a.qual}\t{a.filter}\t{';'.join(info)}\n")

    def _header(self) -> list[str]:
        lines = ["##fileformat=VCFv4.2"]
        for line in self.reader.header_lines:
            if line.startswith(("##fileformat", "##INFO", "##FORMAT")):
                continue  # the input's INFO and samples are not carried over
            lines.append(line)
        declared = set(self.reader.contigs)
        for chrom in self._order:
            if chrom not in declared:
                size = self.chrom_sizes.get(self.mapper(chrom) or "")
                lines.append(f"##contig=<ID={chrom}" + (f",length={size}>" if size else ">"))
        for name in sorted(self._filters - self.reader.filters):
            lines.append(f'##FILTER=<ID={name},Description="{name} (not declared in the input VCF)">')
        for f in (*self.STATUS, *self.fields):
            lines.append(f'##INFO=<ID={f.info},Number=1,Type={f.type},Description="{f.description}">')
        lines += self.extra_header
        lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
        return lines

    def close(self) -> None:
        import pysam

        self._f.close()
        plain = self.path.with_name(f".{self.path.name[:-3]}.partial")
        try:
            with open(self._body) as body:
                lines: Any = body
                if not self._sorted:
                    lines = sorted(body, key=self._key)
                with open(plain, "w") as out:
                    out.write("\n".join(self._header()) + "\n")
                    out.writelines(lines)
            staged = self.path.with_name(f".{self.path.name}.partial")
            pysam.tabix_compress(str(plain), str(staged), force=True)
            pysam.tabix_index(str(staged), preset="vcf", force=True)
            os.replace(f"{staged}.tbi", f"{self.path}.tbi")
            os.replace(staged, self.path)
        except (OSError, pysam.utils.SamtoolsError) as exc:  # type: ignore[attr-defined]
            raise OutputError(f"writing {self.path} failed: {exc}") from exc
        finally:
            self._body.unlink(missing_ok=True)
            plain.unlink(missing_ok=True)

    def _key(self, line: str) -> tuple[int, int]:
        chrom, pos = line.split("\t", 2)[:2]
        return self._order[chrom], int(pos)

    def abort(self) -> None:
        self._f.close()
        self._body.unlink(missing_ok=True)
