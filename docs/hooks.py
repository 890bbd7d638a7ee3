"""mkdocs hook: the figures BENCHMARKS.md links to (``benchmarks/figures/*.png``) become files of the site, at the
same relative paths, so the benchmarks page shows them and strict link checking finds them. Local only."""
from __future__ import annotations

import glob
import os
from typing import Any

from mkdocs.structure.files import File, Files

FIGURES = os.path.join("benchmarks", "figures", "*.png")


def on_files(files: Files, config: Any) -> Files:
    root = os.path.dirname(os.path.abspath(config.config_file_path))
    for path in sorted(glob.glob(os.path.join(root, FIGURES))):
        files.append(File(os.path.relpath(path, root), src_dir=root, dest_dir=config.site_dir,
                          use_directory_urls=config.use_directory_urls))
    return files
