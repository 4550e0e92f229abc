"""``python -m labelwise``: the same CLI as the ``labelwise`` command."""

from labelwise.cli.app import main

main()
