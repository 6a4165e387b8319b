"""The GraphiQL files kept in `static/`: where each comes from and its sha384.

The integrity values are the ones strawberry-graphql's bundled `graphiql.html` uses for the same
files on unpkg.com, so the page loads byte-for-byte what strawberry's page would. The files are
fetched with `npm pack` and checked by `scripts/fetch_graphiql_assets.py`, which loads this module
by path: keep it free of imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS_PATH = "/graphiql-assets"


@dataclass(frozen=True)
class Asset:
    file: str  # name in static/
    package: str  # npm name@version
    member: str  # path inside the package tarball
    integrity: str  # sha384-<base64>, as in a Subresource Integrity attribute
    kind: Literal["script", "style"]
    place: Literal["head", "body"]


@dataclass(frozen=True)
class Licence:
    file: str  # name in static/
    package: str  # npm name@version the text comes from
    member: str
    note: str = ""  # written above the licence text


GRAPHIQL = "graphiql@3.8.3"
EXPLORER = "@graphiql/plugin-explorer@1.0.2"

# In page order: styles, then the scripts GraphiQL's own script needs before it.
ASSETS: tuple[Asset, ...] = (
    Asset(
        "graphiql.min.css",
        GRAPHIQL,
        "package/graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
        "style",
        "head",
    ),
    Asset(
        "graphiql-plugin-explorer.css",
        EXPLORER,
        "package/dist/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
        "style",
        "head",
    ),
    Asset(
        "react.production.min.js",
        "react@18.2.0",
        "package/umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
        "script",
        "head",
    ),
    Asset(
        "react-dom.production.min.js",
        "react-dom@18.2.0",
        "package/umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
        "script",
        "head",
    ),
    Asset(
        "js.cookie.min.js",
        "js-cookie@3.0.5",
        "package/dist/js.cookie.min.js",
        "sha384-/vxhYfM1LENRhdpZ8dwEsQn/X4VhpbEZSiU4m/FwR+PVpzar4fkEOw8FP9Y+OfQN",
        "script",
        "head",
    ),
    Asset(
        "graphiql.min.js",
        GRAPHIQL,
        "package/graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
        "script",
        "body",
    ),
    Asset(
        "graphiql-plugin-explorer.umd.js",
        EXPLORER,
        "package/dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
        "script",
        "body",
    ),
)

LICENCES: tuple[Licence, ...] = (
    Licence("graphiql.LICENSE", GRAPHIQL, "package/LICENSE"),
    Licence("react.LICENSE", "react@18.2.0", "package/LICENSE"),
    Licence("react-dom.LICENSE", "react-dom@18.2.0", "package/LICENSE"),
    Licence("js-cookie.LICENSE", "js-cookie@3.0.5", "package/LICENSE"),
    Licence(
        "graphiql-plugin-explorer.LICENSE",
        GRAPHIQL,
        "package/LICENSE",
        note=(
            "@graphiql/plugin-explorer 1.0.2 is MIT licensed (its package.json) and ships no\n"
            "licence file; it comes from the graphql/graphiql repository, whose licence follows.\n"
            "Its UMD build bundles graphiql-explorer 0.9.0: see graphiql-explorer.LICENSE.\n\n"
        ),
    ),
    Licence("graphiql-explorer.LICENSE", "graphiql-explorer@0.9.0", "package/LICENSE"),
)
