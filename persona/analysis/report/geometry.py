"""Vector geometry: cosine similarity between the persona vectors of the traits."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Geometry:
    """Cosine matrix (None when the section is skipped), the layer used and notes."""

    cosine: pd.DataFrame | None = None
    layer: int | None = None
    layers: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _slug_candidates(model: str) -> list[str]:
    name = model.split("+", 1)[0]
    tail = name.split("/", 1)[1] if "/" in name else name
    last = tail.rstrip("/").split("/")[-1]
    return [
        s.lower() for s in dict.fromkeys([tail.replace("/", "--"), tail.replace("/", "_"), last])
    ]


def vector_folder(root: Path, base: str) -> tuple[Path | None, str | None]:
    """The folder of vector files for ``base`` under ``root`` (or ``root`` itself)."""
    if not root.is_dir():
        return None, f"vector folder {root} does not exist"
    if any(root.glob("*.safetensors")):
        return root, None
    subs = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob("*.safetensors")))
    if len(subs) == 1:
        return subs[0], None
    for cand in _slug_candidates(base):
        for d in subs:
            if d.name.lower() == cand:
                return d, None
    if not subs:
        return None, f"no .safetensors vector files under {root}"
    names = ", ".join(d.name for d in subs)
    return None, f"several model folders under {root} ({names}) and none matches base {base}"


def vector_geometry(
    root: str | Path | None, base: str, traits: list[str] | None, log_layers: dict[str, int]
) -> Geometry:
    """Cosines of the ``response_avg`` persona vectors at one common layer.

    Each trait's layer is the vector file's chosen layer, else the layer its projections used in
    the logs; the matrix uses the most common of these and notes the traits chosen elsewhere.
    """
    if root is None:
        return Geometry(notes=["no --vectors folder given: vector geometry skipped"])
    folder, problem = vector_folder(Path(root), base)
    if folder is None:
        return Geometry(notes=[f"vector geometry skipped: {problem}"])
    from persona.model import vectors  # lazy: torch and safetensors only when needed

    files = sorted(folder.glob("*.safetensors"))
    if traits:
        files = [f for f in files if f.stem in traits]
    geo = Geometry()
    loaded = {}
    for f in files:
        try:
            vec = vectors.load_vector(f)
        except Exception as e:
            geo.notes.append(f"could not load {f}: {e}")
            continue
        name = str(vec.meta.get("trait") or f.stem)
        layer = vec.meta.get("layer")
        layer = int(layer) if layer not in (None, "") else log_layers.get(name)
        geo.layers[name] = layer
        loaded[name] = vec
    placed = {t: lay for t, lay in geo.layers.items() if lay is not None}
    for t in sorted(set(geo.layers) - set(placed)):
        geo.notes.append(f"{t}: no chosen layer in the vector file or the logs; left out")
    if len(placed) < 2:
        geo.notes.append("vector geometry needs at least two traits with a known layer")
        return geo
    geo.layer = Counter(placed.values()).most_common(1)[0][0]
    other = {t: lay for t, lay in placed.items() if lay != geo.layer}
    if other:
        listing = ", ".join(f"{t} (L{lay})" for t, lay in sorted(other.items()))
        geo.notes.append(f"all cosines are at layer {geo.layer}; chosen elsewhere: {listing}")
    names = sorted(placed)
    mat = pd.DataFrame(1.0, index=names, columns=names)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            c = vectors.cosine(loaded[a].at(geo.layer), loaded[b].at(geo.layer))
            mat.loc[a, b] = mat.loc[b, a] = float(c)
    geo.cosine = mat
    return geo
