"""HpT's spatial-attention transformer: tokens are stations.

``X[batch, station, feature]`` -> input MLP embedding + sinusoidal positional encoding of
the station index -> ``layers`` post-LayerNorm encoder layers (multi-head self-attention
over stations, then a feed-forward block) -> dimension-reduction MLP -> a linear head
predicting each station's target ``y[batch, station]``. With ``ModelConfig.residual`` (the
default) and data whose last feature is the station's previous value in target units
(:func:`sw.data.load` builds that for every windowed series), the head predicts the change
from that value, which is added back: forecasting models do this so that a level outside
the training range (a trend, a seasonal peak) is carried over instead of regressed to the
training mean.

Attention is written out (separate Q, K, V, O projections and explicit ``Q K^T`` and
``softmax V`` products) so that the hybrid execution layer can adapt Q and V with LoRA
and route each product to a hardware backend.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

__all__ = ["ModelConfig", "SpatialTransformer", "PRESETS", "RoutedLinear", "station_bias_shape"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the model. ``preset("paper")`` is the authors' 512-wide, 12-layer,
    16-head model with FFN 2048; ``preset("tiny")`` trains in a minute or two on 2 CPU cores."""
    d_model: int = 64
    layers: int = 2
    heads: int = 4
    ffn: int = 128
    reduce: int = 32
    dropout: float = 0.1
    max_stations: int = 4096
    residual: bool = True         # predict the change from each station's last value
    attn_bias: bool = False       # a learned bias per head and station pair in every layer

    def __post_init__(self):
        for name in ("d_model", "layers", "heads", "ffn", "reduce", "max_stations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive integer, not {v!r}")
        if self.d_model % self.heads:
            raise ValueError(f"ModelConfig.d_model ({self.d_model}) must be divisible by "
                             f"heads ({self.heads})")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), not {self.dropout}")
        for name in ("residual", "attn_bias"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"ModelConfig.{name} must be True or False, "
                                 f"not {getattr(self, name)!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "ModelConfig":
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "tiny": dict(d_model=64, layers=2, heads=4, ffn=128, reduce=32, dropout=0.1),
    "paper": dict(d_model=512, layers=12, heads=16, ffn=2048, reduce=128, dropout=0.1),
}


class RoutedLinear(nn.Linear):
    """An ``nn.Linear`` whose product can run on the accelerator: :func:`sw.model.hybrid.set_backend`
    sets ``route`` to ``(backend, role)`` with role ``"frozen"`` (the weight lives in
    ReRAM: ``x W0`` as MVM, the input gradient as MVM_T) or ``"trainable"`` (``x W^T`` and
    both gradient products on the systolic cores). ``name`` is its name in the model."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.route = None
        self.name = ""

    def forward(self, x):
        if self.route is None:
            return super().forward(x)
        from sw.model.hybrid import routed_linear
        return routed_linear(self, x)


def sinusoidal(n: int, d: int) -> torch.Tensor:
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe


def station_bias_shape(cfg: ModelConfig, stations: int) -> tuple[int, int, int]:
    """``(heads, stations, stations)``: one layer's attention bias (``cfg.attn_bias``)."""
    return (cfg.heads, stations, stations)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over the stations. With ``stations`` (``cfg.attn_bias``), a
    learned bias ``station_bias[head, i, j]`` (zeros at the start) is added to the scores of
    station i attending to station j before the softmax: the relative-position bias of
    Swin/T5, here one free value per station pair, since stations have no order. It lets
    attention learn a fixed geography (which stations lie upstream of which) directly,
    instead of through the query/key products of the positional encodings."""

    def __init__(self, cfg: ModelConfig, stations: int | None = None):
        super().__init__()
        d = cfg.d_model
        self.heads, self.d_head = cfg.heads, d // cfg.heads
        self.q, self.k, self.v, self.o = (RoutedLinear(d, d) for _ in range(4))
        self.station_bias = (nn.Parameter(torch.zeros(station_bias_shape(cfg, stations)))
                             if stations is not None else None)
        self.drop = nn.Dropout(cfg.dropout)
        self.backend = None          # set by sw.model.hybrid.set_backend in the low-parameter phase
        self.name = "attn"

    def _mm(self, a, b, tag):
        if self.backend is None:
            return a @ b
        from sw.model.hybrid import SystolicMatmul
        return SystolicMatmul.apply(a, b, self.backend, f"{self.name}.{tag}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, S, d = x.shape
        split = lambda t: t.view(B, S, self.heads, self.d_head).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = self._mm(q, k.transpose(-2, -1), "qk") / math.sqrt(self.d_head)   # Q K^T
        if self.station_bias is not None:
            scores = scores + self.station_bias                  # a vector-unit add
        attn = self.drop(torch.softmax(scores, dim=-1))
        out = self._mm(attn, v, "av").transpose(1, 2).reshape(B, S, d)              # softmax V
        return self.o(out)


class EncoderLayer(nn.Module):
    """Post-LayerNorm: ``x = LN(x + MHA(x)); x = LN(x + FFN(x))``."""

    def __init__(self, cfg: ModelConfig, stations: int | None = None):
        super().__init__()
        self.attn = MultiHeadAttention(cfg, stations)
        self.ln1, self.ln2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.ff1, self.ff2 = RoutedLinear(cfg.d_model, cfg.ffn), RoutedLinear(cfg.ffn, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.drop(self.ff2(self.drop(torch.relu(self.ff1(x))))))


class SpatialTransformer(nn.Module):
    """``last_value``: the feature holding each station's previous target value (in target
    units), added to the head's output when ``cfg.residual``; None: no such feature (the
    model then predicts the target itself). ``horizon``: steps predicted per station (the
    output gets a last axis of that size when above 1). ``stations``: how many stations
    every input has; needed by ``cfg.attn_bias`` (its bias is sized by it), else unused."""

    def __init__(self, cfg: ModelConfig, n_features: int, last_value: int | None = None,
                 horizon: int = 1, stations: int | None = None):
        super().__init__()
        if n_features < 1:
            raise ValueError(f"n_features must be positive, not {n_features}")
        if last_value is not None and not -n_features <= last_value < n_features:
            raise ValueError(f"last_value feature {last_value} is not one of {n_features}")
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, not {horizon!r}")
        if cfg.attn_bias and (isinstance(stations, bool) or not isinstance(stations, int)
                              or not 1 <= stations <= cfg.max_stations):
            raise ValueError(f"ModelConfig.attn_bias needs the station count (1 to "
                             f"max_stations = {cfg.max_stations}), not {stations!r}")
        self.cfg = cfg
        self.stations = stations if cfg.attn_bias else None
        self.last_value = last_value if cfg.residual else None
        self.horizon = horizon
        d = cfg.d_model
        self.embed = nn.Sequential(RoutedLinear(n_features, d), nn.GELU(), RoutedLinear(d, d))
        self.register_buffer("pe", sinusoidal(cfg.max_stations, d), persistent=False)
        self.layers = nn.ModuleList(EncoderLayer(cfg, self.stations) for _ in range(cfg.layers))
        for i, layer in enumerate(self.layers):
            layer.attn.name = f"layers.{i}.attn"
        self.reduce = nn.Sequential(RoutedLinear(d, max(cfg.reduce, d // 2)), nn.GELU(),
                                    RoutedLinear(max(cfg.reduce, d // 2), cfg.reduce), nn.GELU())
        self.head = RoutedLinear(cfg.reduce, horizon)
        for name, module in self.named_modules():
            if isinstance(module, RoutedLinear):
                module.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[batch, station, feature]`` -> ``y[batch, station]`` (``[..., horizon]``)."""
        S = x.shape[1]
        if S > self.cfg.max_stations:
            raise ValueError(f"{S} stations exceed ModelConfig.max_stations ({self.cfg.max_stations})")
        if self.stations is not None and S != self.stations:
            raise ValueError(f"the input has {S} stations; this model's attention bias "
                             f"(ModelConfig.attn_bias) was built for {self.stations}")
        h = self.embed(x) + self.pe[:S]
        for layer in self.layers:
            h = layer(h)
        out = self.head(self.reduce(h))
        if self.horizon == 1:
            out = out.squeeze(-1)
        if self.last_value is None:
            return out
        last = x[..., self.last_value]
        return out + (last if self.horizon == 1 else last[..., None])

    @classmethod
    def for_data(cls, cfg: ModelConfig, data) -> "SpatialTransformer":
        """The model for a :class:`sw.data.Data` (its feature count, and its last feature
        as the previous value when the data has lags)."""
        return cls(cfg, data.n_features, data.n_features - 1 if data.lags else None,
                   data.horizon, data.stations)
