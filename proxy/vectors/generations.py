"""Where the embedded index lives on disk, across background graph builds.

The configured path (`vector_store.path`, default DATA_DIR/vectors) is generation 0. A build
copies the serving generation to the next one beside it (`vectors.1`, `vectors.2`, ...), builds
the graph there in a child process, and, once it is swapped in, names it in a pointer file
(`vectors.current`) written atomically: a crash at any point leaves either the old generation or
the new one current, never half of one. Generations that are not current are leftovers (a build
that was interrupted, or one swapped out) and are removed at start.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def _pointer(root: Path) -> Path:
    return root.with_name(root.name + ".current")


def current(root: Path) -> Path:
    """The generation to open: the one the pointer names, if it holds an index; else `root`."""
    pointer = _pointer(root)
    try:
        name = pointer.read_text().strip()
    except FileNotFoundError:
        return root
    if re.fullmatch(re.escape(root.name) + r"\.\d+", name) is None:  # not one of ours: ignored
        return root
    chosen = root.with_name(name)
    return chosen if (chosen / "edge_config.json").exists() else root


def _number(root: Path, path: Path) -> int | None:
    if path.parent != root.parent:
        return None
    found = re.fullmatch(re.escape(root.name) + r"\.(\d+)", path.name)
    return int(found.group(1)) if found else None


def following(root: Path) -> Path:
    """The directory the next build copies into (after the newest generation on disk)."""
    numbers = [_number(root, p) for p in root.parent.glob(f"{glob_escape(root.name)}.*")]
    return root.with_name(f"{root.name}.{max([n for n in numbers if n is not None], default=0) + 1}")


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def promote(root: Path, generation: Path) -> None:
    """Make `generation` the one opened from now on (atomic: write aside, fsync, rename)."""
    pointer = _pointer(root)
    aside = pointer.with_name(pointer.name + ".tmp")
    with open(aside, "w") as out:
        out.write(generation.name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(aside, pointer)


def remove_stale(root: Path) -> list[Path]:
    """Delete every generation but the current one (generation 0 too, once another is current);
    returns what was removed."""
    serving = current(root)
    stale = [p for p in root.parent.glob(f"{glob_escape(root.name)}.*") if _number(root, p) is not None]
    if serving != root and root.exists():
        stale.append(root)
    removed = []
    for path in stale:
        if path != serving and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
