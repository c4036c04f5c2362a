"""``python -m training.experiments NAME``: the command of ``training.experiments.command``."""

from training.experiments.command import main

if __name__ == "__main__":
    main()
