"""Writing matplotlib figures: one place that titles, lays out, saves and closes them."""
from __future__ import annotations

import os
from typing import Any


def save_figure(fig: Any, out: str, title: str = "", dpi: int = 110) -> str:
    """Title, lay out and write a matplotlib figure to ``out`` (folders made, ``dpi`` dots per inch), then close it;
    returns ``out``."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
