"""python -m services.archiver"""

from rosterflow.service import run
from services.archiver.app import SERVICE, create_app

if __name__ == "__main__":
    run(create_app, SERVICE)
