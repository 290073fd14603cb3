#!/usr/bin/env python
"""The demo site's manage.py: ``python example/manage.py migrate``, ``seed_demo``, ``runserver``."""

import os
import sys
from pathlib import Path


def main():
    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))  # the demo package, whatever the working directory
    sys.path.insert(1, str(here.parent))  # multifactor from this checkout when it is not installed
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
