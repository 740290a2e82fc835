-- Orleans cluster membership, owned by DeepSeekRL (src/Grains/DeepSeekRL.Storage/Membership implements Orleans'
-- IMembershipTable over these tables). Silos find each other here and nowhere else. A cluster is named by its id:
-- the database's shared cluster is 'deepseekrl-<cluster_info.cluster_id>'; a process that runs a campaign in-process
-- ('campaign run', 'demo') has a one-silo cluster of its own, so two clusters on one database never cross.
--
-- The home-made node registry (heartbeats, dead-node sweep) is replaced by Orleans' failure detection: a work item or
-- singleton lease is held by a silo (its name and Orleans generation), and is released once that silo's membership
-- row says Dead.

-- One row per cluster: the table version Orleans' membership protocol advances with every change of a row. etag
-- grows with every write to the version, so a writer that read an older table loses the race.
CREATE TABLE membership_versions (
    cluster_id text        PRIMARY KEY,
    version    integer     NOT NULL DEFAULT 0,
    etag       bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per silo incarnation (address, port, generation). status is Orleans' SiloStatus (3 Active, 6 Dead, ...);
-- suspect_times holds the death votes ("silo-address,ticks" separated by '|'); roles are DeepSeekRL's roles of the
-- silo; etag grows at every update of the row.
CREATE TABLE membership (
    cluster_id      text        NOT NULL REFERENCES membership_versions (cluster_id) ON DELETE CASCADE,
    address         text        NOT NULL,
    port            integer     NOT NULL,
    generation      integer     NOT NULL,
    silo_name       text        NOT NULL,
    host_name       text        NOT NULL,
    status          integer     NOT NULL,
    proxy_port      integer     NOT NULL DEFAULT 0,
    roles           text[]      NOT NULL DEFAULT '{}',
    suspect_times   text,
    start_time      timestamptz NOT NULL,
    i_am_alive_time timestamptz NOT NULL,
    etag            bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster_id, address, port, generation)
);

-- Leases are looked up by their holder's name and generation.
CREATE INDEX membership_silo ON membership (silo_name, generation);

DROP TABLE nodes;
