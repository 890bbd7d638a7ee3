"""Ray backend: training environments in Ray actors, evaluation chunks and sweep runs as Ray tasks.

Ray is an optional dependency (``pip install sim2real[ray]``); nothing here imports it until a Ray backend is asked
for. :mod:`.cluster` joins or starts a Ray instance, :mod:`.vec_env` / :mod:`.trial_vec_env` put environments in
actors, :mod:`.evaluation` fans ``sim2real eval`` out, :mod:`.sweep` runs one training per grid point.
"""
