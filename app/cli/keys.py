"""`prescreen-bot keys generate | rotate`: encryption keys for patient data."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from app.cli.common import EXIT_FAIL, EXIT_INVALID, EXIT_OK, open_db
from bot.config import Settings
from bot.keys import rotate_keys
from storage.crypto import PHICipher, PHICipherError


def add_cli(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="encryption keys for patient data")
    ksub = keys.add_subparsers(dest="keys_cmd", metavar="ACTION")
    ksub.required = True
    ksub.add_parser("generate", help="print a new key").set_defaults(func=cmd_keys_generate)
    ksub.add_parser("rotate", help="re-encrypt patient data with the newest key (then drop the old)"
                    ).set_defaults(func=cmd_keys_rotate)


def cmd_keys_generate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    print(PHICipher.generate_key(), file=out)
    return EXIT_OK


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    keys = settings.encryption_keys
    if not keys:
        print("prescreen-bot: PRESCREEN_ENCRYPTION_KEYS is empty; nothing to rotate with",
              file=sys.stderr)
        return EXIT_INVALID
    with open_db(settings) as db:
        try:
            report = rotate_keys(db, PHICipher(keys))
        except PHICipherError:
            print("prescreen-bot: some patient data cannot be decrypted with the configured keys; "
                  "put the old key back at the end of PRESCREEN_ENCRYPTION_KEYS and run again",
                  file=sys.stderr)
            return EXIT_FAIL
    print(f"{report}. You can now remove the old key(s) from PRESCREEN_ENCRYPTION_KEYS.", file=out)
    return EXIT_OK
