"""`tickfeatures features list|show`: the feature registry, features.feature_catalog and the
version history in ops.feature_versions."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from datetime import datetime

from tickfeatures import db
from tickfeatures.errors import TickfeaturesError


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _ms(value: float | None) -> str:
    return f"{value:,.0f} ms" if value is not None else "-"


def _catalog_exists(conn: object) -> None:
    row = conn.execute("select to_regclass('features.feature_catalog')").fetchone()  # type: ignore[attr-defined]
    if not row or row[0] is None:
        raise TickfeaturesError(
            "features.feature_catalog does not exist: run `tickfeatures refresh`"
        )


def list_features(family: str | None = None, say: Callable[[str], None] = print) -> int:
    with db.connect() as conn:
        conn.execute("set timezone = 'UTC'")
        _catalog_exists(conn)
        rows = conn.execute(
            'select name, family, unit, "window", version, changed_at, last_refreshed'
            " from features.feature_catalog where %(family)s::text is null or family = %(family)s"
            " order by family, name",
            {"family": family},
        ).fetchall()
        if not rows and family:
            families = [
                f
                for (f,) in conn.execute(
                    "select distinct family from features.feature_catalog order by 1"
                )
            ]
            raise TickfeaturesError(f"no family {family!r}; families: {', '.join(families)}")
    say(f"{'name':34s} {'family':14s} {'version':8s} {'changed':19s}  unit / window")
    for name, fam, unit, window, version, changed, _refreshed in rows:
        say(f"{name:34s} {fam:14s} {version[:8]:8s} {_when(changed)[:19]:19s}  {unit} / {window}")
    say(f"{len(rows)} features")
    return 0


def show_feature(name: str, say: Callable[[str], None] = print) -> int:
    with db.connect() as conn:
        conn.execute("set timezone = 'UTC'")
        _catalog_exists(conn)
        row = conn.execute(
            'select name, family, model, definition, unit, "window", version, changed_at,'
            " upstream, last_refreshed, last_duration_ms, mean_duration_ms, model_version"
            " from features.feature_catalog where name = %s",
            (name,),
        ).fetchone()
        if row is None:
            names = [n for (n,) in conn.execute("select name from features.feature_catalog")]
            near = difflib.get_close_matches(name, names, n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise TickfeaturesError(f"no feature named {name!r}{hint}")
        history = conn.execute(
            "select version, model_version, first_seen, definition from ops.feature_versions"
            " where name = %s order by first_seen, version",
            (name,),
        ).fetchall()
    (name, family, model, definition, unit, window, version, changed, upstream, refreshed,
     last_ms, mean_ms, model_version) = row  # fmt: skip
    say(name)
    say(f"  definition      {definition}")
    say(f"  unit            {unit}")
    say(f"  window          {window}")
    say(f"  family, model   {family}, features.{model}")
    say(f"  version         {version} (model {model_version}), since {_when(changed)}")
    say(f"  lineage         features.{model} reads {', '.join(upstream) or 'nothing'}")
    say(
        f"  calculation     last refreshed {_when(refreshed)}, {_ms(last_ms)};"
        f" mean of the last 100 refreshes {_ms(mean_ms)}"
    )
    say(f"  versions        {len(history)}")
    for old_version, old_model, first_seen, old_definition in history:
        current = "  (current)" if old_version == version else ""
        say(f"    {_when(first_seen)}  {old_version[:12]} model {old_model[:12]}{current}")
        if old_definition != definition:
            say(f"      definition then: {old_definition}")
    return 0
