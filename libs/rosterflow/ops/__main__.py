"""python -m rosterflow.ops: the operator's command line (see rosterflow.ops.cli)."""

from rosterflow.ops.cli import main

if __name__ == "__main__":
    main()
