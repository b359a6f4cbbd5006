"""python -m services.validator"""

from rosterflow.service import run
from services.validator.app import SERVICE, create_app

if __name__ == "__main__":
    run(create_app, SERVICE)
