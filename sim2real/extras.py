"""Optional client libraries, one pip extra per robot family (as LeRobot does): the core install trains, evaluates in
simulation and emulates; a driver imports its library only when it is used, through :func:`require`."""
from __future__ import annotations

import importlib
from types import ModuleType

from sim2real.errors import UserError

# top-level module → (distribution that provides it, extra that installs it)
PROVIDERS: dict[str, tuple[str, str]] = {
    "dynamixel_sdk": ("dynamixel-sdk", "servo"),
    "scservo_sdk": ("feetech-servo-sdk", "servo"),
    "serial": ("pyserial", "servo"),
    "cflib": ("cflib", "crazyflie"),
    "pymavlink": ("pymavlink", "px4"),
}


def require(module: str, needed_by: str) -> ModuleType:
    """Import ``module`` (a module of one of :data:`PROVIDERS`' libraries); when it or a library it needs is missing,
    a one-line :class:`UserError` naming the ``pip install`` to run. ``needed_by`` says who needs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        distribution, extra = PROVIDERS[module.partition(".")[0]]
        missing = "which is not installed" if err.name == module.partition(".")[0] else f"which cannot be imported ({err})"
        raise UserError(f'{needed_by} needs {distribution}, {missing}: pip install "sim2real[{extra}]"') from None
