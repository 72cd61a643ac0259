-- A model may process writes of both kinds: the bar models read the staged one-minute bars,
-- loaded ones (kind bars) and ones derived from snapshots (kind l2). One row per model and
-- kind, so that an entry of a kind is pruned only once every model reading that kind has
-- processed it (refresh_end).
alter table ops.refresh_state drop constraint refresh_state_pkey;
alter table ops.refresh_state add primary key (model, kind);
comment on table ops.refresh_state is
    'Per incremental model and kind of write it reads: the snapshot of ops.invalidations its '
    'last run processed; an entry whose xid this snapshot does not see is pending for the model.';
