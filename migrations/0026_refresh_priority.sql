-- A refresh yields the CPU to readers (issue "Serving features": the latest vector's p99 while
-- refreshes run on a machine whose cores the refresh fills). Every incremental model's
-- pre-hook (refresh_begin) calls udf.lower_priority(var refresh_nice, default 10) in its own
-- session, which dbt closes after the model and pg_cron after the job; the readers' sessions
-- keep nice 0 and the kernel's scheduler runs them first. A niceness is only ever raised:
-- lowering it back needs privileges a backend does not have.
create function udf.lower_priority(p_nice integer)
returns integer
language plpython3u
volatile
as $$
import os

if p_nice is None or not 0 <= p_nice <= 19:
    plpy.error("udf.lower_priority: nice is an integer from 0 to 19, got %s" % (p_nice,))
current = os.getpriority(os.PRIO_PROCESS, 0)
if p_nice > current:
    os.setpriority(os.PRIO_PROCESS, 0, p_nice)
    current = os.getpriority(os.PRIO_PROCESS, 0)
return current
$$;

comment on function udf.lower_priority(integer) is
    'Raise this backend''s nice value to p_nice (never lowers it); returns the nice value now.';
