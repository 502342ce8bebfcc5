-- A mark each writing transaction leaves, so that a commit whose reply
-- was lost is looked up by what it wrote, not only by its transaction ID:
-- after a failover the promoted standby can hand out again the IDs of
-- transactions that never reached it. Marks older than a few minutes are
-- of no use and are deleted.
CREATE TABLE commit_marks (
    token text   PRIMARY KEY,
    at    bigint NOT NULL -- unix nanoseconds
);
