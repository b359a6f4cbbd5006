"""python -m services.notifier"""

from rosterflow.service import run
from services.notifier.app import SERVICE, create_app

if __name__ == "__main__":
    run(create_app, SERVICE)
