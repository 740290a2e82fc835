-- The HTTP API's bearer token: only its SHA-256 is stored. Generated at the api role's first start (and printed
-- once) unless one is configured.
CREATE TABLE api_tokens (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    sha256     text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The sample browser pages completions of a campaign by id.
CREATE INDEX completions_campaign_id ON completions (campaign_id, id);

-- The sample browser's text search (ILIKE '%...%' over prompts and completions): trigram indexes. pg_trgm ships
-- with PostgreSQL and is a trusted extension (the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX completions_text_trgm ON completions USING gin (text gin_trgm_ops);
CREATE INDEX completions_prompt_trgm ON completions USING gin (prompt gin_trgm_ops);
