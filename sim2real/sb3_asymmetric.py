"""An asymmetric actor-critic policy for stable-baselines3 PPO: the actor sees pixels, the critic the true state.

SB3's ``ActorCriticPolicy`` with ``share_features_extractor=False`` builds a features extractor for the actor
(``pi_features_extractor``) and one for the critic (``vf_features_extractor``) and only ever feeds the actor's to
the action head (``get_distribution``) and the critic's to the value head (``predict_values``). Here the two
extractors read different observation keys: the actor's everything but ``critic_keys`` (camera image through
SB3's NatureCNN + proprioception), the critic's only ``critic_keys`` (the privileged ``state``). So
``model.predict`` needs no privileged key: a deployment passes ``{"image", "proprio"}`` alone.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor
from torch import nn


class KeySubsetExtractor(BaseFeaturesExtractor):
    """SB3's ``CombinedExtractor`` (NatureCNN per image, flatten per vector) over a subset of a Dict space's keys.

    Images arrive already scaled to [0, 1] by SB3's preprocessing.
    """

    def __init__(self, observation_space: spaces.Dict, keys: Sequence[str], cnn_output_dim: int = 256) -> None:
        missing = [k for k in keys if k not in observation_space.spaces]
        if missing or not keys:
            raise ValueError(f"keys: {missing or 'none'} not in the observation space ({list(observation_space.spaces)})")
        inner = CombinedExtractor(spaces.Dict({k: observation_space[k] for k in keys}), cnn_output_dim=cnn_output_dim)
        super().__init__(observation_space, inner.features_dim)
        self.keys = tuple(keys)
        self.inner = inner

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.inner({k: observations[k] for k in self.keys})


class AsymmetricMlpExtractor(nn.Module):
    """Separate actor and critic MLPs on features of different widths (SB3's ``MlpExtractor`` needs one width)."""

    def __init__(self, pi_dim: int, vf_dim: int, net_arch: list[int] | dict[str, list[int]],
                 activation_fn: type[nn.Module]) -> None:
        super().__init__()
        pi_arch = net_arch.get("pi", []) if isinstance(net_arch, dict) else list(net_arch)
        vf_arch = net_arch.get("vf", []) if isinstance(net_arch, dict) else list(net_arch)
        self.policy_net, self.latent_dim_pi = _mlp(pi_dim, pi_arch, activation_fn)
        self.value_net, self.latent_dim_vf = _mlp(vf_dim, vf_arch, activation_fn)

    def forward_actor(self, features: torch.Tensor) -> torch.Tensor:
        return self.policy_net(features)

    def forward_critic(self, features: torch.Tensor) -> torch.Tensor:
        return self.value_net(features)


def _mlp(width: int, sizes: list[int], activation_fn: type[nn.Module]) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, size), activation_fn()]
        width = size
    return nn.Sequential(*layers), width


class AsymmetricActorCriticPolicy(MultiInputActorCriticPolicy):
    """``MultiInputActorCriticPolicy`` whose critic reads only ``critic_keys`` and whose actor reads the rest.

    Args (besides SB3's): ``critic_keys`` — observation keys of the privileged state (default ``("state",)``);
    ``cnn_output_dim`` — width of the actor's NatureCNN features. ``features_extractor_class`` and
    ``share_features_extractor`` are fixed by this class.
    """

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Space, lr_schedule: Any,
                 critic_keys: Sequence[str] = ("state",), cnn_output_dim: int = 256, **kwargs: Any) -> None:
        self.critic_keys = tuple(critic_keys)
        self.cnn_output_dim = cnn_output_dim
        actor_keys = [k for k in observation_space.spaces if k not in self.critic_keys]
        kwargs.update(features_extractor_class=KeySubsetExtractor, share_features_extractor=False,
                      features_extractor_kwargs={"keys": actor_keys, "cnn_output_dim": cnn_output_dim})
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Any) -> None:
        # SB3 made the critic's extractor like the actor's; give it the privileged keys before the nets and the
        # optimizer are built from the modules.
        self.vf_features_extractor = KeySubsetExtractor(self.observation_space, self.critic_keys, self.cnn_output_dim)
        super()._build(lr_schedule)

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = AsymmetricMlpExtractor(self.pi_features_extractor.features_dim,
                                                    self.vf_features_extractor.features_dim, self.net_arch,
                                                    self.activation_fn)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        for key in ("features_extractor_class", "features_extractor_kwargs", "share_features_extractor"):
            data.pop(key, None)
        data.update(critic_keys=self.critic_keys, cnn_output_dim=self.cnn_output_dim)
        return data
