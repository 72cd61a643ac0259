-- udf.ewm_means(seed, x, alpha): 0007's aggregate started from a saved state. An incremental
-- refresh of the flow family's EMAs (models/l2/flow_ewm_state.sql) passes the state a full
-- build reached at the row before its first new one and continues from there: the same
-- operations in the same order, so the same bits, where a warm-up long enough for span 300
-- to forget its start read 6,400 rows a symbol (0.23 of the 0.49 s a one-second refresh took).
-- The rule is 0007's, unchanged: element i (1..k) of the state is series i's mean, elements
-- k+1..2k its working weight; seeded with the first non-NULL value; after k NULL inputs the
-- next value x gives y = (w*y + a*x) / (w + a) with w = (1 - a)^(k + 1); pandas skips the
-- update when y = x. `seed` (NULL: none) is read on the first row only.
create function udf.ewm_means_step(
    state double precision[], seed double precision[], x double precision[], alpha double precision[]
)
returns double precision[]
language plpgsql
immutable
parallel safe
as $$
declare
    k int := cardinality(alpha);
    w double precision;
    y double precision;
begin
    if state is null then
        if seed is not null and cardinality(seed) <> 2 * k then
            raise exception 'udf.ewm_means: seed has % elements, expected % (means, then weights)',
                cardinality(seed), 2 * k
                using errcode = '22023';
        end if;
        state := coalesce(seed, array_fill(null::double precision, array[2 * k]));
    end if;
    for i in 1..k loop
        y := state[i];
        if y is null then
            if x[i] is not null then
                state[i] := x[i];
                state[k + i] := 1.0;
            end if;
        elsif x[i] is null then
            state[k + i] := state[k + i] * (1 - alpha[i]);
        elsif y = x[i] then
            state[k + i] := 1.0;
        else
            w := state[k + i] * (1 - alpha[i]);
            state[i] := (w * y + alpha[i] * x[i]) / (w + alpha[i]);
            state[k + i] := 1.0;
        end if;
    end loop;
    return state;
end
$$;

create aggregate udf.ewm_means(double precision[], double precision[], double precision[]) (
    sfunc = udf.ewm_means_step,
    stype = double precision[]
);

comment on aggregate udf.ewm_means(double precision[], double precision[], double precision[]) is
    'udf.ewm_means(seed, x, alpha): pandas ewm(alpha=a_i, adjust=False).mean() of each x_i as '
    'element i of the result, continued from seed (a state this aggregate returned, or NULL); '
    'elements k+1..2k are working state; use over rows unbounded preceding';

-- the unseeded form is the seeded one with no seed (one copy of the rule)
create or replace function udf.ewm_means_step(
    state double precision[], x double precision[], alpha double precision[]
)
returns double precision[]
language sql
immutable
parallel safe
as $$
    select udf.ewm_means_step(state, null::double precision[], x, alpha)
$$;

