"""tools/yaml2json: a stream of YAML documents in, one line of JSON per document out."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import PROJECT

YAML2JSON = os.environ.get("KFGEN_YAML2JSON", str(PROJECT / ".tools" / "bin" / "yaml2json"))


def convert(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([YAML2JSON], input=text, capture_output=True, text=True, timeout=60)


def test_documents_split_at_separator_lines_only():
    """A separator is a line of `---` and nothing but spaces and tabs; empty and comment-only documents
    give no line; `---x` is a key, not a separator."""
    stream = "---\na: 1\n---\nb: 2\n--- \t \nc: 3\n---\n\n---\n# only a comment\n---\nd: 4\n---x: 5\n---"
    result = convert(stream)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4, "---x": 5}]


def test_kubernetes_scalars_convert_as_kubernetes_reads_them():
    result = convert("a: yes\nb: '1'\nc: 1.0\nd: null\ne: 0755\nf: 2024-01-01\ng: ~\n")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"a": True, "b": "1", "c": 1, "d": None, "e": 493, "f": "2024-01-01", "g": None}


@pytest.mark.parametrize("stream, document", [("a: 1\n---\nb: [1,\n", 2), ("---\n---\na: [\n---\nb: 1\n", 3)])
def test_a_broken_document_is_named_by_its_number(stream, document):
    result = convert(stream)
    assert result.returncode == 1
    assert result.stderr.startswith(f"yaml2json: document {document}:")
