"""File-format readers: ``get_reader(name)(path, source, spec, lang) -> list[Example]``.

Every reader validates while it reads and raises one ``DataError`` naming the file and the
1-based line (or record) number. Importing this package registers all readers.
"""

from xstilts.tasks.readers import (  # noqa: F401  (imported for their registrations)
    ccg,
    multiple_choice,
    nli_jsonl,
    retrieval,
    squad,
    tagging,
    tsv,
)
from xstilts.tasks.readers._registry import (
    Reader,
    companion_files,
    get_reader,
    list_readers,
    register_reader,
)

__all__ = ["Reader", "companion_files", "get_reader", "list_readers", "register_reader"]
