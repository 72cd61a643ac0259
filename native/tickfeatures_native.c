/*
 * tickfeatures_native: the two conversions PL/Python makes slow.
 *
 * PL/Python turns each float8 it returns into text and back (float8in), about 0.7 us per
 * value: 400 s for the 600 million values of the bar families on a month of 28 pairs. The
 * kernels return their columns as bytea of native float64 instead, and these functions turn
 * them into float8[] at memory speed (NaN, the kernels' "no value", becomes NULL), and back.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "fmgr.h"
#include "funcapi.h"
#include "access/tupdesc.h"
#include "utils/tuplestore.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(tf_float8_unpack);
PG_FUNCTION_INFO_V1(tf_float8_pack);
PG_FUNCTION_INFO_V1(tf_float8_rows);
PG_FUNCTION_INFO_V1(tf_float8_pack_agg_step);
PG_FUNCTION_INFO_V1(tf_float8_pack_agg_final);

/* float8[] from bytea of native float64; NaN becomes NULL. */
Datum
tf_float8_unpack(PG_FUNCTION_ARGS)
{
    bytea      *packed = PG_GETARG_BYTEA_PP(0);
    Size        nbytes = VARSIZE_ANY_EXHDR(packed);
    const char *data = VARDATA_ANY(packed);
    int         n;
    int         nulls = 0;
    ArrayType  *result;
    Size        nbytes_out;
    bits8      *bitmap;
    float8     *out;
    int         i;

    if (nbytes % sizeof(float8) != 0)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("udf.float8_unpack: %zu bytes is not a whole number of float8 values",
                        nbytes)));
    if (nbytes / sizeof(float8) > (Size) MaxArraySize)
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                 errmsg("udf.float8_unpack: too many values (%zu)", nbytes / sizeof(float8))));
    n = (int) (nbytes / sizeof(float8));
    if (n == 0)
        PG_RETURN_ARRAYTYPE_P(construct_empty_array(FLOAT8OID));

    for (i = 0; i < n; i++)
    {
        float8      v;

        memcpy(&v, data + (Size) i * sizeof(float8), sizeof(float8));
        if (isnan(v))
            nulls++;
    }

    nbytes_out = (Size) (n - nulls) * sizeof(float8);
    if (nulls == 0)
    {
        Size        header = ARR_OVERHEAD_NONULLS(1);

        result = (ArrayType *) palloc0(header + nbytes_out);
        SET_VARSIZE(result, header + nbytes_out);
        result->ndim = 1;
        result->dataoffset = 0;
        result->elemtype = FLOAT8OID;
        ARR_DIMS(result)[0] = n;
        ARR_LBOUND(result)[0] = 1;
        memcpy(ARR_DATA_PTR(result), data, nbytes_out);
        PG_RETURN_ARRAYTYPE_P(result);
    }

    {
        Size        header = ARR_OVERHEAD_WITHNULLS(1, n);

        result = (ArrayType *) palloc0(header + nbytes_out);
        SET_VARSIZE(result, header + nbytes_out);
        result->ndim = 1;
        result->dataoffset = header;
        result->elemtype = FLOAT8OID;
        ARR_DIMS(result)[0] = n;
        ARR_LBOUND(result)[0] = 1;
        bitmap = ARR_NULLBITMAP(result);
        out = (float8 *) ARR_DATA_PTR(result);
        for (i = 0; i < n; i++)
        {
            float8      v;

            memcpy(&v, data + (Size) i * sizeof(float8), sizeof(float8));
            if (!isnan(v))
            {
                bitmap[i / 8] |= (bits8) (1 << (i % 8));
                *out++ = v;
            }
        }
    }
    PG_RETURN_ARRAYTYPE_P(result);
}

/* bytea of native float64 from a float8[] of any shape, row-major; NULL becomes NaN. */
Datum
tf_float8_pack(PG_FUNCTION_ARGS)
{
    ArrayType  *values = PG_GETARG_ARRAYTYPE_P(0);
    int         n;
    bytea      *result;
    float8     *out;
    const float8 *in;
    bits8      *bitmap;
    int         i;

    if (ARR_ELEMTYPE(values) != FLOAT8OID)
        ereport(ERROR,
                (errcode(ERRCODE_DATATYPE_MISMATCH),
                 errmsg("udf.float8_pack: expected float8[]")));
    /* any number of dimensions, in storage (row-major) order */
    n = ArrayGetNItems(ARR_NDIM(values), ARR_DIMS(values));
    result = (bytea *) palloc(VARHDRSZ + (Size) n * sizeof(float8));
    SET_VARSIZE(result, VARHDRSZ + (Size) n * sizeof(float8));
    out = (float8 *) VARDATA(result);
    in = (const float8 *) ARR_DATA_PTR(values);
    bitmap = ARR_NULLBITMAP(values);
    for (i = 0; i < n; i++)
    {
        if (bitmap && !(bitmap[i / 8] & (1 << (i % 8))))
            out[i] = get_float8_nan();
        else
            out[i] = *in++;
    }
    PG_RETURN_BYTEA_P(result);
}

/*
 * Rows from a row-major float64 matrix: `select * from udf.float8_rows(m, 2) as t(a float8,
 * b float8)` gives one row per `width` values of m, in order; NaN becomes NULL. The column
 * definition list must have `width` double precision columns.
 */
Datum
tf_float8_rows(PG_FUNCTION_ARGS)
{
    bytea      *packed = PG_GETARG_BYTEA_PP(0);
    int32       width = PG_GETARG_INT32(1);
    Size        nbytes = VARSIZE_ANY_EXHDR(packed);
    const char *data = VARDATA_ANY(packed);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
    TupleDesc   tupdesc;
    int         natts;
    Size        row_bytes;
    Size        nrows;
    Size        r;
    Datum      *values;
    bool       *nulls;
    int         j;

    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    tupdesc = rsinfo->setDesc;
    natts = tupdesc->natts;
    if (natts != width)
        ereport(ERROR,
                (errcode(ERRCODE_DATATYPE_MISMATCH),
                 errmsg("udf.float8_rows: the column definition list has %d columns, width says %d",
                        natts, width)));
    for (j = 0; j < natts; j++)
    {
        if (TupleDescAttr(tupdesc, j)->atttypid != FLOAT8OID)
            ereport(ERROR,
                    (errcode(ERRCODE_DATATYPE_MISMATCH),
                     errmsg("udf.float8_rows: column %d of the column definition list is not double precision",
                            j + 1)));
    }
    row_bytes = (Size) natts * sizeof(float8);
    if (natts == 0 || nbytes % row_bytes != 0)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("udf.float8_rows: %zu bytes is not a whole number of rows of %d float8 values",
                        nbytes, natts)));
    nrows = nbytes / row_bytes;
    values = (Datum *) palloc(natts * sizeof(Datum));
    nulls = (bool *) palloc(natts * sizeof(bool));
    for (r = 0; r < nrows; r++)
    {
        for (j = 0; j < natts; j++)
        {
            float8      v;

            memcpy(&v, data + r * row_bytes + (Size) j * sizeof(float8), sizeof(float8));
            nulls[j] = isnan(v);
            values[j] = nulls[j] ? (Datum) 0 : Float8GetDatum(v);
        }
        tuplestore_putvalues(rsinfo->setResult, tupdesc, values, nulls);
        if ((r & 0xFFFF) == 0)
            CHECK_FOR_INTERRUPTS();
    }
    return (Datum) 0;
}

/*
 * udf.float8_pack_agg(a, b, ...) [order by ...]: the row-major float64 bytes of the aggregated
 * rows, one value per argument (NULL becomes NaN). The same transition function serves every
 * arity; an array_agg per column costs ten times as much.
 */
Datum
tf_float8_pack_agg_step(PG_FUNCTION_ARGS)
{
    MemoryContext aggcontext;
    StringInfo  state;
    int         i;

    if (!AggCheckCallContext(fcinfo, &aggcontext))
        ereport(ERROR,
                (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                 errmsg("udf.float8_pack_agg called outside an aggregate")));
    if (PG_ARGISNULL(0))
    {
        MemoryContext old = MemoryContextSwitchTo(aggcontext);

        state = makeStringInfo();
        MemoryContextSwitchTo(old);
    }
    else
        state = (StringInfo) PG_GETARG_POINTER(0);

    for (i = 1; i < PG_NARGS(); i++)
    {
        float8      v = PG_ARGISNULL(i) ? get_float8_nan() : PG_GETARG_FLOAT8(i);

        appendBinaryStringInfo(state, (const char *) &v, sizeof(float8));
    }
    PG_RETURN_POINTER(state);
}

Datum
tf_float8_pack_agg_final(PG_FUNCTION_ARGS)
{
    StringInfo  state;
    bytea      *result;

    if (PG_ARGISNULL(0))
        PG_RETURN_NULL();
    state = (StringInfo) PG_GETARG_POINTER(0);
    result = (bytea *) palloc(VARHDRSZ + state->len);
    SET_VARSIZE(result, VARHDRSZ + state->len);
    memcpy(VARDATA(result), state->data, state->len);
    PG_RETURN_BYTEA_P(result);
}
