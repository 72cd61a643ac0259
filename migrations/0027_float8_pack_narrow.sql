-- udf.float8_pack_agg for rows of 2 and 3 values: the bar families across symbols (K14) pack
-- each peer's (minute, close) and each panel symbol's (minute, close, volume), which padded to
-- 8 values would pass three to four times the bytes. With tickfeatures_native the same C
-- transition and final functions serve every arity (they read PG_NARGS); without it, the
-- PL/pgSQL fallback of migration 0022.
do $migration$
declare
    arity integer;
    args text;
begin
    foreach arity in array array[2, 3] loop
        select string_agg('double precision', ', ') into args from generate_series(1, arity);
        if exists (select from pg_extension where extname = 'tickfeatures_native') then
            execute format(
                $f$create function udf._float8_pack_agg_step(internal, %1$s) returns internal
                   as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_step'
                   language c immutable parallel safe$f$, args);
            execute format(
                $f$create function udf._float8_pack_agg_final(internal, %1$s) returns bytea
                   as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_final'
                   language c immutable parallel safe$f$, args);
            execute format(
                $f$create aggregate udf.float8_pack_agg(%1$s) (
                       sfunc = udf._float8_pack_agg_step, stype = internal,
                       finalfunc = udf._float8_pack_agg_final, finalfunc_extra
                   )$f$, args);
        else
            execute format(
                $f$create function udf._float8_pack_agg_step(state double precision[], %1$s)
                   returns double precision[] language plpgsql immutable parallel safe
                   as $b$
                   begin
                       return state || array[%2$s]::double precision[];
                   end
                   $b$$f$,
                args,
                (select string_agg('$' || i, ', ') from generate_series(2, arity + 1) as i));
            execute format(
                $f$create aggregate udf.float8_pack_agg(%1$s) (
                       sfunc = udf._float8_pack_agg_step, stype = double precision[],
                       finalfunc = udf.float8_pack
                   )$f$, args);
        end if;
        execute format(
            $f$comment on aggregate udf.float8_pack_agg(%1$s) is %2$L$f$, args,
            format('Row-major native float64 bytes of the aggregated rows of %s values (NULL becomes NaN): a bar kernel''s peer or panel input.', arity));
    end loop;
end
$migration$;
