{#- GARCH(1,1) (C5) refitted on each trailing window of 1-second log returns, in percent as the
    engine convention says (y = 100 r); garch.yml defines every column. -#}
{{ config(pre_hook=refresh_begin('l2', after='mid_bars_1s'), post_hook=refresh_end()) }}
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

fitted as (
    select
        symbol,
        ts,
        y,
        udf.garch11_fit(y) as fit
    from returns
    offset 0  -- one fit per window
),

variances as (
    select
        fitted.*,
        udf.garch11_variance(y, fit) as variance,
        (fit ->> 'mu')::double precision as mu,
        (fit ->> 'omega')::double precision as omega,
        (fit ->> 'alpha')::double precision as alpha,
        (fit ->> 'beta')::double precision as beta
    from fitted
    offset 0
),

final as (
    select
        symbol,
        ts,
        -- one-step forecast sigma^2_(T+1) = omega + alpha eps_T^2 + beta sigma^2_T, in
        -- decimal return per 1-second bar
        sqrt(omega + alpha * power(y[cardinality(y)] - mu, 2) + beta * variance[cardinality(variance)])
        / 100 as garch_vol,
        mu / 100 as garch_mu,
        omega as garch_omega,
        alpha as garch_alpha,
        beta as garch_beta,
        alpha + beta as garch_persistence,
        (fit ->> 'loglik')::double precision as garch_loglik,
        (fit ->> 'converged')::boolean as garch_converged
    from variances
)

select * from final
