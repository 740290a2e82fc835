-- The HTTP API's bearer token: only its SHA-256 is stored. Generated at the api role's first start (and printed
-- once) unless one is configured.
CREATE TABLE api_tokens (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    sha256     text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The sample browser pages completions of a campaign by id.
CREATE INDEX completions_campaign_id ON completions (campaign_id, id);
