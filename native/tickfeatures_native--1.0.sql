-- tickfeatures_native 1.0: see tickfeatures_native.c
\echo Use "CREATE EXTENSION tickfeatures_native" to load this file. \quit

create function float8_unpack(packed bytea) returns double precision[]
    as '$libdir/tickfeatures_native', 'tf_float8_unpack'
    language c immutable strict parallel safe;

comment on function float8_unpack(bytea) is
    'float8[] from native float64 bytes (a PL/Python kernel''s numpy tobytes()); NaN becomes NULL.';

create function float8_pack(vals double precision[]) returns bytea
    as '$libdir/tickfeatures_native', 'tf_float8_pack'
    language c immutable strict parallel safe;

comment on function float8_pack(double precision[]) is
    'Native float64 bytes of a float8[] of any shape, row-major (numpy frombuffer in a kernel); NULL becomes NaN.';

create function float8_rows(packed bytea, width integer) returns setof record
    as '$libdir/tickfeatures_native', 'tf_float8_rows'
    language c immutable strict parallel safe rows 1000;

comment on function float8_rows(bytea, integer) is
    'Rows of a row-major float64 matrix, width values a row (the column definition list: width double precision columns); NaN becomes NULL.';

create function _float8_pack_agg_step(internal, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) returns internal
    as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_step'
    language c immutable parallel safe;

create function _float8_pack_agg_final(internal, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) returns bytea
    as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_final'
    language c immutable parallel safe;

create aggregate float8_pack_agg(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) (
    sfunc = _float8_pack_agg_step,
    stype = internal,
    finalfunc = _float8_pack_agg_final,
    finalfunc_extra
);

create function _float8_pack_agg_step(internal, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) returns internal
    as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_step'
    language c immutable parallel safe;

create function _float8_pack_agg_final(internal, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) returns bytea
    as '$libdir/tickfeatures_native', 'tf_float8_pack_agg_final'
    language c immutable parallel safe;

create aggregate float8_pack_agg(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) (
    sfunc = _float8_pack_agg_step,
    stype = internal,
    finalfunc = _float8_pack_agg_final,
    finalfunc_extra
);

comment on aggregate float8_pack_agg(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) is
    'Row-major native float64 bytes of the aggregated rows of 8 values (NULL becomes NaN): a bar kernel''s input.';
comment on aggregate float8_pack_agg(double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision, double precision) is
    'Row-major native float64 bytes of the aggregated rows of 9 values (NULL becomes NaN): a bar kernel''s coarser-bar input.';
