-- Emails that could not be sent at once are retried from this table, not by
-- holding the Kafka partition: a row in 'sending' or 'retrying' is a durable
-- to-do that any notifier instance may take once next_attempt_at has passed.
--
--   sending    an instance holds the email until next_attempt_at (its lease)
--   retrying   the last attempt failed for now; try again at next_attempt_at
--   sent       the SMTP server accepted it
--   refused    the server refused the recipient or the message for good (5xx)
--   abandoned  still failing retry_give_up_seconds after the job ended

ALTER TABLE notifications
    -- The rendered message (RFC 5322 bytes, Message-ID included), stored
    -- before the first attempt so that every attempt sends the same bytes.
    ADD COLUMN message          bytea,
    ADD COLUMN next_attempt_at  timestamptz,
    ADD COLUMN created_at       timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN sent_at          timestamptz;

-- Rows from before this migration have no stored message to retry with.
UPDATE notifications
   SET state = 'abandoned',
       last_error = 'interrupted before retries existed (migration 0003); not resent'
 WHERE state = 'sending';

ALTER TABLE notifications DROP CONSTRAINT notifications_state_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_state_check
    CHECK (state IN ('sending', 'retrying', 'sent', 'refused', 'abandoned'));
ALTER TABLE notifications ADD CONSTRAINT notifications_pending_has_message
    CHECK (state NOT IN ('sending', 'retrying')
           OR (message IS NOT NULL AND next_attempt_at IS NOT NULL));

-- What the retry loop asks for: the pending emails that are due, oldest first.
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE state IN ('sending', 'retrying');
