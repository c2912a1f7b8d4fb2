"""``python -m segcore.predict`` keeps working: it runs `segcore.commands.predict.main`."""

import sys

from segcore.commands.predict import main  # shim: the command's code is in segcore.commands

if __name__ == "__main__":
    sys.exit(main())
