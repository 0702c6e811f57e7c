"""Where kfgen finds the data files it reads: the JSON Schemas and the prerequisites' CRDs.

Every module reads them through this one, which knows both layouts:

- a checkout: the package is generator/kfgen/ and the data are the project's top-level folders
  (schemas/ stays there, where editors find it); an editable install runs this layout too;
- an installed wheel: the data are resources of the package, in kfgen/_data/, copied there by
  setup.py when the wheel is built. Wheels install unpacked, so these are plain files: kfgen globs,
  digests and hands them to tools by path.

This module imports nothing but pathlib: the check records (checkrecord.py) use it on their fast path.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
# The package folder that holds the data in a wheel; setup.py writes it under the same name.
PACKAGED_DATA = "_data"
SCHEMAS_FOLDER = "schemas"
PREREQUISITES_FOLDER = "prerequisites"
FOLDER_NAMES = (SCHEMAS_FOLDER, PREREQUISITES_FOLDER)


def _source_tree(package: Path) -> Path | None:
    """The checkout the package runs from, or None when it is installed.

    The project's pyproject.toml above generator/ tells a checkout from a site-packages folder."""
    root = package.parents[1]
    return root if package.parent.name == "generator" and (root / "pyproject.toml").is_file() else None


SOURCE_TREE = _source_tree(PACKAGE)
DATA_ROOT = SOURCE_TREE if SOURCE_TREE is not None else PACKAGE / PACKAGED_DATA

SCHEMAS = DATA_ROOT / SCHEMAS_FOLDER
PREREQUISITES = DATA_ROOT / PREREQUISITES_FOLDER
DATA_FOLDERS = (SCHEMAS, PREREQUISITES)
