"""udf.hmm_* and python_udfs/tf_hmm.py against hmmlearn 0.3.3 GaussianHMM(covariance_type='diag')
(G3), in pure Python and through SQL."""

from __future__ import annotations

import json
import logging
from functools import cache

import numpy as np
import psycopg
import pytest
import tf_hmm
from hmmlearn import _hmmc
from hmmlearn.hmm import GaussianHMM
from scipy.special import logsumexp

from tests.kernels.cases import signals
from tests.kernels.conftest import assert_close, assert_sql_error

TOLERANCE = 1e-8  # posteriors, filtered probabilities, log-likelihoods (relative, absolute below 1)
EM_TOLERANCE = 1e-10  # one EM step
FIT_TOLERANCE = 1e-6  # a whole fit: up to 100 EM steps of rounding apart

logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # "degenerate solution" notes on tiny x


def regimes(k: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, true states): a Markov chain staying put with probability 0.97, clearly separated
    Gaussian regimes (means -1.5, 1.5 or -2, 0, 2.5)."""
    rng = np.random.default_rng(seed)
    means = np.array([-1.5, 1.5]) if k == 2 else np.array([-2.0, 0.0, 2.5])
    sds = np.array([0.3, 0.5, 0.4])[:k]
    transmat = np.full((k, k), 0.03 / (k - 1))
    np.fill_diagonal(transmat, 0.97)
    states = [0]
    for _ in range(n - 1):
        states.append(int(rng.choice(k, p=transmat[states[-1]])))
    path = np.array(states)
    return means[path] + sds[path] * rng.normal(size=n), path


@cache
def series() -> dict[str, np.ndarray]:
    out = {name: x for name, x in signals().items() if name != "with_nan"}
    out["regimes2"] = regimes(2, 600, 0)[0]
    out["regimes3"] = regimes(3, 600, 3)[0]
    # one sample only an unlikely state explains: the scaled pass underflows under "poor2"
    # and the kernel falls back to log space
    out["far"] = np.array([-80.0, -79.0, -3.0, 3.0, 50.0, 0.0])
    return out


# deliberately poor parameters: zero start and transition probabilities, an absorbing state,
# means far from most of the data, tiny and huge variances; "tied" makes every comparison in
# the Viterbi recursion a tie
FIXED = {
    "poor2": {
        "startprob": [0.0, 1.0],
        "transmat": [[1.0, 0.0], [0.5, 0.5]],
        "means": [-3.0, 3.0],
        "variances": [0.5, 0.5],
    },
    "poor3": {
        "startprob": [0.98, 0.01, 0.01],
        "transmat": [[0.9, 0.05, 0.05], [0.3, 0.4, 0.3], [0.01, 0.01, 0.98]],
        "means": [10.0, -4.0, 0.5],
        "variances": [0.05, 9.0, 0.001],
    },
    "tied": {
        "startprob": [0.5, 0.5],
        "transmat": [[0.5, 0.5], [0.5, 0.5]],
        "means": [0.0, 0.0],
        "variances": [1.0, 1.0],
    },
}


@cache
def fitted(case: str, k: int) -> dict:
    return tf_hmm.hmm_fit(series()[case].tolist(), k)


def params_for(case: str, label: str) -> dict:
    if label.startswith("fitted"):
        return fitted(case, int(label[-1]))
    return FIXED[label]


CASES = [
    (case, label)
    for case, x in series().items()
    for label in [*FIXED, "fitted2", "fitted3"]
    if not (label.startswith("fitted") and len(x) < max(2, int(label[-1])))
]


def reference(params: dict) -> GaussianHMM:
    """hmmlearn's model with exactly these parameters; its fit() runs one EM step from them."""
    k = len(params["startprob"])
    model = GaussianHMM(
        n_components=k, covariance_type="diag", n_iter=1, init_params="", params="stmc"
    )
    model.startprob_ = np.array(params["startprob"], dtype=float)
    model.transmat_ = np.array(params["transmat"], dtype=float)
    model.means_ = np.array(params["means"], dtype=float)[:, None]
    model.covars_ = np.array(params["variances"], dtype=float)[:, None]
    return model


def reference_filtered(x: np.ndarray, params: dict) -> np.ndarray:
    """P(s_t | x_0..x_t) from hmmlearn's log-space forward lattice, each row normalised."""
    model = reference(params)
    _, lattice = _hmmc.forward_log(
        model.startprob_, model.transmat_, model._compute_log_likelihood(x[:, None])
    )
    return np.exp(lattice - logsumexp(lattice, axis=1, keepdims=True))


def check_inference(
    x: np.ndarray, params: dict, posteriors: object, filtered: object, path: object
) -> None:
    model = reference(params)
    assert_close(posteriors, model.predict_proba(x[:, None]), TOLERANCE)
    assert_close(filtered, reference_filtered(x, params), TOLERANCE)
    assert np.array_equal(np.asarray(path), model.decode(x[:, None], algorithm="viterbi")[1])


# --- inference: posteriors, filtered probabilities, Viterbi --------------------------------------


@pytest.mark.parametrize(("case", "label"), CASES)
def test_python_inference_equals_hmmlearn(case: str, label: str) -> None:
    x = series()[case]
    params = params_for(case, label)
    check_inference(
        x,
        params,
        tf_hmm.hmm_posteriors(x.tolist(), params),
        tf_hmm.hmm_filtered(x.tolist(), params),
        tf_hmm.hmm_viterbi(x.tolist(), params),
    )
    assert_close(
        tf_hmm.hmm_loglik(x.tolist(), params), reference(params).score(x[:, None]), TOLERANCE
    )


@pytest.mark.parametrize(("case", "label"), CASES)
def test_sql_inference_equals_hmmlearn(conn: psycopg.Connection, case: str, label: str) -> None:
    x = series()[case]
    params = params_for(case, label)
    row = conn.execute(
        "select udf.hmm_posteriors(x, p), udf.hmm_filtered(x, p), udf.hmm_viterbi(x, p)"
        " from (select %s::float8[] as x, %s::jsonb as p) as args",
        (x.tolist(), json.dumps(params)),
    ).fetchone()
    assert row is not None
    check_inference(x, params, *row)


def test_viterbi_ties_follow_hmmlearn() -> None:
    # everything ties: the last state is the lowest index, every earlier one the highest
    x = [0.3, -1.0, 2.0, 0.0]
    assert tf_hmm.hmm_viterbi(x, FIXED["tied"]).tolist() == [1, 1, 1, 0]
    three = {
        "startprob": [0.2, 0.4, 0.4],
        "transmat": [[0.2, 0.4, 0.4]] * 3,
        "means": [0.0, 0.0, 0.0],
        "variances": [1.0, 1.0, 1.0],
    }
    assert tf_hmm.hmm_viterbi(x, three).tolist() == [2, 2, 2, 1]
    assert (
        tf_hmm.hmm_viterbi(x, three).tolist()
        == reference(three).decode([[v] for v in x])[1].tolist()
    )


def test_filtered_is_causal() -> None:
    x = series()["regimes3"]
    params = fitted("regimes3", 3)
    whole = tf_hmm.hmm_filtered(x.tolist(), params)
    for t in (0, 1, 17, 300, len(x) - 1):
        assert_close(tf_hmm.hmm_filtered(x[: t + 1].tolist(), params)[-1], whole[t], 1e-12)


@pytest.mark.parametrize("label", ["poor3", "fitted3"])
def test_log_space_pass_equals_scaled_pass(label: str) -> None:
    x = tf_hmm.as_series(series()["regimes3"])
    model = tf_hmm.as_params(params_for("regimes3", label))
    logb = tf_hmm.log_emission(x, model)
    scaled = tf_hmm._scaled(model, logb, smooth=True)
    with np.errstate(divide="ignore", under="ignore"):
        logspace = tf_hmm._log_space(model, logb, smooth=True)
    for key in ("filtered", "gamma", "xi_sum", "loglik"):
        assert_close(getattr(scaled, key), getattr(logspace, key), 1e-10)


@pytest.mark.parametrize("case", ["far", "regimes2"])
def test_underflow_takes_the_log_space_pass(case: str) -> None:
    """Under "poor2" (state 0 absorbing, state 1 left only for 0) a sample far from both
    means ("far"), or a long stretch near -1.5 before samples near 1.5 ("regimes2"), leaves
    state 1 with less mass than floating point holds; the scaled pass would lose it for good
    (hmmlearn's implementation='scaling' does: it scores regimes2 -8965, its default log
    space -4444). test_python_inference_equals_hmmlearn checks the results."""
    x = tf_hmm.as_series(series()[case])
    model = tf_hmm.as_params(FIXED["poor2"])
    with pytest.raises(tf_hmm._Underflow), np.errstate(all="raise", under="ignore"):
        tf_hmm._scaled(model, tf_hmm.log_emission(x, model), smooth=True)


# --- EM ------------------------------------------------------------------------------------------

EM_CASES = [
    (case, label)
    for case, label in CASES
    if len(series()[case]) >= max(2, len(params_for(case, label)["startprob"]))
]


@pytest.mark.parametrize(("case", "label"), EM_CASES)
def test_em_step_equals_hmmlearn(case: str, label: str) -> None:
    x = series()[case]
    params = params_for(case, label)
    got = tf_hmm.em_step(x.tolist(), params)
    with np.errstate(invalid="ignore"):  # hmmlearn's 0/0 mean of a state no sample reaches
        model = reference(params).fit(x[:, None])
    transmat = model.transmat_.copy()
    means = model.means_[:, 0].copy()
    variances = model.covars_[:, 0, 0].copy()
    # a state with no weight before the last sample: hmmlearn leaves its row zero; one with
    # no weight at all: hmmlearn's mean and variance are NaN. The kernel keeps the row and the
    # mean it had, and its variance is hmmlearn's formula with that mean (ENGINE CONVENTION)
    dead = transmat.sum(axis=1) == 0
    transmat[dead] = np.array(params["transmat"])[dead]
    unreached = np.isnan(means)
    means[unreached] = np.array(params["means"])[unreached]
    variances[unreached] = tf_hmm.COVARS_PRIOR / 1e-5
    assert_close(got["startprob"], model.startprob_, EM_TOLERANCE)
    assert_close(got["transmat"], transmat, EM_TOLERANCE)
    assert_close(got["means"], means, EM_TOLERANCE)
    assert_close(got["variances"], variances, EM_TOLERANCE)
    assert_close(got["loglik_before"], model.monitor_.history[0], EM_TOLERANCE)


def test_em_step_keeps_a_dead_states_row() -> None:
    got = tf_hmm.em_step([1.0, -2.0], FIXED["poor2"])
    assert reference(FIXED["poor2"]).fit([[1.0], [-2.0]]).transmat_[0].tolist() == [0.0, 0.0]
    assert got["transmat"][0] == [1.0, 0.0]


FIT_CASES = [
    (case, k)
    for case in ("seven", "trend", "noise", "cycles", "long", "regimes2", "regimes3")
    for k in (2, 3)
]


def sorted_by_mean(model: GaussianHMM) -> dict:
    order = np.argsort(model.means_[:, 0], kind="stable")
    return {
        "startprob": model.startprob_[order],
        "transmat": model.transmat_[np.ix_(order, order)],
        "means": model.means_[order, 0],
        "variances": model.covars_[order, 0, 0],
    }


@pytest.mark.parametrize(("case", "k"), FIT_CASES)
def test_fit_is_hmmlearns_fit_from_the_same_start(case: str, k: int) -> None:
    """hmmlearn fitted from tf_hmm's initial parameters stops at the same iteration with the
    same monitored log-likelihoods and the same parameters (states sorted by mean)."""
    x = series()[case]
    got = tf_hmm.hmm_fit(x.tolist(), k, 100, 0)
    start = tf_hmm.initial_params(x.tolist(), k, 0)
    model = reference(start)
    model.n_iter = model.monitor_.n_iter = 100
    model.fit(x[:, None])
    assert got["n_iter"] == model.monitor_.iter
    assert_close(got["history"], list(model.monitor_.history), TOLERANCE)
    for key, want in sorted_by_mean(model).items():
        assert_close(got[key], want, FIT_TOLERANCE)
    assert_close(got["loglik"], model.score(x[:, None]), TOLERANCE)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_initialisation_is_hmmlearns(k: int, seed: int) -> None:
    """startprob and transmat are hmmlearn's own draws for random_state=seed, the variances
    its np.cov + min_covar; the k-means centres equal scikit-learn's on three regimes for up
    to 3 clusters (up to KMeans' arbitrary label order; with 4, the two split a regime
    differently)."""
    x = regimes(3, 600, 3)[0]
    got = tf_hmm.initial_params(x.tolist(), k, seed)
    model = GaussianHMM(n_components=k, random_state=seed)
    model._init(x[:, None])
    assert got["startprob"] == model.startprob_.tolist()
    assert got["transmat"] == model.transmat_.tolist()
    assert_close(got["variances"], model.covars_[:, 0, 0], 1e-15)
    if k <= 3:
        assert_close(got["means"], np.sort(model.means_[:, 0]), 1e-12)


# K = 3 often merges two regimes from some seeds, in hmmlearn as here: its Dirichlet(1/K)
# transition matrices start far from any regime structure. These seeds recover the regimes.
SEPARATED = [(2, 0, 0), (2, 1, 0), (2, 4, 1), (3, 3, 2), (3, 2, 2)]


@pytest.mark.parametrize(("k", "data_seed", "seed"), SEPARATED)
def test_fit_on_separated_regimes_finds_hmmlearns_means(k: int, data_seed: int, seed: int) -> None:
    x, truth = regimes(k, 600, data_seed)
    got = tf_hmm.hmm_fit(x.tolist(), k, 100, seed)
    model = GaussianHMM(n_components=k, n_iter=100, random_state=seed).fit(x[:, None])
    assert_close(got["means"], np.sort(model.means_[:, 0]), 1e-4)
    true_means = [-1.5, 1.5] if k == 2 else [-2.0, 0.0, 2.5]
    assert np.all(np.abs(np.array(got["means"]) - true_means) < 0.1)
    assert np.mean(tf_hmm.hmm_viterbi(x.tolist(), got) == truth) > 0.97


@pytest.mark.parametrize("case", ["seven", "trend", "noise", "cycles", "regimes2", "regimes3"])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_em_never_lowers_the_penalised_likelihood(case: str, k: int) -> None:
    """EM with hmmlearn's variance prior maximises ln L - sum_k 1e-2 / (2 var_k): that rises
    every step. ln L alone may fall a little (by less than the prior term rises; hmmlearn
    logs "Model is not converging" then). hmm_fit's history is the log-likelihood of the
    parameters before each M-step."""
    x = series()[case].tolist()
    params = tf_hmm.initial_params(x, k, 0)
    logliks, objective = [], []
    for _ in range(30):
        step = tf_hmm.em_step(x, params)
        logliks.append(step["loglik_before"])
        objective.append(step["loglik_before"] - np.sum(1e-2 / (2 * np.array(params["variances"]))))
        params = step
    assert np.all(np.diff(objective) >= -1e-12 * np.abs(objective[1:]))
    fit = tf_hmm.hmm_fit(x, k, 30, 0)
    assert_close(fit["history"], logliks[: fit["n_iter"]], 1e-12)


def test_fit_is_deterministic_and_sorted_by_mean() -> None:
    x = series()["noise"].tolist()
    first = tf_hmm.hmm_fit(x, 3, 100, 5)
    assert first == tf_hmm.hmm_fit(x, 3, 100, 5)
    assert first != tf_hmm.hmm_fit(x, 3, 100, 6)
    assert first["means"] == sorted(first["means"])
    assert set(first) == {*tf_hmm.KEYS, "loglik", "n_iter", "converged", "history"}
    assert first["converged"] == (first["history"][-1] - first["history"][-2] < tf_hmm.TOL)


@pytest.mark.parametrize(
    ("case", "k"), [("regimes2", 2), ("regimes3", 3), ("noise", 3), ("long", 2), ("two", 2)]
)
def test_sql_fit_equals_python(conn: psycopg.Connection, case: str, k: int) -> None:
    x = series()[case]
    row = conn.execute("select udf.hmm_fit(%s::float8[], %s)", (x.tolist(), k)).fetchone()
    assert row is not None
    got, want = row[0], tf_hmm.hmm_fit(x.tolist(), k)
    assert got["n_iter"] == want["n_iter"]
    assert got["converged"] == want["converged"]
    for key in (*tf_hmm.KEYS, "history"):
        assert_close(got[key], want[key], FIT_TOLERANCE)
    assert got["means"] == sorted(got["means"])
    assert_close(got["loglik"], reference(got).score(x[:, None]), TOLERANCE)


def test_sql_fit_on_constant_x(conn: psycopg.Connection) -> None:
    """Every state fits the constant: the means tie up to rounding, so their order (and the
    labels) may differ between the server's numpy and the tests'."""
    x = series()["constant"]
    row = conn.execute("select udf.hmm_fit(%s::float8[], 3)", (x.tolist(),)).fetchone()
    assert row is not None
    got = row[0]
    assert_close(got["means"], [3.5, 3.5, 3.5], 1e-12)
    assert got["means"] == sorted(got["means"])
    assert_close(got["loglik"], reference(got).score(x[:, None]), TOLERANCE)
    assert_close(got["loglik"], tf_hmm.hmm_fit(x.tolist(), 3)["loglik"], TOLERANCE)


def test_sql_fit_defaults_and_null(conn: psycopg.Connection) -> None:
    x = series()["regimes3"].tolist()
    row = conn.execute(
        "select udf.hmm_fit(%s::float8[]) = udf.hmm_fit(%s::float8[], 3, 100, 0),"
        " udf.hmm_fit(null), udf.hmm_viterbi(null, '{}'::jsonb)",
        (x, x),
    ).fetchone()
    assert row == (True, None, None)


# --- errors --------------------------------------------------------------------------------------

GOOD = json.dumps(FIXED["poor2"])


def bad(**changes: object) -> str:
    return json.dumps({**FIXED["poor2"], **changes})


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("udf.hmm_fit('{}'::float8[])", "udf.hmm_fit: x is empty"),
        ("udf.hmm_fit('{1,NULL,3}'::float8[])", "udf.hmm_fit: x has a NULL element at position 2"),
        ("udf.hmm_fit('{1,NaN,3}'::float8[])", "udf.hmm_fit: x has a NaN at position 2"),
        (
            "udf.hmm_fit('{1,Infinity,3}'::float8[])",
            "udf.hmm_fit: x has an infinite value at position 2",
        ),
        ("udf.hmm_fit('{{1,2},{3,4}}'::float8[])", "udf.hmm_fit: x must be one-dimensional"),
        (
            "udf.hmm_fit('{1,2}'::float8[])",
            "udf.hmm_fit: x is too short: n_states 3 needs at least 3 samples, got 2",
        ),
        (
            "udf.hmm_fit('{1}'::float8[], 1)",
            "udf.hmm_fit: x is too short: n_states 1 needs at least 2 samples, got 1",
        ),
        ("udf.hmm_fit('{1,2,3}'::float8[], 0)", "udf.hmm_fit: n_states must be >= 1, got 0"),
        ("udf.hmm_fit('{1,2,3}'::float8[], 2, -1)", "udf.hmm_fit: n_iter must be >= 0, got -1"),
        ("udf.hmm_fit('{1,2,3}'::float8[], 2, 10, -1)", "udf.hmm_fit: seed must be >= 0, got -1"),
        (f"udf.hmm_posteriors('{{}}'::float8[], '{GOOD}')", "udf.hmm_posteriors: x is empty"),
        (
            f"udf.hmm_filtered('{{1,NaN}}'::float8[], '{GOOD}')",
            "udf.hmm_filtered: x has a NaN at position 2",
        ),
        (
            f"udf.hmm_viterbi('{{1,NULL}}'::float8[], '{GOOD}')",
            "udf.hmm_viterbi: x has a NULL element at position 2",
        ),
        (
            "udf.hmm_posteriors('{1,2}'::float8[], '[1, 2]')",
            "udf.hmm_posteriors: params must be an object with startprob, transmat, means,"
            " variances",
        ),
        (
            "udf.hmm_posteriors('{1,2}'::float8[],"
            ' \'{"startprob": [1], "transmat": [[1]], "means": [0]}\')',
            "udf.hmm_posteriors: params has no variances",
        ),
        (
            f"udf.hmm_posteriors('{{1,2}}'::float8[], '{bad(startprob=[])}')",
            "udf.hmm_posteriors: params.startprob must be a non-empty list (one entry per state)",
        ),
        (
            f"udf.hmm_posteriors('{{1,2}}'::float8[], '{bad(transmat=[[1.0, 0.0]])}')",
            "udf.hmm_posteriors: params.transmat must be 2 x 2 (startprob has 2 states)",
        ),
        (
            f"udf.hmm_viterbi('{{1,2}}'::float8[], '{bad(means=[1.0, 2.0, 3.0])}')",
            "udf.hmm_viterbi: params.means must be a list of 2 numbers (one per state)",
        ),
        (
            f"udf.hmm_filtered('{{1,2}}'::float8[], '{bad(variances=[[1.0], [1.0]])}')",
            "udf.hmm_filtered: params.variances must be a list of 2 numbers (one per state)",
        ),
        (
            f"udf.hmm_posteriors('{{1,2}}'::float8[], '{bad(transmat=[[1.0, 0.0], [0.5, 0.4]])}')",
            "udf.hmm_posteriors: params.transmat row 2 sums to 0.9, not 1",
        ),
        (
            f"udf.hmm_posteriors('{{1,2}}'::float8[], '{bad(startprob=[0.5, 0.6])}')",
            "udf.hmm_posteriors: params.startprob sums to 1.1, not 1",
        ),
        (
            f"udf.hmm_posteriors('{{1,2}}'::float8[], '{bad(startprob=[1.5, -0.5])}')",
            "udf.hmm_posteriors: params.startprob has a negative probability",
        ),
        (
            f"udf.hmm_viterbi('{{1,2}}'::float8[], '{bad(variances=[1.0, 0.0])}')",
            "udf.hmm_viterbi: params.variances must be positive",
        ),
        (
            f"udf.hmm_viterbi('{{1,2}}'::float8[], '{bad(variances=[1.0, -2.0])}')",
            "udf.hmm_viterbi: params.variances must be positive",
        ),
        (
            f"udf.hmm_filtered('{{1,2}}'::float8[], '{bad(means=[1.0, None])}')",
            "udf.hmm_filtered: params.means has a null element",
        ),
        (
            f"udf.hmm_filtered('{{1,2}}'::float8[], '{bad(means=[1.0, 'a'])}')",
            "udf.hmm_filtered: params.means has an element that is not a number",
        ),
        (
            f"udf.hmm_filtered('{{1,2}}'::float8[], '{bad(transmat=[[1.0, 0.0], [1.0]])}')",
            "udf.hmm_filtered: params.transmat is a ragged array",
        ),
    ],
)
def test_sql_errors_are_one_clear_line(conn: psycopg.Connection, call: str, message: str) -> None:
    assert_sql_error(conn, call, message)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (None, "params is NULL"),
        ("{not json", "params is not valid JSON"),
        (
            {**FIXED["poor2"], "means": [0.0, float("nan")]},
            "params.means has a NaN at position 2",
        ),
        (
            {**FIXED["poor2"], "means": [0.0, float("inf")]},
            "params.means has an infinite value at position 2",
        ),
        (
            {**FIXED["poor2"], "startprob": [True, False]},
            "params.startprob has an element that is not a number",
        ),
    ],
)
def test_python_params_errors(params: object, message: str) -> None:
    with pytest.raises(tf_hmm.InputError) as caught:
        tf_hmm.hmm_posteriors([1.0, 2.0], params)
    assert str(caught.value) == message


def test_em_step_needs_as_many_samples_as_states() -> None:
    with pytest.raises(tf_hmm.InputError, match="n_states 3 needs at least 3 samples, got 2"):
        tf_hmm.em_step([1.0, 2.0], FIXED["poor3"])
