-- Exact rolling sums, means and standard deviations as window functions of
-- tickfeatures_native (native/tf_windows.c), and udf.ewm_means' step in C. The L2 families'
-- rolling statistics run on the integers their float8 values are, one sweep per partition,
-- O(1) a row, as exact as the numeric running sums they replace (docs/decisions.md, "Exact
-- rolling windows in C"). The dbt macros use them where they exist
-- (macros/rolling/native_windows.sql); a server without the extension, or with a build older
-- than these functions, keeps the numeric formulation and the PL/pgSQL step: the same values,
-- slower.
do $migration$
declare
    definitions text[] := array[
        'window_std(x double precision, n integer, skip integer) returns double precision|tf_window_std'
            || '|Sample standard deviation of x over rows t-skip-n+1 .. t-skip, NULL unless all n hold a value; exact sums, rounded once. Over (partition by symbol order by ts).',
        'window_mean(x double precision, n integer, skip integer, correctly_rounded boolean) returns double precision|tf_window_mean'
            || '|Mean of x over rows t-skip-n+1 .. t-skip, NULL unless all n hold a value: the exact sum rounded then divided, or (correctly_rounded) the exact mean rounded once.',
        'window_sum(x double precision, n integer, squares boolean) returns double precision|tf_window_sum'
            || '|Exact sum of x (squares: of x^2, each square exact) over rows t-n+1 .. t (those there are on the first rows), NULL terms 0, rounded once.',
        'window_count(x double precision, n integer) returns bigint|tf_window_count'
            || '|Non-NULL values of x in rows t-n+1 .. t.',
        'window_trend_strength(x double precision, n integer) returns double precision|tf_window_trend_strength'
            || '|R^2 of the least-squares line through the last n values of x against 0 .. n-1, NULL unless all n hold a value, 0 when they are equal; from exact sums.',
        'time_window_std(x double precision, ts timestamp with time zone, seconds double precision) returns double precision|tf_time_window_std'
            || '|Sample standard deviation of x over (ts - seconds, ts], NULLs skipped, NULL under 2 values; exact sums, rounded once.',
        'time_window_sum(x double precision, ts timestamp with time zone, seconds double precision, squares boolean) returns double precision|tf_time_window_sum'
            || '|Exact sum of x (squares: of x^2) over (ts - seconds, ts], NULL terms 0, rounded once.',
        'time_window_count(x double precision, ts timestamp with time zone, seconds double precision) returns bigint|tf_time_window_count'
            || '|Non-NULL values of x in (ts - seconds, ts].'
    ];
    definition text;
    parts text[];
begin
    if not exists (select from pg_extension where extname = 'tickfeatures_native') then
        raise notice 'tickfeatures_native is not installed on this server: the L2 families keep their numeric rolling sums';
        return;
    end if;
    foreach definition in array definitions loop
        parts := string_to_array(definition, '|');
        execute format(
            $f$create function udf.%s as '$libdir/tickfeatures_native', %L
               language c window immutable parallel safe$f$,
            parts[1], parts[2]);
        execute format('comment on function udf.%s is %L',
            regexp_replace(parts[1], '\) returns .*$', ')'), parts[3]);
    end loop;
    -- udf.ewm_means' step (migration 0019) in C: the same float8 operations, one call a row
    -- (the PL/pgSQL loop was 6.5 of flow_ewm_state's 12 s on 1M snapshots)
    create or replace function udf.ewm_means_step(
        state double precision[], seed double precision[], x double precision[],
        alpha double precision[]
    ) returns double precision[]
    as '$libdir/tickfeatures_native', 'tf_ewm_means_step'
    language c immutable parallel safe;
exception
    when undefined_function then
        -- the server's tickfeatures_native predates these functions: install-system.sh builds
        -- the current one; until then, the numeric formulation
        raise notice 'tickfeatures_native on this server has no window functions (%): the L2 families keep their numeric rolling sums', sqlerrm;
end
$migration$;
