"""Row provenance of pools: every row names its origin, the origins add up and match the policy."""

from __future__ import annotations

import polars as pl
import pytest

from ouroboros.policies import build_pool, source_name
from ouroboros.provenance import (
    REAL,
    SYNTHETIC,
    Origin,
    ProvenanceError,
    composition,
    origin_frame,
    synthetic_share,
    with_origin,
    without_origin,
)
from ouroboros.verdict import fingerprint


@pytest.fixture()
def sources(small_demo):
    real = small_demo.head(200)
    batches = [small_demo.slice(200 + 100 * j, 100) for j in range(3)]
    origins = {"real": Origin(REAL, fingerprint(real))} | {
        source_name(j): Origin(SYNTHETIC, fingerprint(b), "s", j) for j, b in enumerate(batches)}
    return real, batches, origins


@pytest.mark.parametrize("policy", ["replace", "accumulate", "anchor"])
def test_pool_origins_add_up_match_the_policy_and_point_at_the_rows(policy, sources):
    real, batches, origins = sources
    tables = {REAL: real} | {(SYNTHETIC, j): b for j, b in enumerate(batches)}
    for k in range(4):
        pool = build_pool(policy, k, real, batches[:k], lam=0.3, seed=4, origins=origins)
        assert pool.origin.height == pool.rows.height  # aligned by row
        assert "_origin" not in pool.rows.columns  # the generator never sees provenance
        parts = composition(pool.origin)
        assert sum(p["rows"] for p in parts) == pool.rows.height
        by_source = {("real" if p["origin"] == REAL else source_name(p["generation"])): p["rows"] for p in parts}
        assert {s: n for s, n in pool.composition.items() if n} == by_source
        expected_sources = {"replace": {"real"} if k == 0 else {f"gen_{k - 1}"},
                            "accumulate": {"real", *(f"gen_{j}" for j in range(k))},
                            "anchor": {"real"} if k == 0 else {"real", f"gen_{k - 1}"}}[policy]
        assert set(by_source) == expected_sources
        if policy == "anchor" and k:
            assert by_source["real"] == round(0.3 * 100)
        for p in parts:  # each origin names its table by fingerprint
            table = real if p["origin"] == REAL else batches[p["generation"]]
            assert p["fingerprint"] == fingerprint(table)
        # row i of the pool is row _origin_row of the table its origin names
        for i in (0, pool.rows.height // 2, pool.rows.height - 1):
            o = pool.origin.row(i, named=True)
            table = tables[REAL] if o["_origin"] == REAL else tables[(SYNTHETIC, o["_origin_generation"])]
            assert pool.rows.row(i) == table.row(o["_origin_row"])


def test_origin_columns_round_trip_and_refuse_a_clash(small_demo):
    batch = small_demo.head(30)
    origin = origin_frame(Origin(SYNTHETIC, "f" * 64, "s", 2), batch.height)
    tagged = with_origin(batch, origin)
    data, back = without_origin(tagged)
    assert data.equals(batch) and back.equals(origin)
    assert synthetic_share(back) == 1.0
    assert composition(back) == [{"origin": SYNTHETIC, "study": "s", "generation": 2, "fingerprint": "f" * 64,
                                  "rows": 30, "share": 1.0}]
    with pytest.raises(ProvenanceError, match=r"\['_origin'\] of the table use a name reserved"):
        with_origin(batch.with_columns(pl.lit(1).alias("_origin")), origin)
    with pytest.raises(ProvenanceError, match="29 origin rows for 30 data rows"):
        with_origin(batch, origin.head(29))
    with pytest.raises(ProvenanceError, match="carries no row provenance"):
        without_origin(batch)
