"""``python -m segcore.evaluate`` keeps working: it runs `segcore.commands.evaluate.main`."""

import sys

from segcore.commands.evaluate import main  # shim: the command's code is in segcore.commands

if __name__ == "__main__":
    sys.exit(main())
