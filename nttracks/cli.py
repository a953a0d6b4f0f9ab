"""The ``nttracks`` command line: each command validates its arguments, loads the config and calls one
library function. Library errors (``NttracksError``) become one message and an exit code, here only.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import NttracksError, UsageError

EXIT_CODES = """Exit codes: 0 built, or nothing to do (every input unchanged); 1 an unexpected error; 2 bad
arguments or config; 3 genome; 4 model or checkpoint; 5 output (disk full, permissions: the previous hub
is left intact); 130 stopped by Ctrl-C, 143 by SIGTERM (the live hub is not changed; the next run
resumes from the finished shards)."""

app = typer.Typer(
    name="nttracks",
    help="Genome-browser track hubs from Nucleotide Transformer models.\n\n"
    "Slides a model across whole chromosomes, stitches the overlapping windows and writes bigWig "
    "tracks bundled as UCSC and WashU hubs. Start with: nttracks genome demo --out hub/",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: flags read as flags (--dry-run), not "--dry-run <bool>"
)
models_app = typer.Typer(
    help="Inspect Nucleotide Transformer checkpoints.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(models_app, name="models")
hub_app = typer.Typer(
    help="Check and rewrite hubs: the UCSC hub, WashU datahub, JBrowse 2 config and igv.js viewer page.",
    no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(hub_app, name="hub")
from .finetune_cli import finetune_app  # noqa: E402  (after app: the finetune command group)

app.add_typer(finetune_app, name="finetune")


def _progress(description: str, total: int) -> Any:
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (cron logs stay clean).
    return tqdm(total=total, desc=description, unit="bp", unit_scale=True, disable=None, dynamic_ncols=True)


@app.command("genome", epilog=EXIT_CODES)
def genome_cmd(
    name: Annotated[
        str | None,
        typer.Argument(help="A registered genome (demo, hg38, hg19, mm10, mm39, dm6); or use --fasta."),
    ] = None,
    fasta: Annotated[
        Path | None,
        typer.Option(help="Run on any FASTA file (plain or bgzip) instead of a registered genome."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Hub directory to write (created when missing).")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="YAML config (default: configs/<genome>.yaml, or configs/default.yaml for --fasta)."
        ),
    ] = None,
    chroms: Annotated[
        str | None, typer.Option(help="Comma-separated chromosomes to score (default: all).")
    ] = None,
    regions: Annotated[
        Path | None, typer.Option(help="BED file: write only these intervals (the model still sees their flanks).")
    ] = None,
    exclude: Annotated[
        Path | None, typer.Option(help="BED file: never write these intervals (e.g. a blacklist).")
    ] = None,
    annotation: Annotated[
        Path | None,
        typer.Option(
            help="BED of element classes (chrom, start, end, class): the masked-LM families' pages summarize "
            "their tracks per class (sets their 'annotation' setting)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto (GPU when present), cpu, cuda or cuda:N.")] = "auto",
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Windows per forward pass, for every family (default: each family's batch_size; unset, the "
            "most that fit in the GPU's free memory, measured, or 8 on the CPU). Lower it if the GPU runs out "
            "of memory; outputs are identical whatever the batch size.",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Public URL the hub will be served from; needed for the WashU datahub (washu.json)."
        ),
    ] = None,
    single_file: Annotated[
        bool,
        typer.Option("--single-file", help="Write the UCSC hub as one hub.txt ('useOneFile on') instead of "
                     "hub.txt + genomes.txt + trackDb.txt."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Check everything and print the plan (windows, bases scored and not, time on the device, "
            "output size); write nothing anywhere.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write into an --out that holds files nttracks did not write (they are left alone)."
        ),
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q",
            help="For cron: no progress bars and no messages unless something goes wrong (errors and warnings "
            "still go to stderr; the full log is in the hub's work directory).",
        ),
    ] = False,
    shard_size: Annotated[
        int,
        typer.Option(
            help="Bases written per shard, the unit of work: a run that is interrupted resumes from its "
            "finished shards, and a changed input recomputes only the shards it touches."
        ),
    ] = 2_000_000,
    executor: Annotated[
        str,
        typer.Option(
            help="local: score the shards in this process, on --device. ray: on every GPU of a Ray cluster, "
            "one worker per GPU (needs pip install 'nttracks[ray]'; see the README's cluster section).",
        ),
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Ray: the cluster to use (HOST:6379, ray://HOST:10001 or auto). Default: $RAY_ADDRESS, else "
            "the cluster `ray start` started on this machine, else a Ray started here for this run.",
        ),
    ] = None,
    gpus: Annotated[
        int | None,
        typer.Option(
            help="Ray: use at most N workers (one per GPU; on a cluster without GPUs, one per CPU); default "
            "all. --dry-run: estimate the wall time on N GPUs (default: the Ray cluster's).",
        ),
    ] = None,
    shared_fs: Annotated[
        bool,
        typer.Option(
            "--shared-fs/--no-shared-fs",
            help="Ray: workers write shard outputs into the work directory beside --out, which every node "
            "must see at the same path (default); --no-shared-fs returns them through Ray's object store.",
        ),
    ] = True,
) -> None:
    """Build the track hub of a genome: every configured track family, as bigWig tracks.

    Run it again (e.g. nightly from cron) and it computes only what changed: shards whose sequence,
    model weights, settings and output format are unchanged are reused, unchanged bigWigs are kept, and
    with nothing changed it writes nothing. An interrupted run (crash, kill, full disk) resumes from its
    finished shards; the live hub is replaced atomically, hub.txt last. The log is appended to
    .<out>.nttracks-work/nttracks.log beside --out; nttracks status DIR reports what is stale.

    Example: nttracks genome demo --out hub/   (the bundled demo genome; offline, CPU, under a minute)
    """
    from .config import config_for_genome, load_config, with_annotation
    from .planning import RunRequest, plan_run
    from .runs import check_out, run_genome

    if (name is None) == (fasta is None):
        raise UsageError("give either a genome name (e.g. demo, hg38) or --fasta PATH, not both or neither")
    if out is None and not dry_run:
        raise UsageError("no output directory: pass --out DIR (or --dry-run to see the plan)")
    if out is not None:
        check_out(out, force=force)
    if executor != "ray":
        given = [f for f, v in (("--ray-address", ray_address), ("--no-shared-fs", not shared_fs)) if v]
        if gpus is not None and not dry_run:
            given.append("--gpus")
        if given:
            raise UsageError(f"{', '.join(given)}: applies only to --executor ray; drop it for a local run")
    elif dry_run and gpus is None:
        from .ray_executor import dry_run_gpus

        gpus = dry_run_gpus(ray_address)
    genome: str | Path = name if name is not None else fasta  # type: ignore[assignment]
    cfg = load_config(config if config is not None else config_for_genome(name or "default"))
    if annotation is not None:
        cfg = with_annotation(cfg, annotation)
    request = RunRequest(
        genome=genome,
        config=cfg,
        out=out,
        chroms=_chroms(chroms),
        device=device,
        regions=regions,
        exclude=exclude,
        base_url=base_url,
        force=force,
        batch_size=batch_size,
        single_file=single_file,
        shard_bases=shard_size,
        executor=executor,
        ray_address=ray_address,
        gpus=gpus,
        shared_fs=shared_fs,
    )
    if dry_run:
        typer.echo(plan_run(request, dry_run=True).summary())
        return
    result = run_genome(
        request, progress=None if quiet else _progress, download_progress=None if quiet else _download_progress()
    )
    if quiet:
        return
    if not result.changed:
        typer.echo(f"{result.out} is up to date: nothing to do (no file written)")
        return
    families = ", ".join(result.manifest["families"])
    typer.echo(f"wrote {result.out}/hub.txt ({families}; {result.computed} shards computed, {result.reused} "
               f"reused, {len(result.files)} files published, {result.seconds:.1f} s); "
               f"manifest: {result.out}/manifest.json")
    if base_url is None:
        typer.echo("no --base-url: the WashU datahub (washu.json) was not written", err=True)


@app.command("status")
def status_cmd(
    directory: Annotated[Path, typer.Argument(help="A hub directory nttracks built (its --out).")],
    config: Annotated[
        Path | None, typer.Option(help="Check against this config instead of the one the hub was built from.")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Is the hub up to date with its inputs? Lists every unit (family x chromosome): up to date, or
    stale and why (sequence, model weights, settings or output format changed), and the last run's
    result and duration. Writes nothing and runs no model.

    Exit code: 0 up to date, 6 stale (a run would compute something, or the inputs cannot be checked),
    2 when DIR holds no hub.
    """
    from .status import hub_status

    status = hub_status(directory, config=config)
    typer.echo(status.to_json() if json_out else status.summary())
    if not status.up_to_date:
        raise typer.Exit(6)


def _chroms(text: str | None) -> tuple[str, ...] | None:
    """--chroms chr1,chr2 -> ("chr1", "chr2"); an empty name in the list is an error."""
    if text is None:
        return None
    names = tuple(c.strip() for c in text.split(","))
    if not all(names):
        raise UsageError(
            f"--chroms {text!r} has an empty chromosome name; give names separated by commas, e.g. chr1,chr2"
        )
    if len(set(names)) != len(names):
        twice = next(c for c in names if names.count(c) > 1)
        raise UsageError(f"--chroms {text!r} names {twice} twice; give each chromosome once")
    return names


def _download_progress() -> Any:
    """progress(done, total) for a genome download: a tqdm bar in bytes, made on the first call."""
    bar: Any = None

    def update(done: int, total: int | None) -> None:
        nonlocal bar
        if bar is None:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, desc="download", unit="B", unit_scale=True, disable=None, dynamic_ncols=True)
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    return update


@hub_app.command("check")
def hub_check(
    target: Annotated[str, typer.Argument(help="A hub directory, or the http(s) URL of a served hub's hub.txt "
                                          "(or of its directory).")],
) -> None:
    """Check a hub as UCSC hubCheck would, plus the WashU datahub and the JBrowse config.

    Checks the required settings, names (^[A-Za-z][A-Za-z0-9_]*$, unique), labels (17/76 characters),
    containers and their children and subgroups, html pages and descriptionUrl, that every bigDataUrl
    opens as a bigWig whose chromosomes belong to the genome, that every file is readable by others (a
    web server runs as another user), WashU URLs absolute, JBrowse adapters pointing at files that exist.
    Over a URL it also checks that the server answers byte ranges (206) and CORS. Prints one line per
    problem and exits 1 when there is any.
    """
    from .hubremote import check_target

    problems, what = check_target(target)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{what}: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo(f"{what}: no problems found")


@hub_app.command("build")
def hub_build(
    directory: Annotated[Path, typer.Argument(help="A hub directory an nttracks run wrote (it holds manifest.json).")],
    base_url: Annotated[
        str | None, typer.Option(help="New public URL of the hub (written into washu.json, which needs it).")
    ] = None,
    short_label: Annotated[str | None, typer.Option(help="New hub short label (at most 17 characters).")] = None,
    long_label: Annotated[str | None, typer.Option(help="New hub long label.")] = None,
    single_file: Annotated[
        bool | None,
        typer.Option("--single-file/--multi-file",
                     help="One hub.txt with 'useOneFile on', or hub.txt + genomes.txt + trackDb.txt "
                     "(default: as the hub is now)."),
    ] = None,
    igv_js: Annotated[
        str | None,
        typer.Option(help="igv.js for the viewer page: a local igv.min.js (copied into the hub, for readers "
                     "without internet) or a URL (default: as the hub is now; first the public copy)."),
    ] = None,
) -> None:
    """Rewrite the hub files from the manifest (new base URL, labels, layout) without recomputing tracks.

    The rewritten hub is checked before anything in DIR changes; hub.txt is replaced last.
    """
    from .hubbuild import rebuild_hub

    written = rebuild_hub(directory, base_url=base_url, short_label=short_label, long_label=long_label,
                          single_file=single_file, igv_js=igv_js)
    typer.echo(f"rewrote {len(written)} files in {directory} (hub.txt last); the hub passes 'nttracks hub check'")


@app.command("serve")
def serve_cmd(
    directory: Annotated[Path, typer.Argument(help="The hub directory to serve (the one holding hub.txt).")],
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 for every interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8000,
) -> None:
    """Serve a hub over HTTP the way genome browsers need: byte ranges, CORS, ETags; Ctrl-C stops.

    Prints the links that open the hub in UCSC, WashU, JBrowse 2 and the igv.js viewer page. UCSC and
    WashU fetch the hub from their own servers, so they can open it only from an address the internet
    reaches; JBrowse and the viewer page run in your browser and work on 127.0.0.1.
    """
    from .serve import hub_links, make_server, server_url

    server = make_server(directory, host, port)
    url = server_url(server)
    typer.echo(f"serving {directory} at {url} (Ctrl-C to stop)")
    for name, link in hub_links(directory, url).items():
        typer.echo(f"  {name}: {link}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


@app.command("evaluate")
def evaluate_cmd(
    hub: Annotated[Path, typer.Argument(help="A hub directory an nttracks genome run wrote (manifest.json).")],
    truth: Annotated[
        str,
        typer.Option(help="Truth annotation: a BED with SegmentNT class names in the name column, a GENCODE/"
                     "Ensembl GTF (genes, exons, introns, splice sites, UTRs), or 'demo' (the demo genome's "
                     "planted elements)."),
    ],
    family: Annotated[str, typer.Option(help="The family whose element tracks to score.")] = "elements",
    chroms: Annotated[
        str | None, typer.Option(help="Comma-separated chromosomes to score (default: all the tracks hold).")
    ] = None,
) -> None:
    """Score a hub's element tracks against a truth annotation with SegmentNT's metrics.

    Per class, per chromosome and overall: AUROC, AUPRC, MCC at 0.5 and at the best threshold, over the bases
    the tracks scored. Writes <assembly>/<family>_evaluation.tsv and .png into the hub and shows them on the
    family's description page.

    Example: nttracks genome demo --out hub/ && nttracks evaluate hub/ --truth demo
    """
    from .evaluate import evaluate

    result = evaluate(hub, truth, family=family, chroms=_chroms(chroms))
    typer.echo("class\tAUROC\tAUPRC\tMCC@0.5\tMCC best (over the chromosomes scored)")
    for row in result.overall():
        s = row.scores
        typer.echo(f"{row.cls}\t{s.auroc:.3f}\t{s.auprc:.3f}\t{s.mcc_05:.3f}\t{s.mcc_best:.3f}")
    if result.skipped:
        typer.echo(f"not in the truth, not evaluated: {', '.join(result.skipped)}", err=True)
    typer.echo(f"wrote {result.tsv} and {result.png}" + (f"; shown on {result.page}" if result.page else ""))


@models_app.command("inspect")
def models_inspect(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint directory (HF layout) or HuggingFace id.")],
) -> None:
    """Architecture, parameter count, vocabulary and window geometry of a checkpoint."""
    from .models import describe_model

    typer.echo(str(describe_model(checkpoint)))


def _counter(description: str, unit: str) -> Any:
    """progress(n) for work of unknown size: a tqdm bar counting ``unit``s, with their rate per second."""
    from tqdm.auto import tqdm

    return tqdm(desc=description, unit=unit, disable=None, dynamic_ncols=True)


def _genome_arg(genome: str | None, fasta: Path | None) -> str | Path:
    if (genome is None) == (fasta is None):
        raise UsageError("give either --genome NAME (e.g. demo, hg38) or --fasta PATH, not both or neither")
    return genome if genome is not None else fasta  # type: ignore[return-value]


_GENOME_OPT = typer.Option("--genome", help="A registered genome (demo, hg38, hg19, mm10, mm39, dm6); or --fasta.")
_FASTA_OPT = typer.Option("--fasta", help="Any FASTA file (plain or bgzip) instead of a registered genome.")
_VCONFIG_OPT = typer.Option(
    "--config", help="YAML with a 'variants:' mapping (checkpoint, window, layer, max_indel, min_flank, "
    "reverse_complement, llr, batch_size, precision). Default: the demo's settings for --genome demo, else NT-v2 "
    "500M with a 5,994 bp window.")


@app.command("variants")
def variants_cmd(
    vcf: Annotated[Path, typer.Argument(help="VCF to score (plain or bgzipped; BCF too).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for variants.tsv, variants.vcf.gz(.tbi), "
                                      "variants.json (and the comparison report).")],
    genome: Annotated[str | None, _GENOME_OPT] = None,
    fasta: Annotated[Path | None, _FASTA_OPT] = None,
    config: Annotated[Path | None, _VCONFIG_OPT] = None,
    checkpoint: Annotated[str | None, typer.Option(help="NT masked LM: directory, HF id, or demo.")] = None,
    window: Annotated[int | None, typer.Option(help="Context in bp around each variant (whole 6-mers).")] = None,
    layer: Annotated[int | None, typer.Option(help="Embedding layer (0: token embeddings; default: the last).")] = None,
    reverse_complement: Annotated[
        bool | None, typer.Option("--reverse-complement/--forward-only",
                                  help="Average every score over both strands (twice the compute).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per forward pass.")] = None,
    device: Annotated[str, typer.Option(help="auto (GPU when present), cpu, cuda or cuda:N.")] = "auto",
    compare: Annotated[
        list[Path] | None,
        typer.Option(help="External scores to set beside NT's (repeatable): TSV keyed by chrom, pos, ref, alt "
                     "(plain, gzip or tabix-indexed), or a bigWig of per-base scores (GERP, phyloP)."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="With --compare: a column of a compared file, or a TSV chrom, pos, ref, alt, label, "
                     "marking positive (1) and negative (0) variants; gives AUROC/AUPRC per score."),
    ] = None,
) -> None:
    """Zero-shot scores of every allele of a VCF: embedding distances (L1, L2, cosine, dot; mean-pooled and at
    the variant's token) and the masked-LM log-likelihood ratio of SNVs.

    Every record and ALT gets a row: scored, or skipped with a reason (symbolic or missing ALT, REF not
    matching the genome, unknown chromosome, N gap, near a contig end, too long). Chromosome naming (1 vs chr1,
    MT vs chrM) is mapped when unambiguous.

    Example: nttracks variants my.vcf.gz --genome hg38 --out scores/ --compare cadd.tsv.gz --labels label
    """
    from .compare import check_compare_files
    from .compare import compare as compare_scores
    from .variants import check_vcf_path, run_variants, settings_for

    check_vcf_path(vcf)
    if labels is not None and not compare:
        raise UsageError("--labels needs --compare FILE (the scores to evaluate beside NT's)")
    check_compare_files(compare or [])
    where = _genome_arg(genome, fasta)
    settings = settings_for(where, config, checkpoint=checkpoint, window=window, layer=layer,
                            reverse_complement=reverse_complement, batch_size=batch_size)
    bar = _counter("variants", "variant")
    try:
        result = run_variants(vcf, where, out, settings, device=device, progress=bar.update)
    finally:
        bar.close()
    counts = ", ".join(f"{k} {v}" for k, v in result.summary["counts"].items())
    typer.echo(f"wrote {result.tsv} and {result.vcf} ({result.summary['alleles']} alleles: {counts})")
    if compare:
        compare_scores(result.tsv, compare, out / "compare", labels=labels)
        typer.echo(f"comparison: {out / 'compare' / 'report.html'}")


@app.command("ism")
def ism_cmd(
    regions: Annotated[Path, typer.Option(help="BED of the (small) regions to mutate; merged, clipped to contigs.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Hub directory to write (new or a previous ism hub).")],
    genome: Annotated[str | None, _GENOME_OPT] = None,
    fasta: Annotated[Path | None, _FASTA_OPT] = None,
    config: Annotated[Path | None, _VCONFIG_OPT] = None,
    scores: Annotated[str, typer.Option(help="Comma-separated: llr, l1_mean, l2_mean, l1_token, l2_token.")] = (
        "llr,l2_mean"),
    checkpoint: Annotated[str | None, typer.Option(help="NT masked LM: directory, HF id, or demo.")] = None,
    window: Annotated[int | None, typer.Option(help="Context in bp around each base (whole 6-mers).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per forward pass.")] = None,
    max_bases: Annotated[int, typer.Option(help="Refuse regions covering more N-free bases than this.")] = 100_000,
    device: Annotated[str, typer.Option(help="auto (GPU when present), cpu, cuda or cuda:N.")] = "auto",
) -> None:
    """In-silico mutagenesis: every base of the regions mutated to each alternative and scored as `variants`
    scores a VCF; a hub of bigWigs, per score the maximum over the alternatives and one track per base.

    Example: nttracks ism --genome demo --regions promoter.bed --out ism_hub/
    """
    from .ism import check_scores, run_ism
    from .variants import settings_for

    where = _genome_arg(genome, fasta)
    chosen = check_scores([s.strip() for s in scores.split(",")])
    settings = settings_for(where, config, checkpoint=checkpoint, window=window, batch_size=batch_size)
    bar = _counter("ism", "bp")
    try:
        result = run_ism(where, regions, out, settings, scores=chosen, device=device, max_bases=max_bases,
                         progress=bar.update)
    finally:
        bar.close()
    typer.echo(f"wrote {result.out}/hub.txt: {len(result.tracks)} tracks over {result.bases:,} bases "
               f"({result.unscored:,} too near a contig end)")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, not the one of the first call (a test
    harness or an embedding program may have replaced it since)."""

    def emit(self, record: logging.LogRecord) -> None:
        from .nightly import FILE_ONLY

        if getattr(record, FILE_ONLY, False):  # the run's failure: main() prints the error itself, once
            return
        self.stream = sys.stderr
        super().emit(record)


def _log_to_stderr() -> None:
    """The library logs warnings (e.g. a stale lock taken over) to the "nttracks" logger; show them."""
    logger = logging.getLogger("nttracks")
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setLevel(logging.WARNING)  # the INFO records go to the run's log file (nightly.run_log)
        handler.setFormatter(logging.Formatter("nttracks: %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class _Stopped(BaseException):
    """SIGINT or SIGTERM arrived: unwinds like KeyboardInterrupt (every ``finally`` and ``__exit__`` runs:
    writer processes stopped, staging removed, lock released), past handlers that catch Exception and
    past click's own KeyboardInterrupt handling."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: Any) -> None:
    import signal

    for s in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the clean-up short
        signal.signal(s, signal.SIG_IGN)
    raise _Stopped(signum)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning library errors into a message and an exit code, and SIGINT
    (Ctrl-C) or SIGTERM (kill, timeout, Slurm) into a clean stop: exit 130 or 143."""
    import signal
    import threading

    _log_to_stderr()
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, _stop) for s in handled}
    try:
        app(args=argv, prog_name="nttracks", standalone_mode=True)
    except NttracksError as exc:
        typer.echo(f"nttracks: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, _Stopped) as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        typer.echo(f"nttracks: stopped by {signal.Signals(signum).name}; the live hub was not changed", err=True)
        sys.exit(128 + signum)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    main()
