package postgres

// ReadNaively makes s read the ledger as far as it is visible, without the
// final-position rule: the ledger-order test shows that this skips events.
func ReadNaively(s *Store) { s.fin.naive = true }

// BeforeCommit runs f between each batch's writes and its COMMIT.
func BeforeCommit(s *Store, f func()) { s.fin.beforeCommit = f }
