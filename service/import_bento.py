"""Import an exported bento into this machine's BentoML store, only if it is what Tollgate signed.

    python -m service.import_bento artifacts/churn/bentos/tollgate-churn-<version>.bento

Checks the file against ``<file>.sig`` beside it (its SHA-256 and the signature made with the signing
key, which must be the packaging machine's: ``TOLLGATE_SIGNING_KEY`` or ``TOLLGATE_SIGNING_KEY_FILE``),
imports it, and verifies the model inside; then ``bentoml serve <bento tag>`` serves it. Plain
``bentoml import`` checks none of this (the service still refuses a model whose signature fails).
Exits 1 with the reason when anything does not match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bentoml.exceptions import BentoMLException

from tollgate.config.settings import Settings
from tollgate.store.models import ModelIntegrityError, import_bento


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bento", type=Path, help="an exported .bento file (its .sig beside it)")
    args = parser.parse_args(argv)
    try:
        tag = import_bento(args.bento, Settings())
    except ModelIntegrityError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    except (OSError, BentoMLException) as error:  # e.g. the bento is already in this store
        print(f"not imported: {error}", file=sys.stderr)
        return 1
    print(f"imported {tag}: signature and model verified; serve it with: bentoml serve {tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
