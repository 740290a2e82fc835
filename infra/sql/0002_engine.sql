-- The cluster engine: campaigns (minimal; the campaign issue extends them), nodes, the work queue with leases and
-- results, singleton leases with fencing epochs, policy versions, and the stores of completions, reward scores, step
-- metrics and SFT samples.

CREATE TABLE campaigns (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text        NOT NULL,
    state      text        NOT NULL DEFAULT 'created',
    spec       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A node is one silo process. Its generation grows each time the same node id registers again (a restart), so
-- that leases of an earlier incarnation can be told apart and released.
CREATE TABLE nodes (
    node_id      text        PRIMARY KEY,
    generation   bigint      NOT NULL,
    roles        text[]      NOT NULL DEFAULT '{}',
    capabilities jsonb       NOT NULL DEFAULT '{}'::jsonb,
    host         text        NOT NULL DEFAULT '',
    pid          integer     NOT NULL DEFAULT 0,
    state        text        NOT NULL DEFAULT 'alive' CHECK (state IN ('alive', 'dead', 'left')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE work_items (
    id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id      bigint      NOT NULL,
    kind             text        NOT NULL,
    idempotency_key  text        NOT NULL,
    payload          jsonb       NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                                 CHECK (state IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    attempt          integer     NOT NULL DEFAULT 0,
    max_attempts     integer     NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    priority         integer     NOT NULL DEFAULT 0,
    policy_version   integer,
    lease_node       text,
    lease_generation bigint,
    lease_expires_at timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    claimed_at       timestamptz,
    finished_at      timestamptz,
    CONSTRAINT work_items_idempotency UNIQUE (campaign_id, idempotency_key),
    CONSTRAINT work_items_lease_consistent CHECK ((state = 'running') = (lease_node IS NOT NULL))
);
-- Claim order among pending items, per kind (and per campaign and kind); partial indexes stay small because
-- claimed rows leave them. Claims name one kind per statement so that these give rows already in order.
CREATE INDEX work_items_claim ON work_items (kind, priority DESC, id) WHERE state = 'pending';
CREATE INDEX work_items_claim_campaign ON work_items (campaign_id, kind, priority DESC, id) WHERE state = 'pending';
CREATE INDEX work_items_running ON work_items (lease_node, lease_generation) WHERE state = 'running';
CREATE INDEX work_items_expiry ON work_items (lease_expires_at) WHERE state = 'running';
CREATE INDEX work_items_finished ON work_items (finished_at) WHERE state IN ('completed', 'failed', 'cancelled');
CREATE INDEX work_items_campaign ON work_items (campaign_id, state);
-- Claims and lease renewals update rows all the time: leave room on each page for HOT updates.
ALTER TABLE work_items SET (fillfactor = 70);

-- Finished items move here (see prune) so the hot table stays small. Same columns, no constraints on state.
CREATE TABLE work_items_archive (LIKE work_items INCLUDING DEFAULTS);
CREATE UNIQUE INDEX work_items_archive_key ON work_items_archive (campaign_id, idempotency_key);
CREATE INDEX work_items_archive_id ON work_items_archive (id);

-- At most one accepted result per item, ever: the primary key is the item.
CREATE TABLE work_results (
    item_id      bigint      PRIMARY KEY,
    campaign_id  bigint      NOT NULL,
    attempt      integer     NOT NULL,
    node_id      text        NOT NULL,
    generation   bigint      NOT NULL,
    result       jsonb       NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_results_campaign ON work_results (campaign_id);

-- Singletons (a campaign's coordinator and learner). The epoch grows at every change of owner; writes carry it.
CREATE TABLE singleton_leases (
    name             text        PRIMARY KEY,
    epoch            bigint      NOT NULL,
    owner_node       text        NOT NULL,
    owner_generation bigint      NOT NULL,
    expires_at       timestamptz NOT NULL,
    acquired_at      timestamptz NOT NULL DEFAULT now(),
    renewed_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policy_versions (
    campaign_id bigint      NOT NULL,
    version     integer     NOT NULL CHECK (version >= 0),
    uri         text        NOT NULL,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes  bigint      NOT NULL CHECK (size_bytes >= 0),
    lo_oid      oid,
    epoch       bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, version)
);

CREATE TABLE completions (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint      NOT NULL,
    step           integer     NOT NULL,
    item_id        bigint      NOT NULL,
    sample_index   integer     NOT NULL,
    policy_version integer     NOT NULL,
    prompt         text        NOT NULL,
    token_ids      integer[]   NOT NULL,
    text           text        NOT NULL,
    logprobs       real[]      NOT NULL,
    finish_reason  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT completions_once UNIQUE (item_id, sample_index),
    CONSTRAINT completions_logprobs_match CHECK (cardinality(token_ids) = cardinality(logprobs))
);
CREATE INDEX completions_campaign_step ON completions (campaign_id, step);

-- Per-rule reward scores; a NULL value is a missing score (the rule threw, timed out, or could not judge).
CREATE TABLE reward_scores (
    completion_id bigint           NOT NULL REFERENCES completions (id) ON DELETE CASCADE,
    rule          text             NOT NULL,
    value         double precision,
    PRIMARY KEY (completion_id, rule)
);

CREATE TABLE step_metrics (
    campaign_id bigint      NOT NULL,
    step        integer     NOT NULL,
    epoch       bigint      NOT NULL,
    metrics     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, step)
);

CREATE TABLE sft_samples (
    id             bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign_id    bigint           NOT NULL,
    step           integer          NOT NULL,
    policy_version integer          NOT NULL,
    completion_id  bigint,
    prompt         text             NOT NULL,
    reasoning      text             NOT NULL,
    answer         text             NOT NULL,
    reward         double precision,
    scores         jsonb            NOT NULL DEFAULT '{}'::jsonb,
    verdicts       jsonb            NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz      NOT NULL DEFAULT now()
);
-- A completion becomes at most one SFT sample.
CREATE UNIQUE INDEX sft_samples_completion ON sft_samples (completion_id) WHERE completion_id IS NOT NULL;
CREATE INDEX sft_samples_campaign ON sft_samples (campaign_id, id);

-- Keys of ingested batches: a batch written with a key is stored at most once (its rows commit with its key), so
-- bulk COPY can go straight into sft_samples and still be retried safely.
CREATE TABLE ingest_batches (
    batch_key   text        PRIMARY KEY,
    rows        integer     NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
