"""``python -m xstilts`` = the ``xstilts`` command."""

from xstilts.cli import main

if __name__ == "__main__":
    main()
