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
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Public URL the hub will be served from; needed for the WashU datahub (washu.json)."
        ),
    ] = None,
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
        shard_bases=shard_size,
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


@models_app.command("inspect")
def models_inspect(
    checkpoint: Annotated[str, typer.Argument(help="Checkpoint directory (HF layout) or HuggingFace id.")],
) -> None:
    """Architecture, parameter count, vocabulary and window geometry of a checkpoint."""
    from .models import describe_model

    typer.echo(str(describe_model(checkpoint)))


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
