"""Transfer-gap evaluation: one policy under training, held-out and emulated-hardware conditions, one report."""
