-- Exponentially weighted means as pandas computes `ewm(alpha=a, adjust=False).mean()` with
-- its default NaN handling (ignore_na=False), several series at once, as a window aggregate
-- over `rows between unbounded preceding and current row`. For each series:
--   seeded with the first non-NULL value; after k NULL inputs (k = 0 normally) the next
--   value x gives y = (w*y + a*x) / (w + a) with w = (1 - a)^(k + 1): the old value's weight
--   keeps decaying across NULLs while the value is carried; pandas skips the update when
--   y = x. Checked against pandas 3.1 (which treats alpha = 0.5 differently: not used here).
-- One call per row for all series: one aggregate per series would cost one function call
-- per row each. Used by the flow family (FEATURE_DEFINITIONS section S, T13).
create schema if not exists udf;

create function udf.ewm_means_step(
    state double precision[], x double precision[], alpha double precision[]
)
returns double precision[]
language plpgsql
immutable
parallel safe
as $$
declare
    k int := array_length(alpha, 1);
    w double precision;
begin
    if state is null then
        state := array_fill(null::double precision, array[2 * k]);
    end if;
    for i in 1..k loop
        if state[2 * i - 1] is null then
            if x[i] is not null then
                state[2 * i - 1] := x[i];
                state[2 * i] := 1.0;
            end if;
        elsif x[i] is null then
            state[2 * i] := state[2 * i] * (1 - alpha[i]);
        elsif state[2 * i - 1] = x[i] then
            state[2 * i] := 1.0;
        else
            w := state[2 * i] * (1 - alpha[i]);
            state[2 * i - 1] := (w * state[2 * i - 1] + alpha[i] * x[i]) / (w + alpha[i]);
            state[2 * i] := 1.0;
        end if;
    end loop;
    return state;
end
$$;

create function udf.ewm_means_final(state double precision[])
returns double precision[]
language sql
immutable
parallel safe
as $$
    select array(select state[2 * i - 1] from generate_subscripts(state, 1) as i
                 where i <= array_length(state, 1) / 2 order by i)
$$;

create aggregate udf.ewm_means(double precision[], double precision[]) (
    sfunc = udf.ewm_means_step,
    stype = double precision[],
    finalfunc = udf.ewm_means_final
);

comment on aggregate udf.ewm_means(double precision[], double precision[]) is
    'pandas ewm(alpha=a_i, adjust=False).mean() of each x_i; use over rows unbounded preceding';
