"""RL² runs resumed after a kill: logs and TensorBoard rewound to the checkpoint, temp files gone, finished = no-op."""
from __future__ import annotations

import hashlib
import json

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from policies.config import NetworkConfig, RL2Config
from policies.envs import BernoulliBanditVecEnv
from policies.ppo import train_rl2

BATCH = 16 * 20  # envs x rollout steps: the steps of one iteration


def _cfg(iterations: int) -> RL2Config:
    return RL2Config(network=NetworkConfig(hidden_size=16, embed_size=8, encoder_sizes=()),
                     total_steps=BATCH * iterations, rollout_steps=20, seq_len=10, num_minibatches=2,
                     checkpoint_every=2)


def _train(run_dir, iterations: int):
    return train_rl2(_cfg(iterations), None, run_dir, vec_env=BernoulliBanditVecEnv(16, k=2, n=10, seed=0))


def _progress_steps(run_dir) -> list[int]:
    return [json.loads(line)["global_step"] for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def _tensorboard_steps(run_dir) -> list[int]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return [s.step for s in events.Scalars("rl2/global_step")]


def _killed_segment(run_dir) -> None:
    """What a run killed during iteration 4 leaves after its checkpoint at iteration 2: logs of iteration 3 and
    temp files of the writes it was in."""
    with open(run_dir / "progress.jsonl", "a") as handle:
        handle.write(json.dumps({"global_step": 3 * BATCH, "iteration": 3}) + "\n" + '{"global_st')
    writer = SummaryWriter(str(run_dir / "tb"))
    writer.add_scalar("rl2/global_step", 3 * BATCH, 3 * BATCH)
    writer.close()
    for name in (".checkpoint.pt.k2j4xa", ".config.json.a8d7f1"):
        (run_dir / name).write_bytes(b"partial")


def test_resume_rewinds_logs_to_the_checkpoint_keeps_its_point_and_removes_temp_files(tmp_path):
    _train(tmp_path, 2)
    _killed_segment(tmp_path)
    result = _train(tmp_path, 4)
    assert result.global_step == 4 * BATCH
    assert _progress_steps(tmp_path) == [BATCH, 2 * BATCH, 3 * BATCH, 4 * BATCH]
    assert _tensorboard_steps(tmp_path) == [BATCH, 2 * BATCH, 3 * BATCH, 4 * BATCH]  # 2 * BATCH is not hidden
    assert not list(tmp_path.glob(".checkpoint.pt.*")) and not list(tmp_path.glob(".config.json.*"))


def test_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path):
    _train(tmp_path, 2)
    (tmp_path / "checkpoint.pt").unlink()
    _killed_segment(tmp_path)
    _train(tmp_path, 2)
    assert _progress_steps(tmp_path) == [BATCH, 2 * BATCH]
    assert _tensorboard_steps(tmp_path) == [BATCH, 2 * BATCH]


def test_a_finished_run_resumed_again_writes_nothing(tmp_path):
    _train(tmp_path, 2)

    def snapshot():
        return {str(p.relative_to(tmp_path)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = snapshot()
    assert _train(tmp_path, 2).global_step == 2 * BATCH
    assert snapshot() == before
