-- The cluster's identity: one row, created with the schema.
CREATE TABLE cluster_info (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    cluster_id uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO cluster_info DEFAULT VALUES;
