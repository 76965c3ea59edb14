-- New table the recommended way (bigint identity, text, timestamptz), its index and a foreign key to orders
-- added in the same script: the table is new and empty, nothing to lock for long.
-- expect: none
-- explain: new-table
SET lock_timeout = '5s';
SET statement_timeout = '15min';
CREATE TABLE payments (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL,
    provider text NOT NULL,
    amount_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX payments_order_id_idx ON payments (order_id);
ALTER TABLE payments ADD CONSTRAINT payments_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);
