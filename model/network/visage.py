"""The ViSAGe network: conditions -> encoder -> code decoder -> one head per code row.

Dimension letters: B batch, F CLIP frames, E encoder positions (F + 2), L decoder input steps, K code
rows (36 = 4 channels W, Y, Z, X x 9 codebooks; row = 9 * channel + codebook), C classes (1024), D width.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .code_pattern import CodePattern, get_pattern
from .config import VisageConfig
from .loss import codebook_cross_entropy
from .transformer import CodeDecoder, CodeHeads, ConditionEncoder, LayerSizes

if TYPE_CHECKING:
    from .generation import GenerationResult, Guidance


@dataclass
class VisageOutput:
    """Result of a teacher-forced forward.

    Attributes:
        logits: [B, L + 1, K, C]; position j predicts step j of the code pattern (BOS first).
        loss: the official loss (sum over rows of each row's mean CE) when labels were given.
        row_losses: [K] per-row losses (NaN for rows without labels) when labels were given.
    """

    logits: torch.Tensor
    loss: torch.Tensor | None = None
    row_losses: torch.Tensor | None = None


@dataclass(frozen=True)
class Conditions:
    """Encoder inputs after null substitution (see :meth:`Visage.conditions`)."""

    clip: torch.Tensor
    energy_map: torch.Tensor | None
    direction: torch.Tensor | None
    energy_weight: torch.Tensor | None
    direction_weight: torch.Tensor | None
    frame_counts: torch.Tensor | None


class Visage(nn.Module):
    """Video (CLIP frames + patch energy map) + camera direction -> FOA codec codes.

    Build it from an official checkpoint with :meth:`from_pretrained`; ``Visage(config)`` gives zero
    weights (call :meth:`init_weights` to train from scratch).
    """

    def __init__(self, config: VisageConfig, pattern: CodePattern | None = None) -> None:
        super().__init__()
        self.config = config
        self.pattern = pattern or get_pattern("visage", config.num_rvq, config.num_channels)
        if self.pattern.num_rows != config.num_code_rows:
            raise ValueError(
                f"pattern {self.pattern.name} has {self.pattern.num_rows} rows, model {config.num_code_rows}"
            )
        c = config
        enc = LayerSizes(
            c.d_model,
            c.encoder_attention_heads,
            c.encoder_ffn_dim,
            c.dropout,
            c.attention_dropout,
            c.activation_dropout,
        )
        dec = LayerSizes(
            c.d_model,
            c.decoder_attention_heads,
            c.decoder_ffn_dim,
            c.dropout,
            c.attention_dropout,
            c.activation_dropout,
        )
        spatial = c.is_ambisonic
        # Learned "not given" inputs for classifier-free guidance (zeros at init, as in the official model).
        self.null_clip = nn.Parameter(torch.zeros(c.d_clip))
        self.null_direction = nn.Parameter(torch.zeros(c.direction_size)) if spatial else None
        self.null_energy = nn.Parameter(torch.zeros(c.energy_map_size)) if spatial else None
        self.encoder = ConditionEncoder(
            d_clip=c.d_clip,
            energy_size=c.energy_map_size if spatial else None,
            direction_size=c.direction_size if spatial else None,
            max_frames=c.max_source_length,
            num_layers=c.encoder_layers,
            sizes=enc,
        )
        self.decoder = CodeDecoder(
            num_rows=c.num_code_rows,
            embedding_rows=c.code_embedding_rows,
            pad_id=c.dac_pad_token_id,
            max_positions=c.decoder_positions,
            position_offset=c.decoder_position_offset,
            num_layers=c.decoder_layers,
            sizes=dec,
        )
        self.heads = CodeHeads(c.num_code_rows, c.dac_vocab_size, c.d_model)

    # -- construction --------------------------------------------------------------------------------

    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """The official (BART) initialisation, for training from scratch.

        Linear and embedding weights ~ N(0, init_std), biases 0, LayerNorms 1/0, the code embeddings'
        pad rows 0, learned BOS/EOS and null vectors 0.
        """
        std = self.config.init_std
        for name, p in self.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if "norm" in name:
                nn.init.ones_(p) if leaf == "weight" else nn.init.zeros_(p)
            elif leaf == "bias" or leaf in ("bos", "eos") or name.startswith("null_"):
                nn.init.zeros_(p)
            else:
                with torch.no_grad():
                    p.normal_(0.0, std, generator=generator)
        with torch.no_grad():
            self.decoder.code_embeddings[:, self.config.dac_pad_token_id].zero_()
            self.encoder.unused_spatial_embedding.normal_(0.0, std, generator=generator)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path = "jaeyeonkim99/visage", **kwargs: Any) -> Visage:
        """Load an official (or our own) checkpoint; see :func:`checkpoint.load_pretrained`."""
        from .checkpoint import load_pretrained

        return load_pretrained(path_or_repo_id, **kwargs)

    def save_pretrained(self, directory: str | Path, **kwargs: Any) -> Path:
        """Write the official layout; see :func:`checkpoint.save_pretrained`."""
        from .checkpoint import save_pretrained

        return save_pretrained(self, directory, **kwargs)

    # -- conditions ----------------------------------------------------------------------------------

    def conditions(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        *,
        null_video: torch.Tensor | None = None,
        null_direction: torch.Tensor | None = None,
        frame_counts: torch.Tensor | None = None,
    ) -> Conditions:
        """Substitute the learned null inputs where asked.

        Args:
            clip: [B, F, d_clip]; energy_map: [B, F, 49] or None; direction: [B, 3] or None (None = the
                term is left out, as in the official encoder).
            null_video: [B] bool, clips whose video (CLIP frames *and* energy map, always together)
                becomes the null embeddings.
            null_direction: [B] bool, clips whose direction becomes the null direction.
            frame_counts: [B] real frames per clip when clips are padded to a common F.
        """
        b, f, _ = clip.shape
        dtype = clip.dtype
        energy_weight = direction_weight = None
        if null_video is not None and bool(null_video.any()):
            m = null_video.to(clip.device)
            clip = torch.where(m[:, None, None], self.null_clip.to(dtype), clip)
            if self.null_energy is not None:
                null_e = self.null_energy.to(dtype).expand(b, f, -1)
                if energy_map is None:  # real clips skip the term, nulled ones get the null map
                    energy_map, energy_weight = null_e, m.to(dtype)
                else:
                    energy_map = torch.where(m[:, None, None], null_e, energy_map)
        if null_direction is not None and bool(null_direction.any()) and self.null_direction is not None:
            m = null_direction.to(clip.device)
            null_d = self.null_direction.to(dtype).expand(b, -1)
            if direction is None:
                direction, direction_weight = null_d, m.to(dtype)
            else:
                direction = torch.where(m[:, None], null_d, direction)
        return Conditions(clip, energy_map, direction, energy_weight, direction_weight, frame_counts)

    def encode_conditions(self, cond: Conditions) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder states [B, E, D] and key mask [B, 1, 1, E] (None when no clip is padded)."""
        return self.encoder(
            cond.clip,
            cond.energy_map,
            cond.direction,
            cond.frame_counts,
            cond.energy_weight,
            cond.direction_weight,
        )

    def encode(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        *,
        frame_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encoder states [B, F + 2, D]: BOS, one state per CLIP frame, EOS."""
        states, _ = self.encode_conditions(
            self.conditions(clip, energy_map, direction, frame_counts=frame_counts)
        )
        return states

    # -- teacher forcing -----------------------------------------------------------------------------

    def decoder_states(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None,
        direction: torch.Tensor | None,
        decoder_input_ids: torch.Tensor,
        *,
        null_video: torch.Tensor | None = None,
        null_direction: torch.Tensor | None = None,
        frame_counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced decoder states [B, L + 1, D]: conditions, encoder, decoder (BOS prepended).

        The one opening shared by :meth:`forward` (full logits) and the training objective (logits a few
        heads at a time); arguments as in :meth:`forward`.
        """
        cond = self.conditions(
            clip,
            energy_map,
            direction,
            null_video=null_video,
            null_direction=null_direction,
            frame_counts=frame_counts,
        )
        states, mask = self.encode_conditions(cond)
        return self.decoder(self.decoder.embed(decoder_input_ids, prepend_bos=True), states, mask)

    def forward(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        *,
        null_video: torch.Tensor | None = None,
        null_direction: torch.Tensor | None = None,
        frame_counts: torch.Tensor | None = None,
    ) -> VisageOutput:
        """Teacher-forced logits (and the official loss when ``labels`` are given).

        Args:
            clip, energy_map, direction, null_video, null_direction, frame_counts: see :meth:`conditions`.
            decoder_input_ids: [B, L, K] pattern steps 0..L-1 (``pattern.decoder_inputs``); BOS is prepended.
            labels: [B, L + 1, K] pattern with -100 for pads (``pattern.labels``).
        Returns:
            :class:`VisageOutput` with logits [B, L + 1, K, C].
        """
        if decoder_input_ids is None:
            raise ValueError("decoder_input_ids [B, L, K] are required")
        h = self.decoder_states(
            clip,
            energy_map,
            direction,
            decoder_input_ids,
            null_video=null_video,
            null_direction=null_direction,
            frame_counts=frame_counts,
        )
        logits = self.heads(h)
        if labels is None:
            return VisageOutput(logits)
        loss, rows = codebook_cross_entropy(logits, labels, self.config.label_smoothing)
        return VisageOutput(logits, loss, rows)

    # -- generation ----------------------------------------------------------------------------------

    def generate(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        guidance_scale: float | None = None,
        top_k: int = 256,
        do_sample: bool = True,
        generator: torch.Generator | None = None,
        mode: str = "joint",
        **kwargs: Any,
    ) -> torch.Tensor:
        """Guided generation; codes [B, T, K] (rows 9 * channel + codebook, channels W, Y, Z, X).

        For full-length clips T is the official 431 frames (430 generated, the last one repeated).
        ``guidance_scale`` defaults to the config's (2.5); ``mode`` is ``joint`` (official), ``directional``,
        ``visual``, ``dual`` or ``none``. Other keyword arguments go to :func:`generation.generate`.
        """
        return self.generate_full(
            clip,
            energy_map,
            direction,
            guidance_scale=guidance_scale,
            top_k=top_k,
            do_sample=do_sample,
            generator=generator,
            mode=mode,
            **kwargs,
        ).codes

    def generate_full(
        self,
        clip: torch.Tensor,
        energy_map: torch.Tensor | None = None,
        direction: torch.Tensor | None = None,
        *,
        guidance_scale: float | None = None,
        mode: str = "joint",
        direction_scale: float | None = None,
        guidance: Guidance | None = None,
        **kwargs: Any,
    ) -> GenerationResult:
        """Like :meth:`generate` but returns the typed :class:`generation.GenerationResult`."""
        from .generation import Guidance, generate

        if guidance is None:
            scale = self.config.cfg_guidance_scale if guidance_scale is None else guidance_scale
            if mode == "dual" and direction_scale is None:
                direction_scale = self.config.cfg_spatial_guidance_scale
            guidance = Guidance(mode, scale, direction_scale)
        return generate(self, clip, energy_map, direction, guidance=guidance, **kwargs)
