"""Per-forward-pass hook state: the token masks of one forward call and, for a batch, the
steering adds and capture accumulators that the residual-stream hooks read and fill.

Capture reads the residual stream *before* this call's steering at that layer is added. Steering
adds ``coef * v`` (raw, unnormalised) at the tokens :func:`position_mask` selects, on the steered
rows only, so a zero coefficient leaves a row bit-for-bit unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from persona.errors import PersonaError
from persona.model.engine.positions import Position, position_mask
from persona.model.engine.records import Capture, ProjStats, Request
from persona.model.loading import LoadedModel
from persona.model.residual_hooks import StopForward, check_layer, final_norm


@dataclass
class Pass:
    """Masks describing the tokens of one forward call ([B, t] booleans).

    The derived fields are computed once per forward call, not once per hooked layer: decode
    steps have no prompt tokens and the prefill no response tokens, so the hooks skip that work.
    """

    prompt: torch.Tensor
    response: torch.Tensor
    last: torch.Tensor
    has_prompt: bool = field(init=False)
    has_response: bool = field(init=False)
    has_last: bool = field(init=False)
    last_rows: torch.Tensor = field(init=False)  # [B] rows whose last prompt token is here
    prompt_w: torch.Tensor = field(init=False)  # masks as [B, t, 1] float weights
    response_w: torch.Tensor = field(init=False)
    last_w: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.has_prompt = bool(self.prompt.any())
        self.has_response = bool(self.response.any())
        self.last_rows = self.last.any(1)
        self.has_last = bool(self.last_rows.any())
        self.prompt_w = self.prompt.unsqueeze(-1).float()
        self.response_w = self.response.unsqueeze(-1).float()
        self.last_w = self.last.unsqueeze(-1).float()

    def accumulate(
        self, x: torch.Tensor, prompt: torch.Tensor, response: torch.Tensor, last: torch.Tensor
    ) -> None:
        """Add ``x``'s ([B, t, k]) prompt- and response-token sums into ``prompt`` and
        ``response`` ([B, k], in place) and store its last-prompt-token rows in ``last``."""
        if self.has_prompt:
            prompt += (x * self.prompt_w).sum(1)
        if self.has_response:
            response += (x * self.response_w).sum(1)
        if self.has_last:
            last[self.last_rows] = (x * self.last_w).sum(1)[self.last_rows]


class BatchState:
    """Steering adds and capture accumulators for one batch, shared by all its forward calls."""

    def __init__(
        self,
        lm: LoadedModel,
        requests: Sequence[Request],
        capture: Capture,
        stop_after: int | None = None,
    ) -> None:
        self.lm = lm
        self.capture = capture
        self.stop_after = stop_after
        self.current: Pass | None = None
        device, n_layers = lm.device, lm.num_layers
        self.device = torch.device(device)
        dtype = next(lm.model.parameters()).dtype
        self.b = len(requests)
        self.norm = final_norm(lm.model)
        self.n_layers = n_layers
        # steering: layer -> positions -> [B, d]
        self.adds: dict[int, dict[Position, torch.Tensor]] = {}
        self.steered_rows: dict[int, torch.Tensor] = {}
        for row, req in enumerate(requests):
            for s in req.steer:
                check_layer(s.layer, n_layers)
                if s.vector.shape[0] != lm.hidden_size:
                    raise PersonaError(
                        f"steering vector has size {s.vector.shape[0]} but the model's hidden "
                        f"size is {lm.hidden_size}: the vector belongs to another model"
                    )
                if s.coef == 0:
                    continue
                per_pos = self.adds.setdefault(s.layer, {})
                if s.positions not in per_pos:
                    per_pos[s.positions] = torch.zeros(self.b, lm.hidden_size, device=device)
                per_pos[s.positions][row] += float(s.coef) * s.vector.to(device, torch.float32)
                rows = self.steered_rows.setdefault(
                    s.layer, torch.zeros(self.b, dtype=torch.bool, device=device)
                )
                rows[row] = True
        for per_pos in self.adds.values():
            for pos in per_pos:
                per_pos[pos] = per_pos[pos].to(dtype)
        # capture: full means
        self.mean_layers = tuple(sorted(set(capture.means or ())))
        for layer in self.mean_layers:
            check_layer(layer, n_layers, allow_zero=True)
        self.mean_index = {layer: i for i, layer in enumerate(self.mean_layers)}
        if self.mean_layers:
            shape = (self.b, len(self.mean_layers), lm.hidden_size)
            self.sum_resp = torch.zeros(shape, device=device)
            self.sum_prompt = torch.zeros(shape, device=device)
            self.last_prompt = torch.zeros(shape, device=device)
        # capture: projections; per layer a [P, d] matrix of unit vectors
        self.probe_units: dict[int, torch.Tensor] = {}
        self.probe_names: dict[int, list[str]] = {}
        for name, vec in capture.probes.items():
            if vec.ndim != 2 or vec.shape[0] != n_layers + 1 or vec.shape[1] != lm.hidden_size:
                raise PersonaError(
                    f"vector {name!r} has shape {tuple(vec.shape)} but this model needs "
                    f"[{n_layers + 1}, {lm.hidden_size}]: it was extracted on another model"
                )
            for layer in capture.probe_layers.get(name, ()):
                check_layer(layer, n_layers, allow_zero=True)
                row = vec[layer].to(device, torch.float32)
                norm = row.norm()
                if not torch.isfinite(norm) or norm == 0:
                    raise PersonaError(f"vector {name!r} at layer {layer} is zero or not finite")
                self.probe_names.setdefault(layer, []).append(name)
                prev = self.probe_units.get(layer)
                unit = (row / norm)[None]
                self.probe_units[layer] = unit if prev is None else torch.cat([prev, unit])
        self.proj: dict[int, dict[str, torch.Tensor]] = {}
        for layer, units in self.probe_units.items():
            p = units.shape[0]
            self.proj[layer] = {
                "last": torch.zeros(self.b, p, device=device),
                "prompt": torch.zeros(self.b, p, device=device),
                "resp": torch.zeros(self.b, p, device=device),
            }
        self.per_token: list[tuple[int, torch.Tensor, torch.Tensor]] = []  # (layer, [B,t,P], mask)
        self.n_prompt = torch.zeros(self.b, device=device)
        self.n_resp = torch.zeros(self.b, device=device)

    def layers(self) -> list[int]:
        return sorted(set(self.adds) | set(self.mean_layers) | set(self.probe_units))

    # -- called by the hooks -----------------------------------------------------------------
    def on_layer(self, layer: int, hidden: torch.Tensor) -> torch.Tensor | None:
        p = self.current
        assert p is not None, "forward pass without masks"
        if layer in self.mean_index or layer in self.probe_units:
            seen = hidden
            if layer == self.n_layers and self.norm is not None:
                seen = self.norm(hidden)  # HF hidden_states[N] carries the final norm
            self._capture(layer, seen.float().to(self.device), p)
        out = None
        if layer in self.adds:
            if hidden.device == self.device:
                out = self._steer(layer, hidden, p)
            else:  # a block on another device (device_map="auto"): steer where the masks are
                out = self._steer(layer, hidden.to(self.device), p).to(hidden.device)
        if self.stop_after is not None and layer >= self.stop_after:
            raise StopForward
        return out

    def _capture(self, layer: int, h: torch.Tensor, p: Pass) -> None:
        if layer in self.mean_index:
            i = self.mean_index[layer]
            p.accumulate(h, self.sum_prompt[:, i], self.sum_resp[:, i], self.last_prompt[:, i])
        if layer in self.probe_units:
            proj = h @ self.probe_units[layer].T  # [B, t, P]
            acc = self.proj[layer]
            p.accumulate(proj, acc["prompt"], acc["resp"], acc["last"])
            if self.capture.per_token and p.has_response:
                self.per_token.append((layer, proj.detach(), p.response))

    def _steer(self, layer: int, hidden: torch.Tensor, p: Pass) -> torch.Tensor:
        delta = torch.zeros_like(hidden)
        for pos, add in self.adds[layer].items():
            mask = position_mask(pos, p.prompt, p.response, p.last)
            delta = delta + mask.unsqueeze(-1).to(hidden.dtype) * add.unsqueeze(1)
        rows = self.steered_rows[layer].view(-1, 1, 1)
        return torch.where(rows, hidden + delta, hidden)

    def count(self, p: Pass) -> None:
        self.n_prompt += p.prompt.sum(1)
        self.n_resp += p.response.sum(1)

    # -- results -----------------------------------------------------------------------------
    def means(self, row: int) -> dict[str, torch.Tensor] | None:
        if not self.mean_layers:
            return None
        n_p = max(float(self.n_prompt[row]), 1.0)
        n_r = float(self.n_resp[row])
        resp = (
            self.sum_resp[row] / n_r if n_r > 0 else torch.full_like(self.sum_resp[row], math.nan)
        )
        return {
            "response_avg": resp.cpu(),
            "prompt_avg": (self.sum_prompt[row] / n_p).cpu(),
            "prompt_last": self.last_prompt[row].clone().cpu(),
        }

    def projections(self, row: int) -> dict[str, dict[int, ProjStats]]:
        out: dict[str, dict[int, ProjStats]] = {}
        n_p = max(float(self.n_prompt[row]), 1.0)
        n_r = int(self.n_resp[row])
        for layer, names in self.probe_names.items():
            acc = self.proj[layer]
            tokens = self._per_token(layer, row) if self.capture.per_token else None
            for j, name in enumerate(names):
                out.setdefault(name, {})[layer] = ProjStats(
                    prompt_last=float(acc["last"][row, j]),
                    prompt_mean=float(acc["prompt"][row, j]) / n_p,
                    response_mean=float(acc["resp"][row, j]) / n_r if n_r else None,
                    n_response=n_r,
                    per_token=[float(x) for x in tokens[:, j]] if tokens is not None else None,
                )
        return out

    def token_projections(self, row: int) -> dict[str, dict[int, float]]:
        """Projections of ``row``'s newest response token (the last forward pass's last column)
        onto each probe at each layer: the per-token values streamed while generating."""
        out: dict[str, dict[int, float]] = {}
        for layer, proj, mask in self.per_token[-len(self.probe_units) :]:
            if bool(mask[row, -1]):
                for j, name in enumerate(self.probe_names[layer]):
                    out.setdefault(name, {})[layer] = float(proj[row, -1, j])
        return out

    def _per_token(self, layer: int, row: int) -> torch.Tensor:
        parts = [proj[row][mask[row]] for lyr, proj, mask in self.per_token if lyr == layer]
        if not parts:
            return torch.zeros(0, len(self.probe_names[layer]))
        return torch.cat(parts).cpu()
