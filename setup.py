"""The wheel carries the data kfgen reads, copied into the package (pyproject.toml holds the rest).

The checkout keeps schemas/ and prerequisites/ at the project's top level, where editors and people find
them, and kfgen reads them there when it runs from a checkout, editable installs included. A wheel has
no checkout beside it, so the build copies them into kfgen/_data/ (generator/kfgen/data.py reads both).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROJECT = Path(__file__).resolve().parent
PACKAGED_DATA = Path("kfgen") / "_data"  # data.PACKAGED_DATA in the package
DATA_FOLDERS = ("schemas", "prerequisites")  # data.FOLDER_NAMES


class BuildWithData(build_py):
    """build_py, and then the data folders into the built package."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install runs from the checkout, which has the folders themselves
        for folder in DATA_FOLDERS:
            destination = Path(self.build_lib) / PACKAGED_DATA / folder
            shutil.rmtree(destination, ignore_errors=True)  # a file removed from the checkout leaves no stale copy
            self.copy_tree(str(PROJECT / folder), str(destination))


setup(cmdclass={"build_py": BuildWithData})
