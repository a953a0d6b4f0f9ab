"""The ``nttracks`` command line: each command validates its arguments, loads the config and calls one
library function. Library errors (``NttracksError``) become one message and an exit code, here only.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import NttracksError, UsageError

app = typer.Typer(
    name="nttracks",
    help="Genome-browser track hubs from Nucleotide Transformer models.\n\n"
    "Slides a model across whole chromosomes, stitches the overlapping windows and writes bigWig "
    "tracks bundled as UCSC and WashU hubs. Start with: nttracks genome demo --out hub/",
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


@app.command("genome")
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
        executor=executor,
        ray_address=ray_address,
        gpus=gpus,
        shared_fs=shared_fs,
    )
    if dry_run:
        typer.echo(plan_run(request, dry_run=True).summary())
        return
    result = run_genome(request, progress=_progress, download_progress=_download_progress())
    families = ", ".join(result.manifest["families"])
    typer.echo(f"wrote {result.out}/hub.txt ({families}); manifest: {result.out}/manifest.json")
    if base_url is None:
        typer.echo("no --base-url: the WashU datahub (washu.json) was not written", err=True)


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


def _log_to_stderr() -> None:
    """The library logs warnings (e.g. a stale lock taken over) to the "nttracks" logger; show them."""
    import logging

    logger = logging.getLogger("nttracks")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
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
