"""python -m services.importer"""

from rosterflow.service import run
from services.importer.app import SERVICE, create_app

if __name__ == "__main__":
    run(create_app, SERVICE)
