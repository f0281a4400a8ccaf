"""Architecture hyperparameters, read from and written to the official ``config.json``.

The official ``VisageConfig`` subclasses transformers' ``BartConfig``, so its JSON carries BART field names
plus a few ViSAGe ones. :class:`VisageConfig` keeps the fields this project uses as typed attributes under
the same names, and every other field of the file (BART's text-token fields, ``id2label``, ...) in
``extra`` so that a config read and written again is the same file.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sequence import SequenceConfig

AMBISONICS_ARCHITECTURE = "VisageForAmbisonicsGeneration"
MONO_ARCHITECTURE = "VisageForConditionalGeneration"

# Fields the official file has but this implementation never reads (BART text-token leftovers and
# bookkeeping). Written with these values when a config is built here rather than read from a file, so
# that the official code can load our checkpoints.
_BART_PASSTHROUGH_DEFAULTS: dict[str, Any] = {
    "bos_token_id": 0,
    "classifier_dropout": 0.0,
    "decoder_layerdrop": 0.0,
    "decoder_start_token_id": 2,
    "encoder_layerdrop": 0.0,
    "eos_token_id": 2,
    "forced_eos_token_id": 2,
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
    "is_encoder_decoder": True,
    "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2},
    "max_position_embeddings": 1024,
    "model_type": "bart",
    "pad_token_id": 1,
    "scale_embedding": False,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "transformers_version": "4.40.2",
    "use_cache": True,
    "vocab_size": 50265,
}

# Recomputed from dac_sample_rate on load, as the official __init__ does; written back for compatibility.
_DERIVED_FIELDS = ("dac_downsample_rate", "dac_frame_rate", "num_hidden_layers")


@dataclass
class VisageConfig:
    """ViSAGe architecture. Field names are the official ``config.json`` keys.

    The defaults are the released ambisonics model (358.6 M parameters).
    """

    d_model: int = 1024
    encoder_layers: int = 6
    decoder_layers: int = 12
    encoder_attention_heads: int = 16
    decoder_attention_heads: int = 16
    encoder_ffn_dim: int = 4096
    decoder_ffn_dim: int = 4096
    activation_function: str = "gelu"  # exact erf GELU; the only activation the official model uses
    dropout: float = 0.1  # residual and embedding dropout (training only)
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    d_clip: int = 512  # width of the projected CLIP frame embedding
    num_rvq: int = 9  # DAC codebooks per audio channel
    dac_vocab_size: int = 1024
    dac_pad_token_id: int = 1024  # pad id in code matrices; a real row of each code embedding
    dac_sample_rate: int = 44100
    max_source_length: int = 20  # encoder position rows = CLIP frames per window (no offset)
    max_target_length: int = 861  # decoder steps; the position table has 2 more rows (BART offset)
    clip_frame_rate: int = 4
    classifier_free_guidance: bool = True
    cfg_dropout_prob: float = 0.1
    cfg_guidance_scale: float = 2.5
    cfg_spatial_guidance_scale: float = 2.5
    label_smoothing: float = 0.0
    num_channels: int = 4  # 4 = ambisonics (W, Y, Z, X); 1 = the mono VGGSound model
    extra: dict[str, Any] = field(default_factory=lambda: dict(_BART_PASSTHROUGH_DEFAULTS))

    # Fixed by the official code rather than the config.
    energy_map_size: int = dataclasses.field(default=49, init=False)  # 7x7 CLIP patches
    direction_size: int = dataclasses.field(default=3, init=False)  # unit vector
    decoder_position_offset: int = dataclasses.field(default=2, init=False)  # BART learned positions

    def __post_init__(self) -> None:
        if self.activation_function != "gelu":
            raise ValueError(
                f"activation_function {self.activation_function!r} is not supported (only 'gelu')"
            )
        if self.num_channels not in (1, 4):
            raise ValueError(f"num_channels must be 1 (mono) or 4 (ambisonics), got {self.num_channels}")
        for heads, name in (
            (self.encoder_attention_heads, "encoder"),
            (self.decoder_attention_heads, "decoder"),
        ):
            if self.d_model % heads:
                raise ValueError(f"d_model {self.d_model} is not divisible by {name}_attention_heads {heads}")
        SequenceConfig(self.clip_frame_rate, self.dac_sample_rate, self.max_source_length)  # validates rates

    # -- derived -------------------------------------------------------------------------------------

    @property
    def num_code_rows(self) -> int:
        """Code rows K = channels x codebooks (36 for ambisonics, 9 for mono)."""
        return self.num_channels * self.num_rvq

    @property
    def code_embedding_rows(self) -> int:
        """Rows of each code embedding: vocab + pad rounded up to a multiple of 64 (1088)."""
        return -(-(self.dac_vocab_size + 1) // 64) * 64

    @property
    def decoder_positions(self) -> int:
        """Rows of the decoder position table (863)."""
        return self.max_target_length + self.decoder_position_offset

    @property
    def is_ambisonic(self) -> bool:
        return self.num_channels == 4

    @property
    def architecture(self) -> str:
        return AMBISONICS_ARCHITECTURE if self.is_ambisonic else MONO_ARCHITECTURE

    @property
    def sequence(self) -> SequenceConfig:
        """The rates and lengths this architecture implies."""
        return SequenceConfig(self.clip_frame_rate, self.dac_sample_rate, self.max_source_length)

    # -- official JSON -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "config") -> VisageConfig:
        """Build from an official config dict; unknown keys are kept in ``extra``.

        Raises:
            ValueError: if the dict is not a ViSAGe config (names the source and the problem).
        """
        typed = {
            f.name for f in dataclasses.fields(cls) if f.init and f.name not in ("extra", "num_channels")
        }
        architectures = data.get("architectures") or [AMBISONICS_ARCHITECTURE]
        if AMBISONICS_ARCHITECTURE in architectures:
            num_channels = 4
        elif MONO_ARCHITECTURE in architectures:
            num_channels = 1
        else:
            raise ValueError(
                f"{source}: architectures {architectures} is not a ViSAGe model "
                f"(expected {AMBISONICS_ARCHITECTURE} or {MONO_ARCHITECTURE})"
            )
        if "num_rvq" not in data or "d_clip" not in data:
            raise ValueError(f"{source}: missing ViSAGe fields num_rvq/d_clip; not a ViSAGe config")
        kwargs = {k: v for k, v in data.items() if k in typed}
        extra = {
            k: v
            for k, v in data.items()
            if k not in typed and k not in _DERIVED_FIELDS and k != "architectures"
        }
        try:
            return cls(**kwargs, num_channels=num_channels, extra=extra)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """The official ``config.json`` content (sorted keys, as transformers writes them)."""
        out: dict[str, Any] = dict(self.extra)
        for f in dataclasses.fields(self):
            if f.init and f.name not in ("extra", "num_channels"):
                out[f.name] = getattr(self, f.name)
        out["architectures"] = [self.architecture]
        seq = self.sequence
        out["dac_downsample_rate"] = seq.hop_length
        out["dac_frame_rate"] = seq.codec_frame_rate
        out["num_hidden_layers"] = self.encoder_layers  # BartConfig's alias
        return dict(sorted(out.items()))

    @classmethod
    def from_json_file(cls, path: str | Path) -> VisageConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: config.json not found") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    # -- presets -------------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str) -> VisageConfig:
        """A named architecture: ``released`` (ambisonics), ``released-mono`` or ``tiny``."""
        try:
            kwargs = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
        return cls(**kwargs)


PRESETS: dict[str, dict[str, Any]] = {
    "released": {},
    "released-mono": {"num_channels": 1},
    # The architecture of ../shared/parity/tiny: real vocab, lengths and rates, tiny widths.
    "tiny": {
        "d_model": 16,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 32,
        "decoder_ffn_dim": 32,
    },
}
