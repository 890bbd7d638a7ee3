"""randomizers package."""
