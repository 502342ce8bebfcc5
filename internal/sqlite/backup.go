package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Backup writes a consistent copy of the database at path to dest while
// allot keeps serving: VACUUM INTO reads one snapshot (WAL readers never
// block the writer) and writes a compact, self-contained file.
// Each mistake is named in the operator's terms before SQLite is asked:
// SQLite would say only "unable to open database file (14)".
func Backup(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("backup: the database %s: %w", path, plainPathError(err))
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("backup: %s exists already; choose a new file name", dest)
	}
	if err := writableDir(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+url.Values{"_pragma": {fmt.Sprintf("busy_timeout(%d)", busyTimeout)}}.Encode())
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		os.Remove(dest)
		return fmt.Errorf("backup: %w", err)
	}
	return os.Chmod(dest, 0o600)
}

// Restore replaces the database at path with the backup src, after
// checking that src is an intact allot database and that no allot is using
// path. The old database, if any, is kept as path+".before-restore".
func Restore(ctx context.Context, src, path string) error {
	switch fi, err := os.Stat(src); {
	case err != nil:
		return fmt.Errorf("restore: the backup %s: %w", src, plainPathError(err))
	case fi.IsDir():
		return fmt.Errorf("restore: %s is a directory; name the backup file that allot backup wrote", src)
	}
	if err := check(ctx, src); err != nil {
		return fmt.Errorf("restore: %s: %w", src, err)
	}
	// Restoring onto a new machine: the data directory may not exist yet.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restore: creating the data directory: %w", plainPathError(err))
	}
	if _, err := os.Stat(path); err == nil {
		if err := notInUse(ctx, path); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		for _, suffix := range []string{"-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("restore: %w", err)
			}
		}
		if err := os.Rename(path, path+".before-restore"); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), ".restore-"+filepath.Base(path))
	if err := copyFile(src, tmp); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

// check verifies a database file: SQLite's integrity check, and allot's
// migrations applied.
func check(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return errors.New("not a backup made by allot backup: it is not a SQLite database")
	}
	if result != "ok" {
		return fmt.Errorf("integrity check: %s", result)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
		return errors.New("not a backup made by allot backup: a SQLite database, but not allot's")
	}
	return nil
}

// notInUse fails if an allot has the database open: every Open holds an
// exclusive lock on path+".lock" (SQLite's own locks cannot tell, in WAL
// mode, whether a reader is connected), and this tries to take it.
func notInUse(_ context.Context, path string) error {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("%s is in use by a running allot%s; stop it before restoring", path, holder(f))
	}
	return nil
}

// own takes the lock that makes this process the database's only user: the
// committer keeps the database's state in memory, so a second process
// writing the same file would make it wrong. The lock file names the
// holder's PID, for the message another process gets.
func own(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		msg := fmt.Sprintf("%s is in use by another allot%s; one process serves a SQLite database (use PostgreSQL for several)", path, holder(f))
		f.Close()
		return nil, errors.New(msg)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// holder names the process that holds a lock file, as " (pid N)".
func holder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n]))); err == nil && pid > 0 {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return ""
}

func copyFile(src, dest string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writableDir checks that files can be created in dir, saying which
// directory is wrong and how.
func writableDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the directory %s does not exist; create it first (mkdir -p %s)", dir, dir)
	case err != nil:
		return fmt.Errorf("the directory %s: %w", dir, plainPathError(err))
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".allot-backup-*")
	if err != nil {
		return fmt.Errorf("cannot create files in %s: %w", dir, plainPathError(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// plainPathError is the reason of a file system error without the
// operation and path it repeats ("stat x: no such file or directory"),
// for messages that name the path themselves.
func plainPathError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		switch {
		case errors.Is(pe.Err, fs.ErrNotExist):
			return errors.New("no such file")
		case errors.Is(pe.Err, fs.ErrPermission):
			return errors.New("permission denied")
		}
		return pe.Err
	}
	return err
}
