-- isms-ledger on PostgreSQL, schema version 1.
--
-- Every ledger's bytes, as the key-value pairs of docs/FORMAT.md: one row per pair, keyed by
-- the ledger's name, the keyspace (`records`, `artifacts`, `derived/...`) and the key. Keys
-- compare as bytes (bytea order), which is the order the ledger's scans rely on.
CREATE TABLE isms_kv (
    ledger text COLLATE "C" NOT NULL,
    space  text COLLATE "C" NOT NULL,
    key    bytea NOT NULL,
    value  bytea NOT NULL,
    PRIMARY KEY (ledger, space, key)
);

-- The writer lease of each ledger: one server appends at a time. A server takes the lease
-- when it is free or expired (by the database's clock), adding one to `term`; every batch's
-- transaction renews it only `WHERE term = <the writer's term>`, so a writer whose lease was
-- taken over cannot write.
CREATE TABLE isms_writer_lease (
    ledger     text COLLATE "C" PRIMARY KEY,
    term       bigint NOT NULL,
    holder     text NOT NULL,
    expires_at timestamptz NOT NULL
);
