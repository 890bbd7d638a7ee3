"""Protocol emulators: servo buses on Linux pseudo-terminals that move a PyBullet "reality" of the arm."""
