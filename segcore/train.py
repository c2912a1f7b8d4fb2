"""``python -m segcore.train`` keeps working: it runs `segcore.commands.train.main`."""

import sys

from segcore.commands.train import main  # shim: the command's code is in segcore.commands

if __name__ == "__main__":
    sys.exit(main())
