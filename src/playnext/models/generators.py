"""Config names → generator classes: the one place a generator is chosen (and ALS's trainer with it)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from playnext.models.base import CandidateModel
from playnext.models.blend import Blend
from playnext.models.content import ContentSimilarity
from playnext.models.factorization import ALS, SparkALS
from playnext.models.item_item import EASE, Cooccurrence, RP3Beta
from playnext.models.popularity import Popularity
from playnext.models.sequence import SASRec

GENERATORS: dict[str, type[CandidateModel]] = {
    cls.name: cls for cls in (ALS, EASE, RP3Beta, Cooccurrence, Popularity, ContentSimilarity, SASRec, Blend)
}
# Named variants: the same class with different parameters, usable as separate generators.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "trending": ("popularity", {"trending": True}),
    "popularity_country": ("popularity", {"segment": "country"}),
    "popularity_genre": ("popularity", {"segment": "genre"}),
}


class UnknownGenerator(ValueError):
    pass


def names() -> list[str]:
    return sorted(set(GENERATORS) - {"blend"} | set(PRESETS))


def with_index(model: CandidateModel, n_items: int, min_items: int, ef: int) -> CandidateModel:
    """Vector models over a large catalog answer ``recommend`` through a voyager index."""
    from playnext.index.ann import AnnIndexed
    from playnext.models.factorization import VectorModel

    if isinstance(model, VectorModel) and n_items >= min_items:
        return AnnIndexed(model, ef=ef).build()
    return model


def build_generator(
    name: str, params: dict[str, Any] | None = None, *, engine: str = "duckdb", spark_master: str = "local[*]"
) -> CandidateModel:
    base, preset = PRESETS.get(name, (name, {}))
    cls = GENERATORS.get(base)
    if cls is None or base == "blend":
        raise UnknownGenerator(f"unknown generator {name!r}; choose from {', '.join(names())}")
    merged = {**preset, **(params or {})}
    _check_types(name, cls, merged)
    try:
        if cls is ALS and engine == "spark":
            return SparkALS(master=spark_master, **merged)
        return cls(**merged)
    except TypeError as exc:
        raise UnknownGenerator(f"bad parameters for generator {name!r}: {exc}") from None


def _check_types(name: str, cls: type[CandidateModel], params: dict[str, Any]) -> None:
    """Parameters from a TOML file or the environment are checked against the constructor's defaults here,
    so a typo'd value is a clear error before training, not a traceback from deep inside a library."""
    signature = inspect.signature(cls.__init__)
    for key, value in params.items():
        param = signature.parameters.get(key)
        if param is None or param.default is inspect.Parameter.empty or param.default is None:
            continue  # unknown names are reported by the constructor call itself
        expected = type(param.default)
        ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
        ok |= expected is float and isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise UnknownGenerator(
                f"parameter {key!r} of generator {name!r} must be {expected.__name__}, not {value!r}"
            )


def load_generator(path: Path) -> CandidateModel:
    from playnext.index.ann import AnnIndexed

    meta = json.loads((path / "params.json").read_text())
    cls = {**GENERATORS, AnnIndexed.name: AnnIndexed}.get(meta.get("name"))
    if cls is None:
        raise UnknownGenerator(f"{path} holds an unknown model {meta.get('name')!r}")
    return cls.load(path)
