/*
 * Exact rolling statistics as window functions: the L2 families' rolling sums, means and
 * standard deviations (macros/rolling/), computed on the integers the float8 values are.
 *
 * Every finite float8 is m * 2^e with m an integer of at most 53 bits. Over a partition, all
 * values (and their exact squares, m^2 * 2^2e) are integers in units of 2^E, E the smallest
 * exponent present; a multi-word integer of enough 64-bit words holds any window's sum
 * exactly. A window's sum is then kept by adding the row that enters and subtracting the one
 * that leaves: O(1) a row, and exact, so a value depends on the window's rows only, never on
 * how much history came before them (an incremental refresh equals a full build to the last
 * bit) and calm windows after volatile ones stay exact (a constant window's deviation is 0).
 * The variance's cancelling difference n*S2 - S1^2 is exact too; each result is rounded to
 * float8 once, correctly (as numeric's exact sums converted to float8 were, 5-20x slower).
 *
 * Each function is called over (partition by symbol order by ts): on its first row of a
 * partition it reads the partition's arguments, computes every row's value in one sweep and
 * then returns them row by row. Windows are the macros' (macros/rolling/): rows
 * t-skip-n+1 .. t-skip, or the times (ts - W, ts].
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "miscadmin.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "windowapi.h"

PG_FUNCTION_INFO_V1(tf_window_std);
PG_FUNCTION_INFO_V1(tf_window_mean);
PG_FUNCTION_INFO_V1(tf_window_sum);
PG_FUNCTION_INFO_V1(tf_window_count);
PG_FUNCTION_INFO_V1(tf_window_trend_strength);
PG_FUNCTION_INFO_V1(tf_time_window_std);
PG_FUNCTION_INFO_V1(tf_time_window_sum);
PG_FUNCTION_INFO_V1(tf_time_window_count);

#define MAX_WORDS 144           /* 9,216 bits: the squares of the whole float8 range, and more */
#define HEADROOM_BITS 42        /* sums of up to 2^41 rows, and a sign bit */

/* ---- multi-word integers: little-endian 64-bit words, two's complement --------------- */

typedef struct BigInt
{
    int         words;
    uint64      w[MAX_WORDS];
} BigInt;

static void big_magnitude(BigInt *m, const BigInt *a);

static void
big_zero(BigInt *a, int words)
{
    a->words = words;
    memset(a->w, 0, sizeof(uint64) * words);
}

/* a += sign * (v << shift), v < 2^106, the result fitting a's words */
static void
big_add_shifted(BigInt *a, int sign, uint128 v, int shift)
{
    int         k = shift / 64;
    int         bit = shift % 64;
    uint64      lo = (uint64) v;
    uint64      hi = (uint64) (v >> 64);
    uint64      part[3];
    int         i;

    part[0] = lo << bit;
    part[1] = bit == 0 ? hi : (lo >> (64 - bit)) | (hi << bit);
    part[2] = bit == 0 ? 0 : hi >> (64 - bit);
    if (sign > 0)
    {
        uint64      carry = 0;

        for (i = k; i < a->words; i++)
        {
            uint64      add = (i - k < 3) ? part[i - k] : 0;
            uint128     s = (uint128) a->w[i] + add + carry;

            a->w[i] = (uint64) s;
            carry = (uint64) (s >> 64);
            if (i - k >= 2 && carry == 0)
                break;
        }
    }
    else
    {
        uint64      borrow = 0;

        for (i = k; i < a->words; i++)
        {
            uint64      sub = (i - k < 3) ? part[i - k] : 0;
            uint128     d = (uint128) a->w[i] - sub - borrow;

            a->w[i] = (uint64) d;
            borrow = (uint64) (d >> 64) ? 1 : 0;
            if (i - k >= 2 && borrow == 0)
                break;
        }
    }
}

static bool
big_negative(const BigInt *a)
{
    return (a->w[a->words - 1] >> 63) != 0;
}

static void
big_negate(BigInt *a)
{
    uint64      carry = 1;
    int         i;

    for (i = 0; i < a->words; i++)
    {
        uint128     s = (uint128) (~a->w[i]) + carry;

        a->w[i] = (uint64) s;
        carry = (uint64) (s >> 64);
    }
}

/* r = a - b, all of `words` words */
static void
big_sub(BigInt *r, const BigInt *a, const BigInt *b, int words)
{
    uint64      borrow = 0;
    int         i;

    r->words = words;
    for (i = 0; i < words; i++)
    {
        uint64      x = i < a->words ? a->w[i] : (big_negative(a) ? ~(uint64) 0 : 0);
        uint64      y = i < b->words ? b->w[i] : (big_negative(b) ? ~(uint64) 0 : 0);
        uint128     d = (uint128) x - y - borrow;

        r->w[i] = (uint64) d;
        borrow = (uint64) (d >> 64) ? 1 : 0;
    }
}

/* r = |a|^2 (a of at most MAX_WORDS/2 words), into `words` words */
static void
big_square(BigInt *r, const BigInt *a, int words)
{
    BigInt      m;
    int         i,
                j;

    big_magnitude(&m, a);
    big_zero(r, words);
    for (i = 0; i < m.words; i++)
    {
        uint64      carry = 0;

        if (m.w[i] == 0)
            continue;
        for (j = 0; j < m.words && i + j < words; j++)
        {
            uint128     p = (uint128) m.w[i] * m.w[j] + r->w[i + j] + carry;

            r->w[i + j] = (uint64) p;
            carry = (uint64) (p >> 64);
        }
        for (j = i + m.words; j < words && carry; j++)
        {
            uint128     s = (uint128) r->w[j] + carry;

            r->w[j] = (uint64) s;
            carry = (uint64) (s >> 64);
        }
    }
}

/* r = a * n for a >= 0, into `words` words */
static void
big_mul_small(BigInt *r, const BigInt *a, uint32 n, int words)
{
    uint64      carry = 0;
    int         i;

    big_zero(r, words);
    for (i = 0; i < words; i++)
    {
        uint128     p = (uint128) (i < a->words ? a->w[i] : 0) * n + carry;

        r->w[i] = (uint64) p;
        carry = (uint64) (p >> 64);
    }
}

/* |a| / n, the quotient in place, returning whether a remainder was left */
static bool
big_div_small(BigInt *a, uint32 n)
{
    uint64      rem = 0;
    int         i;

    for (i = a->words - 1; i >= 0; i--)
    {
        uint128     cur = ((uint128) rem << 64) | a->w[i];

        a->w[i] = (uint64) (cur / n);
        rem = (uint64) (cur % n);
    }
    return rem != 0;
}

/*
 * a * 2^unit rounded to the nearest float8 (ties to even), for a >= 0 of any length, and
 * `sticky`: a nonzero remainder below a's last bit. The 64 bits from a's leading 1 down, with
 * every lower bit (and the sticky one) folded into the last, are 11 bits more than a float8
 * keeps: converting that word rounds exactly as the whole number would.
 */
static double
big_to_double_magnitude(const BigInt *a, int unit, bool sticky)
{
    int         top = a->words - 1;
    int         lead;
    int         low;
    uint64      word;
    bool        below = sticky;
    int         i;

    while (top >= 0 && a->w[top] == 0)
        top--;
    if (top < 0)
        return 0.0;
    lead = top * 64 + 63 - __builtin_clzll(a->w[top]);
    low = lead - 63;            /* the bit index of the word's last bit */
    if (low <= 0)
        word = a->w[0] << (-low);
    else
    {
        int         k = low / 64;
        int         b = low % 64;

        word = b == 0 ? a->w[k] : (a->w[k] >> b) | (a->w[k + 1] << (64 - b));
        if (b != 0 && (a->w[k] << (64 - b)) != 0)
            below = true;
        for (i = k - 1; i >= 0 && !below; i--)
            below = a->w[i] != 0;
    }
    if (below)
        word |= 1;
    return ldexp((double) word, unit + low);
}

static void
big_magnitude(BigInt *m, const BigInt *a)
{
    m->words = a->words;
    memcpy(m->w, a->w, sizeof(uint64) * a->words);
    if (big_negative(a))
        big_negate(m);
}

static double
big_to_double(const BigInt *a, int unit)
{
    BigInt      m;

    if (!big_negative(a))
        return big_to_double_magnitude(a, unit, false);
    big_magnitude(&m, a);
    return -big_to_double_magnitude(&m, unit, false);
}

/* (a * 2^unit) / n correctly rounded: the quotient of a * 2^128 (97 bits or more) and the
 * remainder as the sticky bit */
static double
big_div_to_double(const BigInt *a, int unit, uint32 n)
{
    BigInt      m;
    BigInt      q;
    bool        rem;
    double      v;

    big_magnitude(&m, a);
    q.words = m.words + 2;
    q.w[0] = q.w[1] = 0;
    memcpy(q.w + 2, m.w, sizeof(uint64) * m.words);
    rem = big_div_small(&q, n);
    v = big_to_double_magnitude(&q, unit - 128, rem);
    return big_negative(a) ? -v : v;
}

/* ---- a float8 as an integer: x = m * 2^e ------------------------------------------------ */

static inline void
split_double(double x, int64 *m, int *e)
{
    int         exp;
    double      f = frexp(x, &exp);    /* x = f * 2^exp, 0.5 <= |f| < 1 */
    int64       v = (int64) ldexp(f, 53);
    int         zeros = __builtin_ctzll((uint64) (v < 0 ? -v : v));

    /* m odd: e is then the exponent of x's lowest bit, never below a partition's unit */
    *m = v / ((int64) 1 << zeros);
    *e = exp - 53 + zeros;
}

/* the exponent of x's lowest set bit and of its highest bit + 1 */
static inline void
bit_range(double x, int *low, int *high)
{
    int64       m;
    int         e;

    split_double(x, &m, &e);
    *low = e;
    *high = e + 64 - __builtin_clzll((uint64) (m < 0 ? -m : m));
}

/* ---- the partition: its arguments and every row's result -------------------------------- */

typedef enum WindowKind
{
    ROWS,
    TIMES
} WindowKind;

typedef enum Statistic
{
    STAT_STD,
    STAT_MEAN,
    STAT_MEAN_ROUNDED,
    STAT_SUM,
    STAT_SUM_SQUARES,
    STAT_COUNT,
    STAT_TREND
} Statistic;

/* the scale of a window's sums: integers in units of 2^unit (squares: 2^(2 unit)) */
typedef struct Scale
{
    bool        any;            /* a finite nonzero value has been seen */
    int         unit;           /* the lowest bit of every value seen */
    int         high;           /* above the highest bit of every value seen */
    int         words1;         /* words of a sum of values */
    int         words2;         /* words of a sum of squares */
} Scale;

/* the running window: sums of the terms of the rows in it */
typedef struct Window
{
    BigInt      s1;
    BigInt      s2;
    BigInt      u;              /* sum of i * x_i, i the row's index in the partition (trend) */
    int64       count;          /* non-NULL values */
    int64       nonfinite;      /* NaN or infinite values */
} Window;

/* a = a with every bit `bits` higher, in `words` words (a >= its words, sign-extended) */
static void
big_widen_and_shift(BigInt *a, int words, int bits)
{
    uint64      fill = big_negative(a) ? ~(uint64) 0 : 0;
    int         k = bits / 64;
    int         b = bits % 64;
    int         i;

    for (i = a->words; i < words; i++)
        a->w[i] = fill;
    a->words = words;
    if (bits == 0)
        return;
    for (i = words - 1; i >= 0; i--)
    {
        uint64      hi = i - k >= 0 ? a->w[i - k] : 0;
        uint64      lo = i - k - 1 >= 0 ? a->w[i - k - 1] : 0;

        a->w[i] = b == 0 ? hi : (hi << b) | (lo >> (64 - b));
    }
}

/*
 * Make the window's sums able to hold x exactly: a lower bit than any before moves the unit
 * down (every sum shifted up, exactly), a higher one widens them. The sums stay the same
 * numbers, so the results do not depend on the order the values came in.
 */
static void
scale_for(Scale *sc, Window *w, double x)
{
    int64       m;
    int         e;
    int         hi;
    int         unit;
    int         high;
    int         words1;
    int         words2;

    split_double(x, &m, &e);
    hi = e + 64 - __builtin_clzll((uint64) (m < 0 ? -m : m));
    if (sc->any && e >= sc->unit && hi <= sc->high)
        return;
    unit = sc->any ? Min(sc->unit, e) : e;
    high = sc->any ? Max(sc->high, hi) : hi;
    words1 = (high - unit + HEADROOM_BITS + 63) / 64;
    words2 = (2 * (high - unit) + HEADROOM_BITS + 63) / 64;
    if (words2 > MAX_WORDS / 2 - 2 || words1 > MAX_WORDS / 4 - 2)
        ereport(ERROR,
                (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                 errmsg("udf.window_*: the values of a window span %d binary orders of magnitude, more than an exact sum here holds",
                        high - unit)));
    if (!sc->any)
    {
        big_zero(&w->s1, words1);
        big_zero(&w->s2, words2);
        big_zero(&w->u, words1 + 1);
    }
    else
    {
        int         d = sc->unit - unit;

        big_widen_and_shift(&w->s1, words1, d);
        big_widen_and_shift(&w->s2, words2, 2 * d);
        big_widen_and_shift(&w->u, words1 + 1, d);
    }
    sc->any = true;
    sc->unit = unit;
    sc->high = high;
    sc->words1 = words1;
    sc->words2 = words2;
}

static void
window_move(Window *w, Scale *sc, double x, bool isnull, int64 i, int sign, bool need1,
            bool need2, bool need_u)
{
    int64       m;
    int         e;

    if (isnull)
        return;
    w->count += sign;
    if (!isfinite(x))
    {
        w->nonfinite += sign;
        return;
    }
    if (x == 0.0)
        return;
    if (sign > 0)
        scale_for(sc, w, x);
    split_double(x, &m, &e);
    if (need1)
        big_add_shifted(&w->s1, m < 0 ? -sign : sign, (uint128) (m < 0 ? -m : m), e - sc->unit);
    if (need2)
    {
        uint64      a = (uint64) (m < 0 ? -m : m);

        big_add_shifted(&w->s2, sign, (uint128) a * a, 2 * (e - sc->unit));
    }
    if (need_u)
        big_add_shifted(&w->u, m < 0 ? -sign : sign, (uint128) (m < 0 ? -m : m) * (uint64) i,
                        e - sc->unit);
}

/* r = a * c for a signed a and 0 <= c < 2^32, into `words` words */
static void
big_mul_small_signed(BigInt *r, const BigInt *a, uint32 c, int words)
{
    BigInt      m;

    big_magnitude(&m, a);
    big_mul_small(r, &m, c, words);
    if (big_negative(a))
        big_negate(r);
}

/* r = a + b (signed), into `words` words */
static void
big_add(BigInt *r, const BigInt *a, const BigInt *b, int words)
{
    BigInt      nb;

    nb.words = words;
    memset(nb.w, 0, sizeof(uint64) * words);
    big_sub(&nb, &nb, b, words);   /* -b */
    big_sub(r, a, &nb, words);
}

static bool
big_is_zero(const BigInt *a)
{
    int         i;

    for (i = 0; i < a->words; i++)
        if (a->w[i] != 0)
            return false;
    return true;
}

/*
 * One row's statistic from its window: n is the number of rows a row window spans (every
 * one must hold a value for a std or mean, T1); a time window needs 2 values for a std (T2).
 */
static void
window_value(const Window *w, const Scale *s, Statistic stat, WindowKind kind, int64 n,
             int64 head, double *value, bool *isnull)
{
    *isnull = false;
    if (stat == STAT_COUNT)
    {
        *value = (double) w->count;
        return;
    }
    if (stat == STAT_STD || stat == STAT_MEAN || stat == STAT_MEAN_ROUNDED || stat == STAT_TREND)
    {
        if ((kind == ROWS && w->count != n) || (kind == TIMES && stat == STAT_STD && w->count < 2)
            || (kind == TIMES && w->count < 1))
        {
            *isnull = true;
            return;
        }
        n = w->count;
    }
    if (w->nonfinite > 0)
    {
        *value = get_float8_nan();
        return;
    }
    switch (stat)
    {
        case STAT_SUM:
            *value = big_to_double(&w->s1, s->unit);
            break;
        case STAT_SUM_SQUARES:
            *value = big_to_double(&w->s2, 2 * s->unit);
            break;
        case STAT_MEAN:
            *value = big_to_double(&w->s1, s->unit) / (double) n;
            break;
        case STAT_MEAN_ROUNDED:
            *value = big_div_to_double(&w->s1, s->unit, (uint32) n);
            break;
        case STAT_STD:
            {
                int         words = Max(2 * s->words1, s->words2 + 1) + 1;
                BigInt      nS2,
                            S1sq,
                            numerator;
                double      v;

                big_mul_small(&nS2, &w->s2, (uint32) n, words);
                big_square(&S1sq, &w->s1, words);
                big_sub(&numerator, &nS2, &S1sq, words);
                v = big_to_double(&numerator, 2 * s->unit) / ((double) n * (double) (n - 1));
                *value = sqrt(v > 0 ? v : 0);
                break;
            }
        case STAT_TREND:
            {
                /*
                 * R^2 of the least-squares line through (k, x_k), k = 0 .. n-1: with
                 * A = 2 Sxy = 2 sum(k x_k) - (n-1) S1 and B = n Syy = n S2 - S1^2, both exact,
                 * R^2 = Sxy^2 / (Sxx Syy) = 3 A^2 / ((n^2 - 1) B); 0 for a flat window.
                 * sum(k x_k) = U - head S1, U the sum of i x_i by partition index i.
                 */
                int         words = Max(2 * (s->words1 + 3), s->words2 + 2) + 1;
                BigInt      twice_u,
                            hs,
                            a,
                            a_sq,
                            nS2,
                            S1sq,
                            b;

                big_add(&twice_u, &w->u, &w->u, words);
                big_mul_small_signed(&hs, &w->s1, (uint32) (2 * head + n - 1), words);
                big_sub(&a, &twice_u, &hs, words);
                big_mul_small(&nS2, &w->s2, (uint32) n, words);
                big_square(&S1sq, &w->s1, words);
                big_sub(&b, &nS2, &S1sq, words);
                if (big_is_zero(&b))
                {
                    *value = 0.0;
                    break;
                }
                big_square(&a_sq, &a, words);
                *value = 3.0 * big_to_double(&a_sq, 2 * s->unit)
                    / (((double) n * (double) n - 1.0) * big_to_double(&b, 2 * s->unit));
                break;
            }
        default:
            elog(ERROR, "unexpected statistic %d", (int) stat);
    }
}

static int64
constant_int(WindowObject winobj, int argno, const char *what, int64 minimum)
{
    bool        isnull;
    Datum       d = WinGetFuncArgCurrent(winobj, argno, &isnull);
    int64       v;

    if (isnull)
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("udf.window_*: %s must not be NULL", what)));
    v = DatumGetInt32(d);
    if (v < minimum)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("udf.window_*: %s must be at least %lld, got %lld", what,
                        (long long) minimum, (long long) v)));
    return v;
}

static int64
constant_width(WindowObject winobj, int argno)
{
    bool        isnull;
    Datum       d = WinGetFuncArgCurrent(winobj, argno, &isnull);
    double      seconds;

    if (isnull)
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("udf.time_window_*: the window's seconds must not be NULL")));
    seconds = DatumGetFloat8(d);
    if (!(seconds > 0) || seconds > 1e9)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("udf.time_window_*: the window must be a positive number of seconds, got %g",
                        seconds)));
    return (int64) llround(seconds * 1e6);
}

/*
 * A window function's state in a partition. The function is called on every row in order
 * and reads only that row's arguments (no trip back through the partition's rows): the rows
 * that will still leave a window are kept in a ring.
 */
typedef struct Stream
{
    bool        started;
    int64       n;              /* rows windows: n rows, ending skip rows before this one */
    int64       skip;
    int64       width_us;       /* time windows: (ts - width, ts] */
    bool        need1;
    bool        need2;
    bool        need_u;
    int64       rows;           /* rows seen */
    int64       first;          /* the oldest row held in the ring */
    int64       capacity;       /* of the ring: a power of two */
    double     *x;
    bool       *isnull;
    int64      *ts;
    int64       head;           /* time windows: the window's first row */
    Scale       scale;
    Window      w;
} Stream;

static void
ring_reserve(Stream *st, int64 rows, bool with_ts)
{
    MemoryContext cxt = GetMemoryChunkContext(st);
    int64       capacity = 16;
    double     *x;
    bool       *isnull;
    int64      *ts = NULL;
    int64       j;

    if (st->capacity >= rows)
        return;
    while (capacity < rows)
        capacity *= 2;
    x = MemoryContextAllocHuge(cxt, sizeof(double) * capacity);
    isnull = MemoryContextAllocHuge(cxt, sizeof(bool) * capacity);
    if (with_ts)
        ts = MemoryContextAllocHuge(cxt, sizeof(int64) * capacity);
    for (j = st->first; j < st->rows; j++)
    {
        int64       from = j & (st->capacity - 1);
        int64       to = j & (capacity - 1);

        x[to] = st->x[from];
        isnull[to] = st->isnull[from];
        if (with_ts)
            ts[to] = st->ts[from];
    }
    if (st->capacity > 0)
    {
        pfree(st->x);
        pfree(st->isnull);
        if (st->ts)
            pfree(st->ts);
    }
    st->x = x;
    st->isnull = isnull;
    st->ts = ts;
    st->capacity = capacity;
}

static void
stream_start(WindowObject winobj, Stream *st, WindowKind kind, Statistic stat, int first_param,
             int nargs)
{
    st->need1 = stat != STAT_SUM_SQUARES && stat != STAT_COUNT;
    st->need2 = stat == STAT_STD || stat == STAT_SUM_SQUARES || stat == STAT_TREND;
    st->need_u = stat == STAT_TREND;
    if (kind == ROWS)
    {
        st->n = constant_int(winobj, first_param, "n", 1);
        st->skip = nargs > first_param + 1
            && (stat == STAT_STD || stat == STAT_MEAN || stat == STAT_MEAN_ROUNDED)
            ? constant_int(winobj, first_param + 1, "skip", 0) : 0;
        if ((stat == STAT_STD || stat == STAT_TREND) && st->n < 2)
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("udf.window_std: n must be at least 2, got %lld", (long long) st->n)));
        ring_reserve(st, st->n + st->skip + 1, false);
    }
    else
    {
        st->width_us = constant_width(winobj, first_param);
        ring_reserve(st, 1024, true);
    }
    st->scale.words1 = 1;
    st->scale.words2 = 1;
    big_zero(&st->w.s1, 1);
    big_zero(&st->w.s2, 1);
    big_zero(&st->w.u, 2);
    st->started = true;
}

static Datum
window_result(FunctionCallInfo fcinfo, WindowKind kind, Statistic stat, int first_param)
{
    WindowObject winobj = PG_WINDOW_OBJECT();
    Stream     *st = (Stream *) WinGetPartitionLocalMemory(winobj, sizeof(Stream));
    int64       i;
    int64       mask;
    bool        isnull;
    Datum       d;
    double      value;
    bool        value_null;

    if (!st->started)
        stream_start(winobj, st, kind, stat, first_param, PG_NARGS());
    i = st->rows;
    if (kind == TIMES)
        ring_reserve(st, i - st->first + 1, true);
    mask = st->capacity - 1;
    d = WinGetFuncArgCurrent(winobj, 0, &isnull);
    st->isnull[i & mask] = isnull;
    st->x[i & mask] = isnull ? 0.0 : DatumGetFloat8(d);
    st->rows++;
    if (kind == ROWS)
    {
        int64       enter = i - st->skip;
        int64       leave = i - st->skip - st->n;

        if (enter >= 0)
            window_move(&st->w, &st->scale, st->x[enter & mask], st->isnull[enter & mask], enter,
                        1, st->need1, st->need2, st->need_u);
        if (leave >= 0)
        {
            window_move(&st->w, &st->scale, st->x[leave & mask], st->isnull[leave & mask], leave,
                        -1, st->need1, st->need2, st->need_u);
            st->first = leave + 1;
        }
        /* the first rows' windows are partial: a std or mean is NULL there (fewer than n
         * values), a sum or count is that of the rows there are (as lag(..., n, 0) gives) */
        window_value(&st->w, &st->scale, stat, ROWS, st->n, leave + 1, &value, &value_null);
    }
    else
    {
        int64       ts;

        d = WinGetFuncArgCurrent(winobj, 1, &isnull);
        if (isnull)
            ereport(ERROR,
                    (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                     errmsg("udf.time_window_*: ts is NULL on row %lld of the partition",
                            (long long) i + 1)));
        ts = DatumGetTimestampTz(d);
        if (i > 0 && ts < st->ts[(i - 1) & mask])
            ereport(ERROR,
                    (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                     errmsg("udf.time_window_*: rows out of time order; call it over (partition by ... order by ts)")));
        st->ts[i & mask] = ts;
        window_move(&st->w, &st->scale, st->x[i & mask], st->isnull[i & mask], i, 1, st->need1,
                    st->need2, false);
        /* (ts - W, ts]: a row leaves once its time is W or more before this row's */
        while (st->ts[st->head & mask] <= ts - st->width_us)
        {
            window_move(&st->w, &st->scale, st->x[st->head & mask], st->isnull[st->head & mask],
                        st->head, -1, st->need1, st->need2, false);
            st->head++;
        }
        st->first = st->head;
        window_value(&st->w, &st->scale, stat, TIMES, 0, st->head, &value, &value_null);
    }
    if (value_null)
        PG_RETURN_NULL();
    if (stat == STAT_COUNT)
        PG_RETURN_INT64((int64) value);
    PG_RETURN_FLOAT8(value);
}

/* window_std(x, n, skip): sample standard deviation of rows t-skip-n+1 .. t-skip, NULL
 * unless all n hold a value */
Datum
tf_window_std(PG_FUNCTION_ARGS)
{
    return window_result(fcinfo, ROWS, STAT_STD, 1);
}

/* window_mean(x, n, skip, correctly_rounded): the mean of the same window; the exact sum
 * rounded and divided in float8, or (correctly_rounded) the exact mean rounded once */
Datum
tf_window_mean(PG_FUNCTION_ARGS)
{
    WindowObject winobj = PG_WINDOW_OBJECT();
    bool        isnull;
    bool        rounded = DatumGetBool(WinGetFuncArgCurrent(winobj, 3, &isnull));

    return window_result(fcinfo, ROWS, !isnull && rounded ? STAT_MEAN_ROUNDED : STAT_MEAN, 1);
}

/* window_sum(x, n, squares): the exact sum of x (or of x^2) over rows t-n+1 .. t (those there
 * are on the first rows), NULL terms 0, rounded once */
Datum
tf_window_sum(PG_FUNCTION_ARGS)
{
    WindowObject winobj = PG_WINDOW_OBJECT();
    bool        isnull;
    bool        squares = DatumGetBool(WinGetFuncArgCurrent(winobj, 2, &isnull));

    return window_result(fcinfo, ROWS, !isnull && squares ? STAT_SUM_SQUARES : STAT_SUM, 1);
}

/* window_count(x, n): how many of rows t-n+1 .. t hold a value */
Datum
tf_window_count(PG_FUNCTION_ARGS)
{
    return window_result(fcinfo, ROWS, STAT_COUNT, 1);
}

/* time_window_std(x, ts, seconds): sample standard deviation of the values in
 * (ts - seconds, ts], NULLs skipped, NULL under 2 values */
Datum
tf_time_window_std(PG_FUNCTION_ARGS)
{
    return window_result(fcinfo, TIMES, STAT_STD, 2);
}

/* time_window_sum(x, ts, seconds, squares): exact sum of x (or x^2) over (ts - seconds, ts] */
Datum
tf_time_window_sum(PG_FUNCTION_ARGS)
{
    WindowObject winobj = PG_WINDOW_OBJECT();
    bool        isnull;
    bool        squares = DatumGetBool(WinGetFuncArgCurrent(winobj, 3, &isnull));

    return window_result(fcinfo, TIMES, !isnull && squares ? STAT_SUM_SQUARES : STAT_SUM, 2);
}

/* time_window_count(x, ts, seconds): values in (ts - seconds, ts] */
Datum
tf_time_window_count(PG_FUNCTION_ARGS)
{
    return window_result(fcinfo, TIMES, STAT_COUNT, 2);
}

/* window_trend_strength(x, n): R^2 of the least-squares line through the last n values
 * against 0 .. n-1 (FEATURE_DEFINITIONS D2), NULL unless all n hold a value, 0 when they are
 * all equal; from exact sums, so shifting x changes nothing */
Datum
tf_window_trend_strength(PG_FUNCTION_ARGS)
{
    return window_result(fcinfo, ROWS, STAT_TREND, 1);
}

/* ---- udf.ewm_means' step (migration 0019's rule, the same float8 operations) ------------ */

PG_FUNCTION_INFO_V1(tf_ewm_means_step);

/* the elements of a float8[]; fewer than `expected` are an error, or (lenient) NULLs, as
 * PL/pgSQL's subscripts past the end are */
static void
float8_array_values(ArrayType *a, int expected, const char *what, bool lenient, double *values,
                    bool *nulls)
{
    Datum      *elems;
    bool       *isnull;
    int         n;
    int         i;

    if (ARR_ELEMTYPE(a) != FLOAT8OID)
        ereport(ERROR,
                (errcode(ERRCODE_DATATYPE_MISMATCH),
                 errmsg("udf.ewm_means: %s is not a double precision array", what)));
    deconstruct_array(a, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE,
                      &elems, &isnull, &n);
    if (n != expected && !lenient)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("udf.ewm_means: %s has %d elements, expected %d%s", what, n, expected,
                        strcmp(what, "seed") == 0 ? " (means, then weights)" : "")));
    for (i = 0; i < expected; i++)
    {
        nulls[i] = i >= n || isnull[i];
        values[i] = nulls[i] ? 0.0 : DatumGetFloat8(elems[i]);
    }
}

/*
 * ewm_means_step(state, seed, x, alpha): element i (1..k) of the state is series i's mean,
 * element k+i its working weight. Seeded with the first non-NULL value; a NULL input
 * multiplies the weight by 1 - a; the next value x gives y = (w*y + a*x) / (w + a) with
 * w = weight * (1 - a); pandas skips the update when y = x. `seed` (NULL: none) starts the
 * state. PL/pgSQL's own float8 operations, here one call per row instead of an interpreted
 * loop: the same results, bit for bit (tests/integration/test_native_windows.py).
 */
Datum
tf_ewm_means_step(PG_FUNCTION_ARGS)
{
    ArrayType  *alpha_a;
    ArrayType  *x_a;
    int         k;
    double     *state;
    bool       *state_null;
    double     *x;
    bool       *x_null;
    double     *alpha;
    bool       *alpha_null;
    Datum      *out;
    int         i;
    int         dims[1];
    int         lbs[1] = {1};
    ArrayType  *result;

    if (PG_ARGISNULL(3))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                 errmsg("udf.ewm_means: alpha must not be NULL")));
    alpha_a = PG_GETARG_ARRAYTYPE_P(3);
    k = ArrayGetNItems(ARR_NDIM(alpha_a), ARR_DIMS(alpha_a));
    state = palloc(sizeof(double) * 2 * k);
    state_null = palloc(sizeof(bool) * 2 * k);
    x = palloc(sizeof(double) * k);
    x_null = palloc(sizeof(bool) * k);
    alpha = palloc(sizeof(double) * k);
    alpha_null = palloc(sizeof(bool) * k);
    float8_array_values(alpha_a, k, "alpha", false, alpha, alpha_null);
    if (!PG_ARGISNULL(0))
        float8_array_values(PG_GETARG_ARRAYTYPE_P(0), 2 * k, "the state", true, state, state_null);
    else if (!PG_ARGISNULL(1))
        float8_array_values(PG_GETARG_ARRAYTYPE_P(1), 2 * k, "seed", false, state, state_null);
    else
        for (i = 0; i < 2 * k; i++)
            state_null[i] = true;
    if (PG_ARGISNULL(2))
        for (i = 0; i < k; i++)
            x_null[i] = true;
    else
    {
        x_a = PG_GETARG_ARRAYTYPE_P(2);
        float8_array_values(x_a, k, "x", true, x, x_null);
    }

    for (i = 0; i < k; i++)
    {
        double      a = alpha[i];

        if (state_null[i])
        {
            if (!x_null[i])
            {
                state[i] = x[i];
                state_null[i] = false;
                state[k + i] = 1.0;
                state_null[k + i] = false;
            }
        }
        else if (x_null[i])
        {
            /* PL/pgSQL: state[k+i] * (1 - alpha[i]), NULL if either is */
            if (!state_null[k + i] && !alpha_null[i])
                state[k + i] = state[k + i] * (1 - a);
            else
                state_null[k + i] = true;
        }
        else if (state[i] == x[i])
        {
            state[k + i] = 1.0;
            state_null[k + i] = false;
        }
        else
        {
            if (state_null[k + i] || alpha_null[i])
            {
                state_null[i] = true;   /* NULL arithmetic, as PL/pgSQL's */
            }
            else
            {
                double      w = state[k + i] * (1 - a);

                state[i] = (w * state[i] + a * x[i]) / (w + a);
            }
            state[k + i] = 1.0;
            state_null[k + i] = false;
        }
    }

    /* a new array in the per-row context: the aggregate copies it into its own and frees
     * the previous state itself */
    dims[0] = 2 * k;
    out = palloc(sizeof(Datum) * 2 * k);
    for (i = 0; i < 2 * k; i++)
        out[i] = Float8GetDatum(state[i]);
    result = construct_md_array(out, state_null, 1, dims, lbs, FLOAT8OID, sizeof(float8),
                                FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
    PG_RETURN_ARRAYTYPE_P(result);
}
