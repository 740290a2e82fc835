-- Self-verification per completion (issue 22), written by the reward worker in the transaction that writes the
-- rewards: bit 1 = a check line with a verdict (verifies), bit 2 = a check failed (detects a mistake), bit 4 = a check
-- failed, a later one passed and the final answer is judged correct (repairs; such a completion is 7). NULL = not
-- scored yet (and every completion scored before this migration). The sample browser filters on the bits.
ALTER TABLE completions ADD COLUMN reflection smallint CHECK (reflection BETWEEN 0 AND 7);

-- The browser's reflection filter pages by id through the completions that show any of it (its SQL says
-- reflection > 0 beside the bit test, so this index applies).
CREATE INDEX completions_reflecting ON completions (campaign_id, id) WHERE reflection > 0;
