"""Next-track model: SASRec (Kang & McAuley, 2018), a causal self-attention encoder over the listening sequence.

Trained gSASRec-style with sampled negatives: each position predicts the next liked item against ``negatives``
items drawn uniformly per batch, a softmax over the positive and those negatives. That keeps a step's cost
independent of the catalog size, so it trains on a laptop's CPU at demo scale. ``sequence_scores`` scores any
sequence, such as the live session a next-track request carries.
"""

from __future__ import annotations

import math

import numpy as np

from playnext.models.base import normalize_rows
from playnext.models.factorization import VectorModel
from playnext.models.interactions import Interactions


def _module(n_items: int, dim: int, max_len: int, blocks: int, heads: int, dropout: float):  # type: ignore[no-untyped-def]
    import torch
    from torch import nn

    class SASRec(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)  # 0 pads; item i is i + 1
            self.position = nn.Embedding(max_len, dim)
            layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.drop = nn.Dropout(dropout)
            self.register_buffer("causal", torch.triu(torch.ones(max_len, max_len, dtype=torch.bool), 1))

        def forward(self, seq: torch.Tensor) -> torch.Tensor:
            length = seq.shape[1]
            keep = (seq > 0).unsqueeze(-1).float()
            x = self.item(seq) * math.sqrt(dim) + self.position.weight[:length]
            x = self.drop(x) * keep  # padded positions carry nothing (no key mask: it would empty causal rows)
            h = self.encoder(x, mask=self.causal[:length, :length], is_causal=True)
            return self.norm(h) * keep

    return SASRec()


class SASRec(VectorModel):
    name = "sasrec"

    def __init__(
        self,
        dim: int = 64,
        max_len: int = 50,
        blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.1,
        epochs: int = 5,
        min_steps: int = 300,
        max_windows: int = 4,
        batch_size: int = 128,
        negatives: int = 256,
        lr: float = 3e-3,
        seed: int = 0,
        threads: int = 2,
    ) -> None:
        super().__init__(
            dim=dim,
            max_len=max_len,
            blocks=blocks,
            heads=heads,
            dropout=dropout,
            epochs=epochs,
            min_steps=min_steps,
            max_windows=max_windows,
            batch_size=batch_size,
            negatives=negatives,
            lr=lr,
            seed=seed,
            threads=threads,
        )

    def _build(self, n_items: int):  # type: ignore[no-untyped-def]
        p = self.params
        return _module(n_items, p["dim"], p["max_len"], p["blocks"], p["heads"], p["dropout"])

    def _windows(self, data: Interactions, length: int) -> np.ndarray:
        """Every listener's sequence cut into windows of ``length`` items (+1; 0 pads on the left), newest
        first, at most ``max_windows`` per listener: long histories teach more than their last window."""
        out = []
        for u in range(data.n_users):
            seq = data.sequence(u) + 1
            for end in range(len(seq), 1, -(length - 1))[: self.params["max_windows"]]:
                part = seq[max(0, end - length) : end]
                row = np.zeros(length, dtype=np.int64)
                row[length - len(part) :] = part
                out.append(row)
        return np.array(out, dtype=np.int64).reshape(-1, length)

    def _fit(self, data: Interactions) -> None:
        import torch

        p = self.params
        torch.manual_seed(p["seed"])
        torch.set_num_threads(p["threads"])
        rng = np.random.default_rng(p["seed"])
        net = self._build(data.n_items)
        windows = self._windows(data, p["max_len"] + 1)
        windows = windows[(windows > 0).sum(axis=1) >= 2]
        optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"], betas=(0.9, 0.98))
        net.train()
        per_epoch = max(1, -(-len(windows) // p["batch_size"]))
        epochs = max(p["epochs"], -(-p["min_steps"] // per_epoch))  # small data: enough steps to learn anything
        for _ in range(epochs if len(windows) else 0):
            order = rng.permutation(len(windows))
            for lo in range(0, len(order), p["batch_size"]):
                batch = torch.from_numpy(windows[order[lo : lo + p["batch_size"]]])
                inputs, targets = batch[:, :-1], batch[:, 1:]
                h = net(inputs)
                valid = (targets > 0) & (inputs > 0)
                h, targets = h[valid], targets[valid]
                negatives = torch.from_numpy(rng.integers(1, data.n_items + 1, size=p["negatives"]))
                pos = (h * net.item(targets)).sum(-1, keepdim=True)
                neg = h @ net.item(negatives).T
                neg = neg.masked_fill(negatives.unsqueeze(0) == targets.unsqueeze(1), -1e9)
                logits = torch.cat([pos, neg], dim=1)
                loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        net.eval()
        self.net_ = net
        self._last_state = None
        self.item_factors_ = net.item.weight.detach().numpy()[1:].astype(np.float32)
        self.user_factors_ = self.sequence_vectors([data.sequence(u) for u in range(data.n_users)])

    def sequence_vectors(self, sequences: list[np.ndarray]) -> np.ndarray:
        """The encoder's last state for each sequence of item indexes (oldest first); zero for an empty one.

        One sequence (a next-track request) goes through ``LastState``, the same arithmetic in NumPy: PyTorch's
        per-call overhead made the forward pass most of a request's time. Batches (training, the batch
        surfaces) stay in PyTorch."""
        import torch

        length = self.params["max_len"]
        out = np.zeros((len(sequences), self.params["dim"]), dtype=np.float32)
        batch = np.zeros((len(sequences), length), dtype=np.int64)
        for row, seq in enumerate(sequences):
            seq = np.asarray(seq, dtype=np.int64)[-length:]
            if len(seq):
                batch[row, length - len(seq) :] = seq + 1
        if len(sequences) == 1:
            if not batch[0].any():
                return out
            last_state = getattr(self, "_last_state", None)
            if last_state is None:
                last_state = self._last_state = LastState(self.net_.state_dict(), self.params["heads"])
            out[0] = last_state(batch[0])
            return out
        with torch.no_grad():
            for lo in range(0, len(batch), 1024):
                h = self.net_(torch.from_numpy(batch[lo : lo + 1024]))
                out[lo : lo + 1024] = h[:, -1].numpy()
        return out

    def sequence_scores(self, sequences: list[np.ndarray]) -> np.ndarray:
        return self.sequence_vectors(sequences) @ self.item_factors_.T

    def item_scores(self, items: np.ndarray) -> np.ndarray:
        unit = normalize_rows(self.item_factors_)
        return unit[np.asarray(items)] @ unit.T

    def _state(self) -> dict[str, np.ndarray]:
        weights = {f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()}
        return {**super()._state(), **weights}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        import torch

        super()._restore(state)
        net = self._build(len(state["item_factors_"]))
        net.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in state.items() if k.startswith("net.")})
        net.eval()
        self.net_ = net
        self._last_state = None


def _normed(x: np.ndarray, scale: np.float32, eps: np.float32) -> np.ndarray:
    """LayerNorm without its affine (folded into the map after it). Sums times 1/d rather than ``mean``: on a
    request's few rows NumPy's ``mean`` wrapper cost more than the math."""
    centred = x - np.add.reduce(x, axis=-1, keepdims=True) * scale
    return centred / np.sqrt(np.add.reduce(centred * centred, axis=-1, keepdims=True) * scale + eps)


class LastState:
    """SASRec's encoder for one padded sequence, in NumPy, returning only the last position's state: the
    pre-norm Transformer layers of ``torch.nn.TransformerEncoderLayer(norm_first=True)`` with a causal mask,
    ReLU feed-forward and the final LayerNorm. A test holds it to PyTorch's output.

    A request's forward pass is a few dozen small products, so both the arithmetic and the number of NumPy calls
    count. Done once, not per request: the embedding scale is folded into the item table, the attention's
    1/sqrt(head dim) into the query projection, each LayerNorm's affine into the linear map after it. The last
    layer computes its query, attention and feed-forward for the last position only (keys and values still for
    every position), since nothing else is read."""

    def __init__(self, state: dict, heads: int) -> None:  # type: ignore[type-arg]
        w = {k: v.detach().numpy().astype(np.float64) for k, v in state.items() if k != "causal"}
        self.heads = heads
        self.dim = d = w["item.weight"].shape[1]
        self.scale, self.eps = np.float32(1.0 / d), np.float32(1e-5)
        self.item = _f32(w["item.weight"] * math.sqrt(d))
        self.position = _f32(w["position.weight"])
        self.norm = (_f32(w["norm.weight"]), _f32(w["norm.bias"]))
        self._masks: dict[int, np.ndarray] = {}
        query = np.ones(3 * d)
        query[:d] = 1 / math.sqrt(d // heads)
        self.layers = []
        n = 0
        while f"encoder.layers.{n}.linear1.weight" in w:
            p = f"encoder.layers.{n}."
            in_w, in_b = _fold(w[p + "norm1.weight"], w[p + "norm1.bias"], w[p + "self_attn.in_proj_weight"].T * query,
                               w[p + "self_attn.in_proj_bias"] * query)  # fmt: skip
            l1_w, l1_b = _fold(w[p + "norm2.weight"], w[p + "norm2.bias"], w[p + "linear1.weight"].T,
                               w[p + "linear1.bias"])  # fmt: skip
            self.layers.append({
                "in_w": _f32(in_w), "in_b": _f32(in_b),
                "q_w": _f32(in_w[:, :d]), "q_b": _f32(in_b[:d]), "kv_w": _f32(in_w[:, d:]), "kv_b": _f32(in_b[d:]),
                "out_w": _f32(w[p + "self_attn.out_proj.weight"].T), "out_b": _f32(w[p + "self_attn.out_proj.bias"]),
                "l1_w": _f32(l1_w), "l1_b": _f32(l1_b),
                "l2_w": _f32(w[p + "linear2.weight"].T), "l2_b": _f32(w[p + "linear2.bias"]),
            })  # fmt: skip
            n += 1

    def __call__(self, seq: np.ndarray) -> np.ndarray:
        """``seq``: item indexes + 1, left-padded with 0 (so the padding is a prefix)."""
        length, d, h = len(seq), self.dim, self.heads
        hd, scale, eps = d // h, self.scale, self.eps
        pad = length - int(np.count_nonzero(seq))
        if pad == length:
            return np.zeros(d, np.float32)
        x = self.item[seq]
        x[:pad] = 0.0  # padded positions carry nothing, as in PyTorch's forward pass
        x[pad:] += self.position[pad:length]
        causal = self._masks.get(length)
        if causal is None:
            causal = self._masks[length] = np.triu(np.full((length, length), -np.inf, np.float32), 1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            y = _normed(x, scale, eps)
            if i == last:
                kv = (y @ layer["kv_w"] + layer["kv_b"]).reshape(length, 2 * h, hd).transpose(1, 0, 2)
                q = (y[-1:] @ layer["q_w"] + layer["q_b"]).reshape(1, h, hd).transpose(1, 0, 2)
                k, v, mask, x = kv[:h], kv[h:], causal[-1:], x[-1:]
            else:
                qkv = (y @ layer["in_w"] + layer["in_b"]).reshape(length, 3 * h, hd).transpose(1, 0, 2)
                q, k, v, mask = qkv[:h], qkv[h : 2 * h], qkv[2 * h :], causal
            scores = q @ k.transpose(0, 2, 1) + mask
            scores = np.exp(scores - np.maximum.reduce(scores, axis=2, keepdims=True))
            scores /= np.add.reduce(scores, axis=2, keepdims=True)
            attended = (scores @ v).transpose(1, 0, 2).reshape(len(x), d)
            x = x + attended @ layer["out_w"] + layer["out_b"]
            hidden = _normed(x, scale, eps) @ layer["l1_w"] + layer["l1_b"]
            x = x + np.maximum(hidden, 0.0, out=hidden) @ layer["l2_w"] + layer["l2_b"]
        weight, bias = self.norm
        return (_normed(x[-1], scale, eps) * weight + bias).astype(np.float32)


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _fold(
    norm_w: np.ndarray, norm_b: np.ndarray, lin_w: np.ndarray, lin_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """LayerNorm's affine folded into the linear map after it (in float64): (n * w + b) @ W + c =
    n @ (w[:, None] * W) + (b @ W + c)."""
    return norm_w[:, None] * lin_w, norm_b @ lin_w + lin_b
