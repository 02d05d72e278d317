"""Steering positions: the tokens of a forward pass that a steering vector is added to.

The one definition of this convention (docs/architecture.md, "Where each convention is defined"):

* ``all``: every non-padding token, prompt and response;
* ``prompt``: prompt tokens only;
* ``response``: the **last prompt token** (whose output predicts the first response token) plus
  every response token, as in the paper's reference code, so coefficients transfer;
* ``prompt_last``: the last prompt token only. It changes the first response token's
  distribution directly and later tokens only through attention to it (its keys and values);
  in generation it is exactly ``response`` restricted to the prompt's forward pass.

Padding is never steered.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

Position = Literal["all", "prompt", "response", "prompt_last"]
POSITIONS: tuple[Position, ...] = get_args(Position)


def position_mask(
    position: Position, prompt: torch.Tensor, response: torch.Tensor, last: torch.Tensor
) -> torch.Tensor:
    """The ``[B, t]`` tokens steered at ``position``, given a pass's prompt, response and
    last-prompt-token masks (padding is in none of them)."""
    if position == "all":
        return prompt | response
    if position == "prompt":
        return prompt
    if position == "prompt_last":
        return last
    return response | last
