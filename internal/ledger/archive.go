package ledger

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/allot-dev/allot/internal/quota"
)

// Archive is a directory of the ledger's events, written before they are
// pruned: one gzip-compressed NDJSON file per hour of event time
// (events-2026-12-01T09.ndjson.gz, one event per line as the API shows
// it), and MANIFEST.json, which gives each file's sequence range, event
// count, size and SHA-256. Files only grow, by whole gzip members, and the
// manifest is rewritten (atomically) after each; a file longer than its
// manifest entry after a crash is cut back to it, so no event is written
// twice. Copy the files anywhere (object storage, tape): a file whose hour
// has passed never changes again.
type Archive struct {
	dir string
	mu  sync.Mutex
	m   manifest
}

// ManifestName is the manifest's file name.
const ManifestName = "MANIFEST.json"

type manifest struct {
	ArchivedTo int64       `json:"archived_to"` // every event up to it is in a file
	Files      []FileEntry `json:"files"`
}

// FileEntry describes one archive file.
type FileEntry struct {
	Name     string `json:"name"`
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Events   int64  `json:"events"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256"`
	// hashState resumes the checksum after a restart, without reading the
	// file again.
	HashState []byte `json:"hash_state"`
}

// OpenArchive opens (creating) an archive directory and repairs what a
// crash left: files longer than the manifest says are cut back.
func OpenArchive(dir string) (*Archive, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	a := &Archive{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("archive: %w", err)
	default:
		if err := json.Unmarshal(b, &a.m); err != nil {
			return nil, fmt.Errorf("archive: %s: %w", ManifestName, err)
		}
	}
	for _, f := range a.m.Files {
		path := filepath.Join(dir, f.Name)
		info, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("archive: %s is in the manifest but: %w", f.Name, err)
		}
		if info.Size() > f.Bytes {
			if err := os.Truncate(path, f.Bytes); err != nil {
				return nil, fmt.Errorf("archive: %w", err)
			}
		}
	}
	return a, nil
}

// ArchivedTo is the sequence number every event up to which is archived.
func (a *Archive) ArchivedTo() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m.ArchivedTo
}

// Append archives up to limit events after ArchivedTo, none after upTo, and
// returns how many.
func (a *Archive) Append(ctx context.Context, store quota.Store, upTo int64, limit int) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	es, err := store.Events(ctx, quota.EventFilter{After: a.m.ArchivedTo, Limit: limit})
	if err != nil {
		return 0, err
	}
	if i := slices.IndexFunc(es, func(e *quota.Event) bool { return e.Seq > upTo }); i >= 0 {
		es = es[:i]
	}
	if len(es) == 0 {
		// Nothing stands between: the range is archived.
		if upTo > a.m.ArchivedTo {
			a.m.ArchivedTo = upTo
			return 0, a.save()
		}
		return 0, nil
	}
	byFile := map[string][]*quota.Event{}
	var names []string
	for _, e := range es {
		name := "events-" + e.Time.UTC().Format("2006-01-02T15") + ".ndjson.gz"
		if byFile[name] == nil {
			names = append(names, name)
		}
		byFile[name] = append(byFile[name], e)
	}
	for _, name := range names {
		if err := a.write(name, byFile[name]); err != nil {
			return 0, err
		}
	}
	a.m.ArchivedTo = es[len(es)-1].Seq
	if len(es) < limit {
		a.m.ArchivedTo = max(a.m.ArchivedTo, upTo)
	}
	if err := a.save(); err != nil {
		return 0, err
	}
	return len(es), nil
}

// write appends events to a file as one gzip member and updates its entry.
func (a *Archive) write(name string, es []*quota.Event) error {
	i := slices.IndexFunc(a.m.Files, func(f FileEntry) bool { return f.Name == name })
	if i < 0 {
		a.m.Files = append(a.m.Files, FileEntry{Name: name, FirstSeq: es[0].Seq})
		i = len(a.m.Files) - 1
	}
	entry := &a.m.Files[i]
	h := sha256.New()
	if len(entry.HashState) > 0 {
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(entry.HashState); err != nil {
			return fmt.Errorf("archive: %s: resuming the checksum: %w", name, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(a.dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer f.Close()
	counted := &countingWriter{w: io.MultiWriter(f, h)}
	zw := gzip.NewWriter(counted)
	enc := json.NewEncoder(zw)
	for _, e := range es {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("archive: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	entry.LastSeq, entry.Events, entry.Bytes = es[len(es)-1].Seq, entry.Events+int64(len(es)), entry.Bytes+counted.n
	entry.SHA256, entry.HashState = hex.EncodeToString(h.Sum(nil)), state
	return nil
}

// save writes the manifest atomically.
func (a *Archive) save() error {
	b, err := json.MarshalIndent(a.m, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(a.dir, "."+ManifestName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(a.dir, ManifestName)); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	d, err := os.Open(a.dir)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer d.Close()
	return d.Sync()
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Filter selects events read back from an archive.
type Filter struct {
	Tenant   string    // "" for all
	From, To time.Time // zero: unbounded
}

// Read verifies every file of the archive in dir against its manifest
// (size and SHA-256), then calls fn with each event the filter selects, in
// sequence order.
func Read(dir string, f Filter, fn func(*quota.Event) error) error {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("archive: %s: %w", ManifestName, err)
	}
	files := slices.Clone(m.Files)
	slices.SortFunc(files, func(a, b FileEntry) int { return int(a.FirstSeq - b.FirstSeq) })
	for _, entry := range files {
		if err := readFile(dir, entry, f, fn); err != nil {
			return err
		}
	}
	return nil
}

func readFile(dir string, entry FileEntry, f Filter, fn func(*quota.Event) error) error {
	path := filepath.Join(dir, entry.Name)
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(file, entry.Bytes)); err != nil {
		return fmt.Errorf("archive: %s: %w", entry.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != entry.SHA256 {
		return fmt.Errorf("archive: %s does not match its checksum (%s, the manifest says %s)", entry.Name, sum, entry.SHA256)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return err
	}
	zr, err := gzip.NewReader(bufio.NewReader(io.LimitReader(file, entry.Bytes)))
	if err != nil {
		return fmt.Errorf("archive: %s: %w", entry.Name, err)
	}
	dec := json.NewDecoder(zr)
	for {
		e := &quota.Event{}
		if err := dec.Decode(e); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("archive: %s: %w", entry.Name, err)
		}
		if f.Tenant != "" && e.Tenant != f.Tenant || !f.From.IsZero() && e.Time.Before(f.From) || !f.To.IsZero() && e.Time.After(f.To) {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
