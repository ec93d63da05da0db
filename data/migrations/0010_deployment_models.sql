-- A deployment of the `learned` strategy freezes its model: the spec (kind, target, horizon,
-- walk-forward block, window, embargo, the features by name) and the first session of the
-- history it trains on. Each session's book refits on the walk-forward's schedule.
ALTER TABLE deployments ADD COLUMN model JSON;
