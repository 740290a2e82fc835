-- Campaigns as the grains run them: state, progress, the frozen inputs every silo needs (dataset rows, tokenizer,
-- model config, rules), counters of reported problems, evaluations and the learner's checkpoints.

ALTER TABLE campaigns
    ADD COLUMN mode            text    NOT NULL DEFAULT 'train' CHECK (mode IN ('train', 'collect')),
    ADD COLUMN total_steps     integer NOT NULL DEFAULT 0,
    ADD COLUMN steps_completed integer NOT NULL DEFAULT 0,
    ADD COLUMN policy_version  integer NOT NULL DEFAULT 0,
    ADD COLUMN base_dir        text    NOT NULL DEFAULT '',
    ADD COLUMN tokenizer       text,
    ADD COLUMN model_config    text,
    ADD COLUMN error           text,
    ADD COLUMN finished_at     timestamptz;
ALTER TABLE campaigns ADD CONSTRAINT campaigns_state
    CHECK (state IN ('created', 'running', 'paused', 'cancelled', 'completed', 'failed'));
CREATE INDEX campaigns_active ON campaigns (id) WHERE state IN ('created', 'running', 'paused');

-- The dataset, read once when the campaign is created, so that silos on other machines never need the file.
CREATE TABLE campaign_prompts (
    campaign_id bigint  NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    split       text    NOT NULL CHECK (split IN ('train', 'eval')),
    idx         integer NOT NULL,
    prompt      text    NOT NULL,
    answer      text,
    fields      jsonb   NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (campaign_id, split, idx)
);

-- Counters: reported problems (malformed rows, missing reward scores by rule, endpoint errors) and totals. Written in
-- the same transaction as the work that counted them, so each is counted once.
CREATE TABLE campaign_counters (
    campaign_id bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    name        text   NOT NULL,
    value       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, name)
);

-- The total reward of a completion, next to its per-rule scores.
ALTER TABLE completions ADD COLUMN reward double precision;

CREATE TABLE evaluations (
    campaign_id    bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    step           integer     NOT NULL,
    policy_version integer     NOT NULL,
    metrics        jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, step)
);

-- The learner's optimizer state at checkpoint steps (the weights are the policy version of that step).
CREATE TABLE learner_checkpoints (
    campaign_id    bigint      NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    step           integer     NOT NULL,
    policy_version integer     NOT NULL,
    epoch          bigint      NOT NULL,
    optimizer      bytea       NOT NULL,
    sha256         text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (campaign_id, step)
);
-- Optimizer moments do not compress: store them out of line without trying (pglz on 24 MB of floats costs ~0.4 s).
ALTER TABLE learner_checkpoints ALTER COLUMN optimizer SET STORAGE EXTERNAL;

-- A campaign's items of one step (rollout, reward and evaluation payloads all carry "step").
CREATE INDEX work_items_campaign_step ON work_items (campaign_id, ((payload->>'step')::int));
