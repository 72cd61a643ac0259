{#-
    GARCH(1,1) (C5) refitted on each trailing window of 1-second log returns in percent,
    y = 100 r (the engine convention); garch.yml defines every column.
    One-second returns in percent have a variance far below the range arch's optimiser is
    comfortable with ([0.1, 1e4), where arch warns and SLSQP stops early). So each window is
    fitted as y s with s the power of 10 that puts its standard deviation in [1, 10), as arch's
    rescale=True does, and the results are put back: mu / s, omega / s^2, loglik + n ln s
    (the density of y is s times that of s y); alpha and beta do not change, and nor would
    the variance path (the backcast and bounds scale with s^2). A window whose returns are all equal has no GARCH fit: its columns are NULL.
-#}
{{ config(pre_hook="{{ refresh_begin('l2', after='mid_bars_1s') }}", post_hook="{{ refresh_end() }}") }}
with

windows as (
    {{ heavy_windows(ref('mid_bars_1s')) }}
),

returns as (
    select
        symbol,
        ts,
        {{ window_log_returns('closes', 100) }} as y
    from windows
),

scaled as (
    select
        returns.symbol,
        returns.ts,
        returns.y,
        power(10::double precision, ceil(-log(sqrt(spread.variance)))) as s
    from returns
    cross join lateral (
        select var_samp(v) as variance from unnest(returns.y) as v
    ) as spread
    where spread.variance > 0
),

fitted as (
    select
        scaled.*,
        array(
            select scaled.s * u.v
            from unnest(scaled.y) with ordinality as u (v, i)
            order by u.i
        ) as ys
    from scaled
),

models as (
    select
        fitted.*,
        udf.garch11_fit(ys) as fit
    from fitted
    {{ evaluate_once(ordered=true) }}  -- one fit per window
),

variances as (
    select
        models.*,
        udf.garch11_variance(ys, fit) as variance,
        (fit ->> 'mu')::double precision as mu,
        (fit ->> 'omega')::double precision as omega,
        (fit ->> 'alpha')::double precision as alpha,
        (fit ->> 'beta')::double precision as beta
    from models
    {{ evaluate_once(ordered=true) }}
),

final as (
    select
        windows.symbol,
        windows.ts,
        -- one-step forecast sigma^2_(T+1) = omega + alpha eps_T^2 + beta sigma^2_T on the
        -- scaled returns, back to a decimal return per 1-second bar
        sqrt(
            v.omega + v.alpha * power(v.ys[cardinality(v.ys)] - v.mu, 2)
            + v.beta * v.variance[cardinality(v.variance)]
        ) / v.s / 100 as garch_vol,
        v.mu / v.s / 100 as garch_mu,
        v.omega / (v.s * v.s) as garch_omega,
        v.alpha as garch_alpha,
        v.beta as garch_beta,
        v.alpha + v.beta as garch_persistence,
        (v.fit ->> 'loglik')::double precision + cardinality(v.ys) * ln(v.s) as garch_loglik,
        (v.fit ->> 'converged')::boolean as garch_converged,
        v.s as garch_scale
    from windows
    left join variances as v on windows.symbol = v.symbol and windows.ts = v.ts
)

select * from final
