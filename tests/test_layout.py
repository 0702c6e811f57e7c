"""The generator's layout: modules small enough to read in one sitting."""

from __future__ import annotations

from helpers import PROJECT

MAX_LINES = 600


def test_no_module_of_the_generator_is_over_600_lines():
    package = PROJECT / "generator" / "kfgen"
    sizes = {path.relative_to(package).as_posix(): len(path.read_text(encoding="utf-8").splitlines()) for path in package.rglob("*.py")}
    assert len(sizes) > 40, "the package was not found"
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert too_long == {}, f"split these by concern: {too_long}"
