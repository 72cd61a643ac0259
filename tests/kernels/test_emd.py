"""udf.emd and python_udfs/tf_emd.py against PyEMD's EMD() with its defaults (G1)."""

from __future__ import annotations

import importlib
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
import tf_emd
from PyEMD import EMD
from tf_common import InputError

from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-10  # relative, absolute below 1 (issue 4)
MAX_IMFS = (-1, 1, 2, 3)
pyemd_module = importlib.import_module("PyEMD.EMD")


def reference(x: np.ndarray, max_imf: int = -1) -> np.ndarray:
    # check_imf divides by the sifted signal, which can hold exact zeros (plateaus, zero
    # input): numpy's divide/invalid warnings are expected there and would fail the run
    with np.errstate(divide="ignore", invalid="ignore"):
        return EMD()(np.asarray(x, dtype=float), max_imf=max_imf)


def walk_windows(seed: int, count: int = 3) -> list[np.ndarray]:
    """Trailing 256-sample windows of a Gaussian random walk."""
    walk = np.cumsum(np.random.default_rng(seed).normal(size=256 + 100 * count))
    return [walk[100 * i : 100 * i + 256] for i in range(count)]


def mid_prices(seed: int, n: int = 256) -> np.ndarray:
    """A mid-price-like series: bid on a 0.01 tick grid moving by -1/0/+1 ticks, a spread of 1
    or 2 ticks; long flat runs, so plateaus decide many of the extrema."""
    rng = np.random.default_rng(seed)
    bid = 100 + 0.01 * np.cumsum(rng.choice([-1, 0, 0, 0, 1], size=n))
    return bid + 0.01 * rng.choice([1, 1, 2], size=n) / 2


def cases() -> dict[str, np.ndarray]:
    out = {name: x for name, x in signals().items() if name not in ("one", "with_nan")}
    out.update(
        {
            "three": np.array([1.0, 3.0, 2.0]),
            "five_alternating": np.array([1.0, 2.0, 1.0, 2.0, 1.0]),
            "zeros": np.zeros(16),
            "ramp": np.arange(30.0),
            # found by search; test_cases_exercise_the_special_paths checks what they exercise
            "left_fallback": np.array([4.0, 4.0, 3.0, 1.0, 5.0, 2.0, 4.0, 1.0]),
            "both_fallbacks": np.array([1.0, 2.0, 4.0, 5.0, 0.0, 3.0, 2.0, 0.0]),
            "right_fallback": np.array([0.0, 4.0, 0.0, 4.0, 3.0, 3.0]),
            "three_point_spline": np.array([3.0, 2.0, 5.0, 2.0, 2.0, 0.0, 1.0, 4.0, 4.0]),
            "three_point_and_fallbacks": np.array([2.0, 2.0, 0.0, 0.0, 4.0, 2.0, 3.0, 5.0]),
            "max_iterations": np.array([1.0, 3.0, 3.0, 1.0, 1.0, 2.0, 4.0, 1.0, 4.0]),
            # a flat maximum at samples 1-2 (the reference ignores it), one at the start that
            # counts as a minimum (the slope before it is read from the end), runs of zeros
            "plateau_from_sample_1": np.array([0.0, 2.0, 2.0, 0.0, 1.0, -1.0, 1.0, 0.0, 2.0, 0.5]),
            "plateau_at_start": np.array([1.0, 1.0, 3.0, 0.0, 2.0, -1.0, 1.0, 0.0]),
            "zero_runs": np.array([0.0, 0.0, 1.0, -1.0, 0.0, 0.0, 0.0, 2.0, -2.0, 0.0, 1.0, 0.0]),
        }
    )
    for seed in (1, 2):
        for i, window in enumerate(walk_windows(seed)):
            out[f"walk_256_seed{seed}_{i}"] = window
    for seed in (1, 2, 3):
        out[f"mid_price_256_seed{seed}"] = mid_prices(seed)
    return out


CASES = [(name, m) for name in cases() for m in MAX_IMFS]


@pytest.fixture(scope="module")
def references() -> dict[tuple[str, int], np.ndarray]:
    """PyEMD's output for every case, computed once for the Python and the SQL tests."""
    return {(name, m): reference(x, m) for name, x in cases().items() for m in MAX_IMFS}


@pytest.mark.parametrize(("case", "max_imf"), CASES)
def test_python_equals_pyemd(
    references: dict[tuple[str, int], np.ndarray], case: str, max_imf: int
) -> None:
    x = cases()[case]
    got = tf_emd.emd(x.tolist(), max_imf)
    assert_close(got, references[(case, max_imf)], TOLERANCE)


def test_imfs_and_residue_are_pyemds_apart() -> None:
    # the hht family needs the residue apart from the IMFs: PyEMD's get_imfs_and_residue()
    for x in cases().values():
        decomposition = EMD()
        decomposition.emd(x)
        imfs, residue = decomposition.get_imfs_and_residue()
        got_imfs, got_residue = tf_emd.imfs_and_residue(x.tolist())
        assert_close(got_imfs, imfs, TOLERANCE)
        assert_close(got_residue, residue, TOLERANCE)


def test_python_is_bitwise_pyemd(references: dict[tuple[str, int], np.ndarray]) -> None:
    # on the same numpy and scipy the kernel does the reference's arithmetic: the difference
    # is 0.0, as G1 says of a reimplementation (the database's older scipy agrees to 1e-10)
    for name, x in cases().items():
        np.testing.assert_array_equal(tf_emd.emd(x.tolist()), references[(name, -1)])


@pytest.mark.parametrize(("case", "max_imf"), CASES)
def test_sql_equals_pyemd(
    conn: psycopg.Connection,
    references: dict[tuple[str, int], np.ndarray],
    case: str,
    max_imf: int,
) -> None:
    x = cases()[case]
    row = conn.execute(
        "select udf.emd(%s::float8[], %s)", ([float(v) for v in x], max_imf)
    ).fetchone()
    assert row is not None
    # no rows (all-zero input) comes back as the empty array '{}'
    got = np.array(row[0], dtype=float).reshape(-1, len(x))
    assert_close(got, references[(case, max_imf)], TOLERANCE)


def test_sql_default_max_imf_is_no_limit(conn: psycopg.Connection) -> None:
    x = walk_windows(3, 1)[0]
    row = conn.execute("select udf.emd(%s::float8[])", (x.tolist(),)).fetchone()
    assert row is not None
    assert_close(np.array(row[0]), reference(x), TOLERANCE)


def test_rows() -> None:
    x = signals()["cycles"]
    imfs = tf_emd.emd(x.tolist())
    assert imfs.shape[0] >= 3
    np.testing.assert_allclose(imfs.sum(axis=0), x, atol=1e-9)  # IMFs + residue = x
    assert tf_emd.emd(x.tolist(), 2).shape[0] == 3  # 2 IMFs and the residue
    assert tf_emd.emd(np.zeros(8)).shape == (0, 8)  # residue 0: no row at all
    np.testing.assert_array_equal(tf_emd.emd([1.0, 2.0]), [[1.0, 2.0]])  # no extrema: x


class PathSpy:
    """Counts, over one run of the reference, the siftings whose mirroring falls back to the
    end sample at either end (decided here from G1's rule), and its 3-point spline calls."""

    def __init__(self) -> None:
        self.left = self.right = self.three_points = 0

    @staticmethod
    def left_falls_back(s: np.ndarray, imax: np.ndarray, imin: np.ndarray) -> bool:
        """G1: reflect about the first extremum, or about t = 0 with sample 0 as the other
        kind; fall back when the outermost reflected point of either kind is beyond t = 0."""
        if imax[0] < imin[0]:
            if s[0] > s[imin[0]]:
                axis, kmax, kmin = imax[0], imax[1:3], imin[:2]
            else:
                axis, kmax, kmin = 0, imax[:2], np.append(imin[:1], 0)
        elif s[0] < s[imax[0]]:
            axis, kmax, kmin = imin[0], imax[:2], imin[1:3]
        else:
            axis, kmax, kmin = 0, np.append(imax[:1], 0), imin[:2]
        kmax = kmax if len(kmax) else imax
        kmin = kmin if len(kmin) else imin
        return bool(min(2 * axis - kmax) > 0 or min(2 * axis - kmin) > 0)

    @classmethod
    def right_falls_back(cls, s: np.ndarray, imax: np.ndarray, imin: np.ndarray) -> bool:
        """The left rule on the time-reversed signal."""
        last = len(s) - 1
        return cls.left_falls_back(s[::-1], np.sort(last - imax), np.sort(last - imin))

    def run(self, monkeypatch: pytest.MonkeyPatch, x: np.ndarray) -> None:
        prepare = pyemd_module.EMD.prepare_points_simple
        three_points = pyemd_module.cubic_spline_3pts

        def spy_prepare(emd: EMD, t: np.ndarray, s: np.ndarray, *points: np.ndarray) -> object:
            imax, imin = points[0].astype(int), points[2].astype(int)
            self.left += self.left_falls_back(s, imax, imin)
            self.right += self.right_falls_back(s, imax, imin)
            return prepare(emd, t, s, *points)

        def spy_three_points(*args: np.ndarray) -> object:
            self.three_points += 1
            return three_points(*args)

        monkeypatch.setattr(pyemd_module.EMD, "prepare_points_simple", spy_prepare)
        monkeypatch.setattr(pyemd_module, "cubic_spline_3pts", spy_three_points)
        reference(x)


@pytest.mark.parametrize(
    ("case", "left", "right", "three_points"),
    [
        ("left_fallback", True, False, False),
        ("right_fallback", False, True, False),
        ("both_fallbacks", True, True, False),
        ("three_point_spline", False, False, True),
        ("three_point_and_fallbacks", True, True, True),
        ("max_iterations", True, False, False),
    ],
)
def test_cases_exercise_the_special_paths(
    monkeypatch: pytest.MonkeyPatch, case: str, left: bool, right: bool, three_points: bool
) -> None:
    spy = PathSpy()
    spy.run(monkeypatch, cases()[case])
    assert (spy.left > 0, spy.right > 0, spy.three_points > 0) == (left, right, three_points)


def test_max_iterations_case_sifts_999_times(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    extrema = tf_emd.extrema

    def counting(h: np.ndarray) -> object:
        nonlocal calls
        calls += 1
        return extrema(h)

    monkeypatch.setattr(tf_emd, "extrema", counting)
    tf_emd.emd(cases()["max_iterations"].tolist())
    assert calls >= tf_emd.MAX_ITERATION - 1


def plateau_extrema(x: np.ndarray) -> tuple[list[int], list[int]]:
    t = np.arange(len(x), dtype=float)
    found = EMD().find_extrema(t, x)
    return found[0].astype(int).tolist(), found[2].astype(int).tolist()


def test_plateau_quirks_are_the_references() -> None:
    # the flat maximum at samples 1-2 is not found; the run at 0-1 is a minimum at 0
    assert plateau_extrema(cases()["plateau_from_sample_1"]) == ([4, 6, 8], [3, 5, 7])
    assert plateau_extrema(cases()["plateau_at_start"]) == ([2, 4, 6], [0, 3, 5])
    for name in ("plateau_from_sample_1", "plateau_at_start"):
        imax, imin, _ = tf_emd.extrema(cases()[name])
        assert (imax.tolist(), imin.tolist()) == plateau_extrema(cases()[name])


@pytest.fixture()
def no_warnings() -> Iterator[None]:
    # the kernel itself never trips a floating-point warning
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        yield


@pytest.mark.usefixtures("no_warnings")
def test_kernel_raises_no_floating_point_error() -> None:
    for name in ("zeros", "zero_runs", "mid_price_256_seed1", "constant"):
        tf_emd.emd(cases()[name].tolist())


@pytest.mark.parametrize(
    ("x", "max_imf", "message"),
    [
        ([], -1, "x is empty"),
        ([1.0, None, 3.0], -1, "x has a NULL element at position 2"),
        ([1.5], -1, "x is too short: 1 value, need at least 2"),
        ([1.0, 2.0, float("nan"), 0.0], -1, "x has a NaN at position 3"),
        ([float("-inf"), 2.0, 1.0], -1, "x has an infinite value at position 1"),
        ([1.0, 2.0, 1.0], 0, "max_imf must be -1 (no limit) or at least 1, got 0"),
        ([1.0, 2.0, 1.0], -2, "max_imf must be -1 (no limit) or at least 1, got -2"),
        ([1.0, 2.0, 1.0], 1.5, "max_imf must be an integer, got 1.5"),
    ],
)
def test_python_errors(x: list, max_imf: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        tf_emd.emd(x, max_imf)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_sql_null_in_null_out(conn: psycopg.Connection) -> None:
    assert conn.execute("select udf.emd(null)").fetchone() == (None,)
    assert conn.execute("select udf.emd('{1,2,1}'::float8[], null)").fetchone() == (None,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.emd('{}'::float8[])", "udf.emd: x is empty"),
        ("udf.emd('{1,NULL,3}'::float8[])", "udf.emd: x has a NULL element at position 2"),
        ("udf.emd('{{1,2},{3,4}}'::float8[])", "udf.emd: x must be one-dimensional"),
        ("udf.emd('{1.5}'::float8[])", "udf.emd: x is too short: 1 value, need at least 2"),
        ("udf.emd('{1,2,NaN,0}'::float8[])", "udf.emd: x has a NaN at position 3"),
        ("udf.emd('{1,Infinity}'::float8[])", "udf.emd: x has an infinite value at position 2"),
        (
            "udf.emd('{1,2,1}'::float8[], 0)",
            "udf.emd: max_imf must be -1 (no limit) or at least 1, got 0",
        ),
        (
            "udf.emd('{1,2,1}'::float8[], -3)",
            "udf.emd: max_imf must be -1 (no limit) or at least 1, got -3",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)
