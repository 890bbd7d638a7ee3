"""Launch files: one YAML file per experiment, validated against :data:`SCHEMA`."""
from sim2real.launch.loader import dump, parse_override, read_yaml, recorded_launch, resolve, same_env
from sim2real.launch.schema import SCHEMA, defaults

__all__ = ["SCHEMA", "defaults", "resolve", "read_yaml", "parse_override", "dump", "recorded_launch", "same_env"]
