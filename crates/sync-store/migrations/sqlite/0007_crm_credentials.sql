-- Per-tenant CRM tokens, sealed with XChaCha20-Poly1305: `sealed` holds the access and
-- refresh tokens, encrypted under the key named by `key_id` with a random `nonce` per
-- row and the tenant and CRM as associated data. The other columns are not secret.
CREATE TABLE crm_credentials (
    tenant        TEXT    NOT NULL,
    crm           TEXT    NOT NULL,
    key_id        TEXT    NOT NULL,
    nonce         BLOB   NOT NULL,
    sealed        BLOB   NOT NULL,
    expires_at_ns INTEGER,
    instance_url  TEXT,
    account_id    TEXT,
    updated_at_ns INTEGER NOT NULL,
    PRIMARY KEY (tenant, crm)
);
CREATE INDEX crm_credentials_key_id ON crm_credentials (key_id);
