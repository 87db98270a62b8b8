"""``python -m lab.console``."""

from lab.console._app import main

main()
