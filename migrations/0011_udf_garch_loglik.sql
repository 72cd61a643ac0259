-- The GARCH(1,1) log-likelihood of r for given parameters, in the pattern of 0009: to score
-- parameters fitted on one window on another.

create function udf._garch11_loglik(r double precision[], params jsonb, out value double precision, out error text)
language plpython3u
immutable
strict
parallel safe
as $$
if "tf_call" not in GD:
    plpy.execute("select udf._kernel_loader()")
return GD["tf_call"]("tf_garch", "garch11_loglik", r, params)
$$;

create function udf.garch11_loglik(r double precision[], params jsonb)
returns double precision
language sql
immutable
strict
parallel safe
begin atomic
    select case when k.error is null then k.value else udf._fail('udf.garch11_loglik', k.error, k.value) end
    from udf._garch11_loglik(r, params) as k;
end;
comment on function udf.garch11_loglik(double precision[], jsonb) is
    'Gaussian log-likelihood of r under GARCH(1,1) params (mu, omega, alpha, beta), as arch_model(r).fix(params).loglikelihood (C5)';
