"""``sim2real randomizers list ENV_ID`` and ``sim2real randomizers preview LAUNCH --n 16 --out grid.png``."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sim2real.arguments import output_file
from sim2real.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("randomizers", help="list randomization Params or preview randomized camera images")
    inner = parser.add_subparsers(dest="randomizers_command", metavar="ACTION", parser_class=type(parser))
    lister = inner.add_parser("list", help="every Param for an environment: nominal, default range, limits, unit")
    lister.add_argument("env_id", metavar="ENV_ID", help="registered environment id, e.g. sim2real/PandaPush-v0")
    lister.add_argument("--json", action="store_true", help="print JSON (launch-file entries) instead of a table")
    lister.set_defaults(handler=list_params)
    preview = inner.add_parser("preview", help="render a grid of randomized camera images from a launch file")
    preview.add_argument("launch", help="launch file: a YAML path or a shipped name, e.g. panda_reach_rgb_dr")
    preview.add_argument("overrides", nargs="*", help="dotted overrides key.subkey=value")
    preview.add_argument("--n", type=int, default=16, help="number of randomized episodes to show (default 16)")
    preview.add_argument("--out", type=output_file, default="randomization_preview.png", help="PNG to write")
    preview.add_argument("--scale", type=int, default=2, help="pixel upscaling of each image (default 2)")
    preview.set_defaults(handler=preview_grid)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])


def params_for(env_id: str) -> list[tuple[Any, bool]]:
    """(Param, only with rgb observations) for every randomizer group available on ``env_id``."""
    from randomizers.wrappers import WRAPPERS
    from sim2real.envs import ARM_ENVS
    from sim2real.envs.experiment_env import EXPERIMENT_ENVS, ExperimentRandomizer
    from sim2real.launch.randomizers import env_traits

    if env_id not in ARM_ENVS and env_id not in EXPERIMENT_ENVS:
        raise UserError(f"no randomizers for environment id {env_id!r} (arm environments: "
                        f"{', '.join([*ARM_ENVS, *EXPERIMENT_ENVS])})")
    state, rgb = env_traits(env_id, "state"), env_traits(env_id, "rgb")
    out = []
    extra = [ExperimentRandomizer] if env_id in EXPERIMENT_ENVS else []
    for wrapper in [*WRAPPERS.values(), *extra]:
        declared = wrapper.declare()
        in_state = set(wrapper.applicable_to(declared, state).names)
        out += [(q, q.name not in in_state) for q in wrapper.applicable_to(declared, rgb)]
    return out


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def list_params(args: argparse.Namespace) -> int:
    rows = params_for(args.env_id)
    if args.json:
        print(json.dumps([{**q.to_dict(), "rgb_only": rgb_only} for q, rgb_only in rows], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("param", "nominal", "default range", "hard limits", "apply", "distribution", "unit", "note",
                  title=f"Randomization params for {args.env_id}")
    for q, rgb_only in rows:
        default = "choices " + "/".join(map(str, q.choices)) if q.is_categorical else \
            f"[{_fmt(q.low)}, {_fmt(q.high)}]"
        limits = "" if q.is_categorical else f"[{_fmt(q.limits[0])}, {_fmt(q.limits[1])}]"
        note = "; ".join(filter(None, ("rgb obs only" if rgb_only else "", q.description)))
        table.add_row(q.name, _fmt(q.nominal), default, limits, q.apply.value, q.distribution.value, q.unit, note)
    Console(width=200).print(table)
    return 0


def _grid(images: list[np.ndarray], scale: int) -> np.ndarray:
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    h, w = images[0].shape[:2]
    pad = 2
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return np.kron(grid, np.ones((scale, scale, 1), np.uint8)) if scale > 1 else grid


def preview_grid(args: argparse.Namespace) -> int:
    from rich.progress import track

    from randomizers.textures.pybullet_cache import write_png
    from sim2real.launch import resolve
    from sim2real.train import make_env_fn

    if not 1 <= args.n <= 1024:
        raise UserError(f"--n: expected an integer in [1, 1024], got {args.n}")
    if not 1 <= args.scale <= 16:
        raise UserError(f"--scale: expected an integer in [1, 16], got {args.scale}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise UserError(f"--out: expected a .png path, got {args.out}")
    config = resolve(args.launch, args.overrides)
    env = make_env_fn(config, rank=0)()
    images = []
    try:
        base = env.unwrapped
        for i in track(range(args.n), description=f"rendering {args.n} randomized scenes"):
            obs, _ = env.reset(seed=config["seed"] + i)
            # camera observations are what training sees (image corruptions included); else the env camera
            images.append(obs["image"] if isinstance(obs, dict) and "image" in obs else base.world.render(base.camera))
    finally:
        env.close()
    write_png(out, _grid(images, args.scale))
    print(f"wrote {out} ({args.n} scenes from {args.launch})")
    return 0
