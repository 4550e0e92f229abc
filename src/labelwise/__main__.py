"""``python -m labelwise``: the same CLI as the ``labelwise`` command."""

from labelwise.cli import main

main()
