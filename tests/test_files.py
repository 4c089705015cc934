"""The file rules of `index.storage.files`, and the formats built on them, over arbitrary content.

Checksummed JSON and commit points read back exactly whatever Unicode they hold, and any byte
flipped in such a file either reads back as the same object (a change of layout only) or is
refused with an error naming the file. An atomic write that fails leaves the old file and no
temporary one.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.errors import IndexCorruptError
from index.settings import IndexSettings
from index.storage import files
from index.storage.commits import CommitPoint, SegmentEntry
from index.storage.files import read_checksummed_json, verify_file, write_atomically, write_checksummed_json
from index.storage.store import IndexStore
from tests.test_durability import ANY_TEXT, JSON_VALUES

# Lone surrogates too: JSON escapes them, so ids and names of any kind survive.
ANY_STRING = st.text(max_size=40)
OBJECTS = st.dictionaries(ANY_STRING.filter(lambda key: key != "checksum"), JSON_VALUES, max_size=5)
PROPERTIES = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTIES
@given(obj=OBJECTS)
def test_checksummed_json_reads_back_exactly(tmp_path_factory: Any, obj: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("json") / "object.json"
    write_checksummed_json(path, obj)
    assert read_checksummed_json(path, "the object") == obj


@PROPERTIES
@given(obj=OBJECTS, position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_a_flipped_byte_is_caught_or_changes_nothing(
    tmp_path_factory: Any, obj: dict[str, Any], position: int, bit: int
) -> None:
    path = tmp_path_factory.mktemp("json") / "object.json"
    write_checksummed_json(path, obj)
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= 1 << bit
    path.write_bytes(bytes(data))
    try:
        read = read_checksummed_json(path, "the object")
    except IndexCorruptError as error:
        assert str(path) in str(error)
    else:
        assert read == obj  # only the layout changed (a space, the case of a \u escape)


@st.composite
def commit_points(draw: st.DrawFn) -> CommitPoint:
    entries = draw(
        st.lists(
            st.builds(
                SegmentEntry,
                name=ANY_TEXT,
                documents=st.integers(0, 10**9),
                chunks=st.integers(0, 10**9),
                deletes=st.none() | ANY_TEXT,
                deleted=st.integers(0, 10**6),
                deletes_sha256=st.text("0123456789abcdef", min_size=64, max_size=64),
            ),
            max_size=4,
        )
    )
    return CommitPoint(
        generation=draw(st.integers(1, 10**9)),
        created_at=draw(ANY_TEXT),
        model_name=draw(ANY_STRING),
        dimension=draw(st.integers(1, 4096)),
        settings=IndexSettings(),
        segments=tuple(entries),
        sources=draw(ANY_STRING),
        sources_sha256="0" * 64,
    )


@PROPERTIES
@given(commit=commit_points())
def test_commit_points_read_back_exactly(tmp_path_factory: Any, commit: CommitPoint) -> None:
    path = tmp_path_factory.mktemp("commit") / commit.file_name
    commit.write(path)
    assert CommitPoint.read(path) == commit


@PROPERTIES
@given(sources=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=8))
def test_sources_read_back_exactly(tmp_path_factory: Any, sources: dict[str, str]) -> None:
    store = IndexStore(tmp_path_factory.mktemp("index"))
    name, checksum = store.write_sources(1, sources)
    commit = CommitPoint(1, "now", "model", 4, IndexSettings(), (), name, checksum)
    assert store.sources(commit) == sources


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "CURRENT"
    write_atomically(path, b"old\n")

    def disk_full(_: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, b"new\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["CURRENT"]


def test_verify_file_names_a_missing_or_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "deletes.npy"
    checksum = write_atomically(path, b"rows")
    verify_file(path, checksum)
    path.write_bytes(b"rowz")
    with pytest.raises(IndexCorruptError, match=rf"{path} is damaged \(checksum mismatch\)"):
        verify_file(path, checksum)
    path.unlink()
    with pytest.raises(IndexCorruptError, match=rf"{path} is missing"):
        verify_file(path, checksum)


def test_checksummed_json_without_its_checksum_is_refused_unless_of_the_unchecked_format(
    tmp_path: Path,
) -> None:
    path = tmp_path / "0000000001.json"
    path.write_text(json.dumps({"format": 2, "x": 1}))
    assert read_checksummed_json(path, "it", unchecked_format=2) == {"format": 2, "x": 1}
    path.write_text(json.dumps({"format": 3, "x": 1}))
    with pytest.raises(IndexCorruptError, match="records no checksum"):
        read_checksummed_json(path, "it", unchecked_format=2)
