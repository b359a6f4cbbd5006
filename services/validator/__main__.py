"""python -m services.validator"""

import os

# Before pyarrow loads its allocator (mimalloc), which reads this once: memory a
# chunk's check freed goes back to the system at once instead of staying
# reserved per thread. A file of many issues peaked about 60 MB lower.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")

from rosterflow.service import run
from services.validator.app import SERVICE, create_app

if __name__ == "__main__":
    run(create_app, SERVICE)
