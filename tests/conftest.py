"""Shared test settings: single-threaded torch and headless, seeded runs."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
