"""The encoder-decoder: BART-style post-LN layers on ``scaled_dot_product_attention``, with a static KV cache.

Numerically this is the official model (transformers' ``BartEncoderLayer`` / ``BartDecoderLayer`` with the
ViSAGe embeddings); only the structure differs: attention goes through SDPA, the decoder's self-attention
keys/values live in buffers preallocated once per generation (:class:`DecoderCache`), and the
cross-attention keys/values are computed once per clip.

Dimension letters: B batch, F CLIP frames, E encoder positions (F + 2: BOS, frames, EOS), L decoder
positions, K code rows, D model width, H heads, Dh head width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from .few_rows_linear import FewRowsLinear, few_rows_linear


class MultiHeadAttention(nn.Module):
    """BART attention: separate q/k/v/out projections with biases, softmax(q k^T / sqrt(Dh)) v."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q_proj = FewRowsLinear(dim, dim)
        self.k_proj = FewRowsLinear(dim, dim)
        self.v_proj = FewRowsLinear(dim, dim)
        self.out_proj = FewRowsLinear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)  # [B, H, n, Dh]

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project ``x`` [B, n, D] to keys and values, each [B, H, n, Dh]."""
        return self._split(self.k_proj(x)), self._split(self.v_proj(x))

    def attend(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        dropout: float = 0.0,
    ) -> torch.Tensor:
        """Queries from ``x`` [B, n, D] over given keys/values; ``mask`` is bool, True = may attend."""
        b, n, d = x.shape
        q = self._split(self.q_proj(x))
        out = F.scaled_dot_product_attention(
            q, keys, values, attn_mask=mask, dropout_p=dropout, is_causal=is_causal
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Module):
    """fc2(gelu(fc1(x))) with the exact erf GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = FewRowsLinear(dim, hidden)
        self.fc2 = FewRowsLinear(hidden, dim)

    def forward(self, x: torch.Tensor, activation_dropout: float = 0.0) -> torch.Tensor:
        h = F.gelu(self.fc1(x))
        if activation_dropout and self.training:
            h = F.dropout(h, activation_dropout, True)
        return self.fc2(h)


class ConditioningMLP(nn.Module):
    """Linear -> GELU -> Linear, the official energy-map and direction embeddings."""

    def __init__(self, in_dim: int, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, dim)
        self.fc2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


@dataclass(frozen=True)
class LayerSizes:
    dim: int
    heads: int
    ffn: int
    dropout: float
    attention_dropout: float
    activation_dropout: float


class EncoderLayer(nn.Module):
    """Post-LN: x = LN(x + SelfAttn(x)); x = LN(x + FFN(x))."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.self_attn = MultiHeadAttention(sizes.dim, sizes.heads)
        self.self_attn_norm = nn.LayerNorm(sizes.dim)
        self.ffn = FeedForward(sizes.dim, sizes.ffn)
        self.ffn_norm = nn.LayerNorm(sizes.dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        s, train = self.sizes, self.training
        k, v = self.self_attn.keys_values(x)
        h = self.self_attn.attend(x, k, v, key_mask, dropout=s.attention_dropout if train else 0.0)
        x = self.self_attn_norm(x + F.dropout(h, s.dropout, train))
        h = self.ffn(x, s.activation_dropout)
        return self.ffn_norm(x + F.dropout(h, s.dropout, train))


@dataclass
class DecoderCache:
    """Static decoder state for one generation: preallocated self-attention keys/values per layer,
    cross-attention keys/values computed once from the encoder output, and the filled length.

    Attributes:
        self_keys, self_values: [layers, B, H, capacity, Dh] each.
        cross_keys, cross_values: one [B, H, E, Dh] per layer.
        cross_mask: [B, 1, 1, E] bool (True = real encoder position) or None when nothing is padded.
        length: decoder positions written so far.
    """

    self_keys: torch.Tensor
    self_values: torch.Tensor
    cross_keys: list[torch.Tensor]
    cross_values: list[torch.Tensor]
    cross_mask: torch.Tensor | None
    length: int = 0

    @property
    def capacity(self) -> int:
        return self.self_keys.shape[3]


class DecoderLayer(nn.Module):
    """Post-LN: causal self-attention, cross-attention over the encoder, feed-forward."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__()
        self.sizes = sizes
        self.self_attn = MultiHeadAttention(sizes.dim, sizes.heads)
        self.self_attn_norm = nn.LayerNorm(sizes.dim)
        self.cross_attn = MultiHeadAttention(sizes.dim, sizes.heads)
        self.cross_attn_norm = nn.LayerNorm(sizes.dim)
        self.ffn = FeedForward(sizes.dim, sizes.ffn)
        self.ffn_norm = nn.LayerNorm(sizes.dim)

    def forward(
        self,
        x: torch.Tensor,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        cross_mask: torch.Tensor | None,
        cache_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
        start: int | torch.Tensor = 0,
    ) -> torch.Tensor:
        """One layer over ``x`` [B, n, D] holding decoder positions ``start .. start + n - 1``.

        Without ``cache_kv`` the chunk is the whole sequence (teacher forcing). With it, the chunk's
        keys/values are written into the cache at ``start`` and the queries see every earlier position.
        ``start`` given as a 0-d tensor selects the static-shape form for one position (n = 1): the
        write is an ``index_copy_`` and attention spans the whole cache under a mask, so every tensor
        keeps its shape from step to step and the step can be captured in a CUDA graph.
        """
        s, train = self.sizes, self.training
        attn_drop = s.attention_dropout if train else 0.0
        k, v = self.self_attn.keys_values(x)
        n = x.shape[1]
        if cache_kv is None:
            h = self.self_attn.attend(x, k, v, is_causal=n > 1, dropout=attn_drop)
        elif isinstance(start, torch.Tensor):
            cache_k, cache_v = cache_kv
            where = start.view(1)
            cache_k.index_copy_(2, where, k)
            cache_v.index_copy_(2, where, v)
            mask = (torch.arange(cache_k.shape[2], device=x.device) <= start)[None, None, None, :]
            h = self.self_attn.attend(x, cache_k, cache_v, mask, dropout=attn_drop)
        else:
            cache_k, cache_v = cache_kv
            end = start + n
            cache_k[:, :, start:end] = k
            cache_v[:, :, start:end] = v
            mask = None
            if n > 1:  # queries i may see keys j <= start + i
                q_pos = torch.arange(start, end, device=x.device)[:, None]
                mask = torch.arange(end, device=x.device)[None, :] <= q_pos
            h = self.self_attn.attend(x, cache_k[:, :, :end], cache_v[:, :, :end], mask, dropout=attn_drop)
        x = self.self_attn_norm(x + F.dropout(h, s.dropout, train))
        h = self.cross_attn.attend(x, cross_kv[0], cross_kv[1], cross_mask, dropout=attn_drop)
        x = self.cross_attn_norm(x + F.dropout(h, s.dropout, train))
        h = self.ffn(x, s.activation_dropout)
        return self.ffn_norm(x + F.dropout(h, s.dropout, train))


class ConditionEncoder(nn.Module):
    """CLIP frames + energy map + camera direction -> encoder states [B, F + 2, D].

    Per frame: clip_proj(clip) (+ energy MLP) + position (+ direction MLP, broadcast over frames); then a
    learned BOS and EOS around the frames (no position, energy or direction on them), an embedding
    LayerNorm and the layers. The addition order is the official one, for bit-level agreement.
    """

    def __init__(
        self,
        *,
        d_clip: int,
        energy_size: int | None,
        direction_size: int | None,
        max_frames: int,
        num_layers: int,
        sizes: LayerSizes,
    ) -> None:
        super().__init__()
        dim = sizes.dim
        self.dropout = sizes.dropout
        self.bos = nn.Parameter(torch.zeros(1, dim))  # [1, D] as in the official checkpoint
        self.eos = nn.Parameter(torch.zeros(1, dim))
        self.clip_proj = nn.Linear(d_clip, dim)
        # The mono (VGGSound) model has neither; energy_size/direction_size None leave them out.
        self.energy_proj = ConditioningMLP(energy_size, dim) if energy_size else None
        self.direction_proj = ConditioningMLP(direction_size, dim) if direction_size else None
        self.positions = nn.Embedding(max_frames, dim)
        # The official model has an `embed_spatial` [4, D] table that no forward uses; kept (as a buffer,
        # outside the optimiser) only so that checkpoints round-trip unchanged.
        self.unused_spatial_embedding: torch.Tensor
        self.register_buffer("unused_spatial_embedding", torch.zeros(4, dim))
        self.embed_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(EncoderLayer(sizes) for _ in range(num_layers))

    def forward(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None,
        direction: torch.Tensor | None,
        frame_counts: torch.Tensor | None = None,
        energy_weight: torch.Tensor | None = None,
        direction_weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode a batch of clips.

        Args:
            clip: [B, F, d_clip] CLIP frame embeddings.
            energy_map: [B, F, 49] or None (term skipped, as in the official encoder).
            direction: [B, 3] or None (term skipped).
            frame_counts: [B] real frames per clip when clips of different lengths share a batch
                (frames past a clip's count are padding); None = all F frames are real.
            energy_weight, direction_weight: [B] 0/1 per clip to skip a term for some clips only.
        Returns:
            states [B, E, D] and the key mask [B, 1, 1, E] (True = real) or None when nothing is padded.
        """
        b, f, _ = clip.shape
        if f > self.positions.num_embeddings:
            raise ValueError(
                f"{f} CLIP frames exceed the encoder's {self.positions.num_embeddings} positions; "
                "longer clips are generated in windows"
            )
        if (energy_map is not None and self.energy_proj is None) or (
            direction is not None and self.direction_proj is None
        ):
            raise ValueError("this (mono) model takes no energy map or direction")
        h = self.clip_proj(clip)  # [B, F, D]
        if energy_map is not None:
            e = self.energy_proj(energy_map)  # type: ignore[misc]
            h = h + (e if energy_weight is None else e * energy_weight[:, None, None])
        h = h + self.positions.weight[:f]
        if direction is not None:
            d = self.direction_proj(direction)[:, None, :]  # type: ignore[misc]  # [B, 1, D]
            h = h + (d if direction_weight is None else d * direction_weight[:, None, None])
        bos = self.bos.to(h.dtype).expand(b, 1, -1)
        eos = self.eos.to(h.dtype).expand(b, 1, -1)
        key_mask = None
        if frame_counts is None or bool((frame_counts == f).all()):
            h = torch.cat([bos, h, eos], dim=1)  # [B, F + 2, D]
        else:
            h = torch.cat([bos, h, torch.zeros_like(eos)], dim=1)
            eos_at = (frame_counts + 1).to(torch.long)  # EOS right after each clip's last real frame
            h = h.scatter(1, eos_at[:, None, None].expand(b, 1, h.shape[-1]), eos)
            positions = torch.arange(f + 2, device=h.device)[None, :]
            key_mask = (positions <= eos_at[:, None])[:, None, None, :]  # [B, 1, 1, E]
        h = F.dropout(self.embed_norm(h), self.dropout, self.training)
        for layer in self.layers:
            h = layer(h, key_mask)
        return h, key_mask


class CodeDecoder(nn.Module):
    """Sum of K code-row embeddings + learned positions (offset 2) -> causal decoder states."""

    def __init__(
        self,
        *,
        num_rows: int,
        embedding_rows: int,
        pad_id: int,
        max_positions: int,
        position_offset: int,
        num_layers: int,
        sizes: LayerSizes,
    ) -> None:
        super().__init__()
        dim = sizes.dim
        self.dropout = sizes.dropout
        self.num_rows = num_rows
        self.embedding_rows = embedding_rows
        self.pad_id = pad_id
        self.position_offset = position_offset
        self.bos = nn.Parameter(torch.zeros(1, dim))
        # All K embedding tables in one tensor so that a step is one embedding-bag lookup. The pad row is
        # looked up like any other (it is zero in trained weights) but, like the official padding_idx,
        # receives no gradient.
        self.code_embeddings = nn.Parameter(torch.zeros(num_rows, embedding_rows, dim))
        self.positions = nn.Embedding(max_positions, dim)
        self.embed_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(DecoderLayer(sizes) for _ in range(num_layers))

    @property
    def max_positions(self) -> int:
        """Decoder positions available (BOS included): 861 for the released model."""
        return self.positions.num_embeddings - self.position_offset

    def embed(
        self, ids: torch.Tensor | None, prepend_bos: bool, batch_size: int | None = None
    ) -> torch.Tensor:
        """Step embeddings before positions: [B, L, K] ids -> [B, L (+1), D].

        ``ids=None`` with ``prepend_bos`` gives the BOS alone ([B, 1, D]), the first generation step.
        """
        if ids is None:
            if not prepend_bos or batch_size is None:
                raise ValueError("ids=None needs prepend_bos and batch_size")
            return self.bos.expand(batch_size, 1, -1)
        b, n, k = ids.shape
        if k != self.num_rows:
            raise ValueError(f"decoder ids must be [B, L, {self.num_rows}], got {tuple(ids.shape)}")
        row_offsets = torch.arange(k, device=ids.device) * self.embedding_rows
        flat = (ids.long() + row_offsets).reshape(b * n, k)
        table = self.code_embeddings.view(self.num_rows * self.embedding_rows, -1)
        if torch.is_grad_enabled() and table.requires_grad:
            # Pads read a detached table so that, as with the official padding_idx, they get no gradient.
            is_pad = (ids.reshape(b * n, k) == self.pad_id).to(table.dtype)
            e = F.embedding_bag(flat, table, mode="sum", per_sample_weights=1 - is_pad)
            e = e + F.embedding_bag(flat, table.detach(), mode="sum", per_sample_weights=is_pad)
        else:
            e = F.embedding_bag(flat, table, mode="sum")
        e = e.view(b, n, -1)  # [B, L, D]
        if prepend_bos:
            e = torch.cat([self.bos.to(e.dtype).expand(b, 1, -1), e], dim=1)
        return e

    def decoder_layers(self) -> list[DecoderLayer]:
        """The layers, typed (``nn.ModuleList`` indexing loses the layer type)."""
        return [cast(DecoderLayer, layer) for layer in self.layers]

    def cross_keys_values(
        self, encoder_states: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-layer cross-attention keys and values, computed once per clip."""
        pairs = [layer.cross_attn.keys_values(encoder_states) for layer in self.decoder_layers()]
        return [k for k, _ in pairs], [v for _, v in pairs]

    def new_cache(
        self, encoder_states: torch.Tensor, encoder_mask: torch.Tensor | None, capacity: int
    ) -> DecoderCache:
        """Allocate a static cache for ``capacity`` decoder positions (BOS included)."""
        if capacity > self.max_positions:
            raise ValueError(f"{capacity} decoder positions exceed the model's {self.max_positions}")
        b = encoder_states.shape[0]
        attn = self.decoder_layers()[0].self_attn
        shape = (len(self.layers), b, attn.num_heads, capacity, attn.head_dim)
        cross_k, cross_v = self.cross_keys_values(encoder_states)
        like = encoder_states
        return DecoderCache(like.new_zeros(shape), like.new_zeros(shape), cross_k, cross_v, encoder_mask)

    def forward(
        self,
        embeddings: torch.Tensor,
        encoder_states: torch.Tensor | None = None,
        encoder_mask: torch.Tensor | None = None,
        cache: DecoderCache | None = None,
    ) -> torch.Tensor:
        """Decoder states for step embeddings [B, n, D] (from :meth:`embed`).

        Without a cache, the embeddings are the whole sequence from position 0 and ``encoder_states``
        are required. With a cache, they continue at ``cache.length`` and the cache advances.
        """
        n = embeddings.shape[1]
        start = 0 if cache is None else cache.length
        first = start + self.position_offset
        h = embeddings + self.positions.weight[first : first + n]
        h = F.dropout(self.embed_norm(h), self.dropout, self.training)
        if cache is None:
            if encoder_states is None:
                raise ValueError("encoder_states are required without a cache")
            cross_k, cross_v = self.cross_keys_values(encoder_states)
            for i, layer in enumerate(self.layers):
                h = layer(h, (cross_k[i], cross_v[i]), encoder_mask)
            return h
        if start + n > cache.capacity:
            raise ValueError(f"decoder cache holds {cache.capacity} positions; asked for {start + n}")
        return self._through_layers(h, cache, start, advance=n)

    def static_step(
        self, embeddings: torch.Tensor, cache: DecoderCache, position: torch.Tensor
    ) -> torch.Tensor:
        """One decoder position [B, 1, D] at ``position`` (a 0-d long tensor) with fixed tensor shapes.

        Numerically the same as :meth:`forward` with a cache; every shape is independent of the
        position, so the call can be recorded once as a CUDA graph and replayed. ``cache.length`` is
        left to the caller.
        """
        pos = self.positions.weight.index_select(0, position.view(1) + self.position_offset)  # [1, D]
        h = F.dropout(self.embed_norm(embeddings + pos), self.dropout, self.training)
        return self._through_layers(h, cache, position, advance=0)

    def _through_layers(
        self, h: torch.Tensor, cache: DecoderCache, start: int | torch.Tensor, advance: int
    ) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            h = layer(
                h,
                (cache.cross_keys[i], cache.cross_values[i]),
                cache.cross_mask,
                (cache.self_keys[i], cache.self_values[i]),
                start,
            )
        cache.length += advance
        return h


class CodeHeads(nn.Module):
    """K linear heads D -> C, stored stacked ([K, C, D]) so any contiguous run of rows is one matmul."""

    def __init__(self, num_rows: int, num_classes: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_rows, num_classes, dim))
        self.bias = nn.Parameter(torch.zeros(num_rows, num_classes))

    def row_tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors the heads are made of, each indexed by code row first ([K, ...]).

        Generation selects and reorders their rows to run only the heads live at a step
        (:meth:`rows_logits`); a heads module with other weights (``fast_decoder``) gives its own.
        """
        return self.weight, self.bias

    def rows_logits(self, h: torch.Tensor, tensors: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits [..., n, C] of the n heads whose :meth:`row_tensors` rows are ``tensors``."""
        weight, bias = tensors
        n, c, d = weight.shape
        return few_rows_linear(h, weight.reshape(n * c, d), bias.reshape(n * c)).unflatten(-1, (n, c))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits of every row: [..., D] -> [..., K, C]."""
        return self.rows_logits(h, self.row_tensors())
