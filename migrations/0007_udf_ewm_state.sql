-- udf.ewm_means without a final function. As a window aggregate its final function ran on
-- every row (a SQL function with a subquery: 5 of the 12 s it took on 1M rows); now the
-- aggregate returns its state, means first: element i (1..k) is series i's mean and
-- elements k+1..2k are working weights. The step is 0005's rule, unchanged:
--   seeded with the first non-NULL value; after k NULL inputs (k = 0 normally) the next
--   value x gives y = (w*y + a*x) / (w + a) with w = (1 - a)^(k + 1); pandas skips the
--   update when y = x.
drop aggregate udf.ewm_means(double precision[], double precision[]);
drop function udf.ewm_means_final(double precision[]);
drop function udf.ewm_means_step(double precision[], double precision[], double precision[]);

create function udf.ewm_means_step(
    state double precision[], x double precision[], alpha double precision[]
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
        state := array_fill(null::double precision, array[2 * k]);
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

create aggregate udf.ewm_means(double precision[], double precision[]) (
    sfunc = udf.ewm_means_step,
    stype = double precision[]
);

comment on aggregate udf.ewm_means(double precision[], double precision[]) is
    'pandas ewm(alpha=a_i, adjust=False).mean() of each x_i as element i of the result '
    '(elements k+1..2k are working state); use over rows unbounded preceding';
