"""``nttracks finetune``: train heads on NT backbones (a thin shell over ``nttracks.finetune``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .errors import UsageError

finetune_app = typer.Typer(
    help="Fine-tune Nucleotide Transformer heads (the enhancer family's model).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@finetune_app.command("enhancer")
def enhancer_cmd(
    data: Annotated[
        Path,
        typer.Argument(help="Training sequences: a FASTA (with --activity) or a TSV of sequence, dev, hk."),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint directory to write.")],
    base: Annotated[
        str, typer.Option(help="Base NT checkpoint: a directory (HF layout), a HuggingFace id, or demo.")
    ] = "InstaDeepAI/nucleotide-transformer-v2-50m-multi-species",
    activity: Annotated[
        Path | None,
        typer.Option(help="DeepSTARR activity table of the FASTA (Dev_log2_enrichment, Hk_log2_enrichment)."),
    ] = None,
    val: Annotated[Path | None, typer.Option(help="Validation sequences (FASTA or TSV); default: split off.")] = None,
    val_activity: Annotated[Path | None, typer.Option(help="Activity table of a --val FASTA.")] = None,
    test: Annotated[Path | None, typer.Option(help="Test sequences (FASTA or TSV); default: split off.")] = None,
    test_activity: Annotated[Path | None, typer.Option(help="Activity table of a --test FASTA.")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share split off for validation when --val is absent.")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Share split off for testing when --test is absent.")] = 0.1,
    adapter: Annotated[
        str,
        typer.Option(help="What is trained besides the head: ia3 (IA3 rescaling vectors, as the NT paper), head "
                     "(nothing: backbone frozen) or full (every weight; small backbones only)."),
    ] = "ia3",
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping may end sooner).")] = 20,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate.")] = 3e-3,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.01,
    warmup: Annotated[int, typer.Option(help="Steps of linear learning-rate warm-up.")] = 50,
    patience: Annotated[
        int, typer.Option(help="Stop after this many epochs without a better validation Pearson r.")
    ] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the split, the head's initial weights and the data order.")] = 0,
    save_every: Annotated[
        int, typer.Option(help="Steps between resumable checkpoints (0: at the end of each epoch only).")
    ] = 0,
    device: Annotated[str, typer.Option(help="auto (GPU when present), cpu, cuda or cuda:N.")] = "auto",
    force: Annotated[bool, typer.Option("--force", help="Replace a finished checkpoint in --out.")] = False,
) -> None:
    """Fine-tune the enhancer head: developmental and housekeeping activity, 50 bins each.

    Reads DeepSTARR-style data (FASTA + activity table, or one TSV), trains with AdamW, warm-up and early
    stopping on the validation Pearson r, and writes a checkpoint directory for the enhancer family
    (families.enhancer.checkpoint). A run that was killed resumes where it stopped when started again with
    the same arguments. Prints the test Pearson r of each activity.

    \b
    Example (DeepSTARR's files):
      nttracks finetune enhancer Sequences_Train.fa --activity Sequences_activity_Train.txt \\
        --val Sequences_Val.fa --val-activity Sequences_activity_Val.txt \\
        --test Sequences_Test.fa --test-activity Sequences_activity_Test.txt --out enhancer-head/
    """
    from . import finetune as ft
    from .predict import resolve_device

    for flag, table, path in (("--val-activity", val_activity, val), ("--test-activity", test_activity, test)):
        if table is not None and path is None:
            raise UsageError(f"{flag} needs the sequences it describes ({flag.removesuffix('-activity')} FASTA)")
    ft.check_out(out, force=force)
    settings = ft.FinetuneSettings(
        base=base, adapter=adapter, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
        warmup=warmup, patience=patience, seed=seed, save_every=save_every, device=str(resolve_device(device)),
    )
    settings.check()
    train_data = ft.read_activity_data(data, activity)
    val_data = ft.read_activity_data(val, val_activity) if val is not None else None
    test_data = ft.read_activity_data(test, test_activity) if test is not None else None
    if val_data is None or test_data is None:
        train_data, split_val, split_test = ft.split_data(
            train_data, val_fraction=val_fraction if val_data is None else 0.0,
            test_fraction=test_fraction if test_data is None else 0.0, seed=seed)
        val_data = val_data if val_data is not None else split_val
        test_data = test_data if test_data is not None else split_test
    typer.echo(f"training on {len(train_data):,} sequences, validating on {len(val_data):,}, testing on "
               f"{len(test_data):,}; base {base}, adapter {adapter}", err=True)
    bar = _bar()
    try:
        result = ft.finetune(train_data, val_data, test_data, out, settings, progress=bar)
    finally:
        bar.close()
    if result.resumed:
        typer.echo("resumed an interrupted run", err=True)
    for line in ft.summary_lines(result):
        typer.echo(line)
    typer.echo(f"wrote {result.directory} ({result.epochs} epochs, {result.seconds:.0f} s); use it as "
               "families.enhancer.checkpoint")


class _bar:
    """progress(Progress) -> a tqdm bar of steps with the loss and the last validation r."""

    def __init__(self) -> None:
        self.tqdm: Any = None

    def __call__(self, p: Any) -> None:
        if self.tqdm is None:
            from tqdm.auto import tqdm

            self.tqdm = tqdm(total=p.total_steps, desc="finetune", unit="step", disable=None, dynamic_ncols=True)
            self.tqdm.update(p.step - 1)
        self.tqdm.update(1)
        post = {"epoch": p.epoch + 1, "loss": f"{p.loss:.3f}"}
        if p.val_r is not None:
            post["r_dev"], post["r_hk"] = f"{p.val_r[0]:.3f}", f"{p.val_r[1]:.3f}"
        self.tqdm.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
