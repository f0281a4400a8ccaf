"""Codec specifications: one short string names the codec that made (and decodes) a dataset's codes.

``dac`` is the released 44.1-kHz DAC (downloaded on first use), ``dac:PATH`` DAC weights in a file (the
release file, or a tiny random one from ``codec.build_tiny_random_dac``), ``carrier`` or
``carrier:K:C`` the CPU stand-in of ``carrier_codec`` with K codebooks of C levels. The dataset builder
records the string in its manifest, so training can decode its sample audio with the same codec.
"""

from __future__ import annotations

from .codec import DacCodec, FoaCodec


def load_codec(spec: str, *, device: str = "cpu") -> FoaCodec:
    """The 4-channel codec a spec names.

    Raises:
        ValueError: an unknown spec.
        codec.CodecWeightsError, codec.CodecUnavailableError: DAC weights missing or DAC not importable.
    """
    kind, _, rest = spec.partition(":")
    if kind == "dac":
        return FoaCodec(DacCodec.load(rest or None, device=device))
    if kind == "carrier":
        from .carrier_codec import CarrierCodec

        if not rest:
            return FoaCodec(CarrierCodec())
        try:
            books, levels = (int(v) for v in rest.split(":"))
        except ValueError:
            raise ValueError(
                f"codec spec {spec!r}: expected carrier:CODEBOOKS:LEVELS, e.g. carrier:4:63"
            ) from None
        return FoaCodec(CarrierCodec(num_codebooks=books, cardinality=levels))
    raise ValueError(f"unknown codec spec {spec!r}; expected dac, dac:PATH, carrier or carrier:K:C")
