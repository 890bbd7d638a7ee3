"""RL2Config: launch-file mappings are validated with one-line errors naming the field."""
from __future__ import annotations

import pytest

from policies.config import RL2Config
from policies.errors import ConfigError


def test_defaults_validate_and_round_trip():
    cfg = RL2Config()
    cfg.validate()
    again = RL2Config.from_dict(cfg.to_dict())
    assert again == cfg


def test_nested_network_and_types():
    cfg = RL2Config.from_dict({"network": {"rnn_type": "lstm", "encoder_sizes": [32, 32]}, "gamma": 1})
    assert cfg.network.rnn_type == "lstm" and cfg.network.encoder_sizes == (32, 32)
    assert isinstance(cfg.gamma, float)


@pytest.mark.parametrize("data,field", [
    ({"gama": 0.9}, "gama"),
    ({"gamma": 1.5}, "gamma"),
    ({"network": {"rnn_type": "rnn"}}, "rnn_type"),
    ({"network": {"hidden": 3}}, "network.hidden"),
    ({"seq_len": 30, "rollout_steps": 256}, "seq_len"),
    ({"num_minibatches": 3}, "num_minibatches"),
    ({"normalize_obs": "yes"}, "normalize_obs"),
    ({"epochs": 2.5}, "epochs"),
    ({"init_from": 5}, "init_from"),
    ({"critic_warmup_steps": -1}, "critic_warmup_steps"),
    ({"snapshot_every": -1}, "snapshot_every"),
    ({"critic_warmup_steps": 1000, "total_steps": 1000}, "critic_warmup_steps"),
])
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError) as err:
        RL2Config.from_dict(data)
    msg = str(err.value)
    assert msg.startswith(field) and "\n" not in msg
