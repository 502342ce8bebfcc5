package quota

import (
	"context"
	"encoding/json"
	"time"
)

// Store is what allot keeps durably. Implementations: internal/sqlite and
// internal/postgres, both held to internal/storetest.
//
// Every change goes through the engine, which keeps the state it decides on
// in memory and writes what each batch changed: Begin a transaction for the
// batch's tenants, Apply its writes, Commit. Reads see committed data only.
type Store interface {
	// Shared reports whether other processes may write the database: then
	// Begin locks tenants and reports their versions, so the engine can
	// tell what another process changed. A store that is not shared has
	// one process as its only writer.
	Shared() bool
	// LoadTenants reads tenants (every one, for ids nil) with their
	// overrides, usage and versions, for the engine's memory.
	LoadTenants(ctx context.Context, ids []string) ([]*TenantRecord, error)
	// LoadWebhooks reads every subscription and their version.
	LoadWebhooks(ctx context.Context) ([]*Webhook, int64, error)
	// Begin starts the transaction of one batch that touches tenants. A
	// shared store locks them (in sorted order, so no two transactions
	// deadlock) until the transaction ends.
	Begin(ctx context.Context, tenants []string) (Tx, error)
	// Commit makes transactions durable, in order, and returns how many
	// it committed: each one after a failed one is rolled back, since it
	// was decided on the failed one's effects. An error whose outcome is
	// not known is CodeOutcomeUnknown.
	Commit(ctx context.Context, txs []Tx) (int, error)
	// Watch calls changed with the tenants other processes change, as they
	// commit (nil: it cannot tell which, so all), until ctx ends. A store
	// that is not shared returns at once.
	Watch(ctx context.Context, changed func(tenants []string)) error

	Tenant(ctx context.Context, id string) (*Tenant, error) // CodeNotFound if absent
	Tenants(ctx context.Context) ([]*Tenant, error)         // ordered by ID
	Usage(ctx context.Context, tenant string) (map[string]int64, error)
	Consumer(ctx context.Context, tenant, id string) (*Consumer, error) // CodeNotFound if absent
	Consumers(ctx context.Context, f ConsumerFilter) ([]*Consumer, error)
	// Expired lists reservations whose time ran out at now, oldest first.
	Expired(ctx context.Context, now time.Time, limit int) ([]*Consumer, error)
	Token(ctx context.Context, name string) (*Token, error) // CodeNotFound if absent
	Tokens(ctx context.Context) ([]*Token, error)
	Events(ctx context.Context, f EventFilter) ([]*Event, error)
	// LastSeq is the ledger's newest sequence number, 0 when it is empty:
	// every event up to it is visible to reads that start after this one.
	LastSeq(ctx context.Context) (int64, error)
	Requests(ctx context.Context, f RequestFilter) ([]*Request, error)
	Request(ctx context.Context, tenant, id string) (*Request, error) // CodeNotFound if absent
	Webhooks(ctx context.Context) ([]*Webhook, error)
	// AllUsage answers the usage of every tenant, in one read.
	AllUsage(ctx context.Context) (map[string]map[string]int64, error)

	// LeaseDeliveries takes up to limit webhook deliveries that are due at
	// now and first in line for their webhook and tenant, and hides them
	// from every other caller (any process) for lease.
	LeaseDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// FinishDelivery records an attempt: delivered (the delivery is gone),
	// or failed with the time of the next attempt (zero: give up); and its
	// outcome as its webhook's latest, unless a later one is recorded.
	FinishDelivery(ctx context.Context, a Attempt) error
	// WebhookHealth reports how each subscription's deliveries go, ordered
	// by webhook id.
	WebhookHealth(ctx context.Context) ([]*WebhookHealth, error)

	// The ledger over months (see internal/ledger): snapshots of tenants as
	// of checkpoints, and pruning of what retention lets go.

	// PutSnapshots records tenants' state as of a checkpoint.
	PutSnapshots(ctx context.Context, snaps []*Snapshot) error
	// SnapshotsAt returns, for each moment (ascending), the tenant's newest
	// snapshot no later than it and the position of the first one after it:
	// a history's starting points and the ranges of events between them,
	// in one read.
	SnapshotsAt(ctx context.Context, tenant string, moments []time.Time) ([]SnapshotAt, error)
	// EventRanges returns the tenant's events in the ranges (ascending,
	// disjoint), in sequence order, at most limit of them.
	EventRanges(ctx context.Context, tenant string, ranges []SeqRange, limit int) ([]*Event, error)
	// Snapshots returns, for each tenant, its newest snapshot at or before
	// seq.
	Snapshots(ctx context.Context, tenants []string, seq int64) (map[string]*Snapshot, error)
	// Checkpoint records that every tenant changed up to seq has its
	// snapshot at seq; Checkpoints lists them, oldest first.
	Checkpoint(ctx context.Context, seq int64, at time.Time) error
	Checkpoints(ctx context.Context) ([]Checkpoint, error)
	// Horizon is how far pruning went. Zero before anything was pruned.
	Horizon(ctx context.Context) (Horizon, error)
	// Prune removes one chunk of what p lets go and reports what it did.
	Prune(ctx context.Context, p Prune) (Pruned, error)
	// LedgerSize is the ledger's rows and an estimate of its bytes.
	LedgerSize(ctx context.Context) (rows, bytes int64, err error)
	// TryLead makes this process the one that runs a job every process
	// could, until release; ok is false when another process holds it.
	TryLead(ctx context.Context, job string) (release func(), ok bool, err error)

	// Pin records value under key unless a value is recorded already, and
	// returns the recorded value: a setting every process sharing the store
	// must agree on, such as the fingerprint of the key that seals secrets.
	Pin(ctx context.Context, key, value string) (string, error)

	// Ping reports whether the store is reachable and migrated.
	Ping(ctx context.Context) error
	Close() error
}

// Snapshot is a tenant's state as of a ledger position: what a replay of
// the ledger up to Seq holds for it.
type Snapshot struct {
	Tenant string
	Seq    int64
	Time   time.Time // of the event at Seq
	Usage  map[string]int64
	Hard   map[string]int64 // hard quotas set by quota.set events
	Plan   string
	Parent string
	Below  map[string]int64 // what its descendants use (usage.subtree events)
}

// SnapshotAt is a tenant's newest snapshot no later than a moment (nil:
// none), and the position of its first snapshot after the moment (0: none).
type SnapshotAt struct {
	Snapshot *Snapshot
	Next     int64
}

// SeqRange is the ledger positions after After and before Before (0: no
// end), of events no later than Until.
type SeqRange struct {
	After, Before int64
	Until         time.Time
}

// Checkpoint is a ledger position every tenant has a snapshot for.
type Checkpoint struct {
	Seq  int64
	Time time.Time
}

// Horizon is how far pruning went: every event after Seq is kept, and at
// or before it only audit events remain, those after AuditSeq.
type Horizon struct {
	Seq      int64
	Time     time.Time // of the event at Seq: the oldest time still answered
	AuditSeq int64
}

// Prune says what one pruning step may remove.
type Prune struct {
	// Horizon: events at or before it, checkpoints before it, and the
	// snapshots no time after it needs.
	Horizon Checkpoint
	// AuditBefore: audit events (EventType.Audit) are removed only when
	// older than this; zero keeps them.
	AuditBefore time.Time
	Limit       int // rows per step
}

// Pruned is what one pruning step removed.
type Pruned struct {
	Events, Snapshots int
	// Done: nothing is left for this horizon.
	Done bool
}

// Attempt is the outcome of one attempt at a webhook delivery.
type Attempt struct {
	Delivery  int64 // the outbox row
	Webhook   string
	At        time.Time // when the attempt ended
	Delivered bool
	Status    int       // the receiver's HTTP status; 0 if none answered
	Error     string    // why it failed; "" when delivered
	Next      time.Time // when a failed delivery is tried again; zero: never
}

// WebhookHealth is how a subscription's deliveries go: what waits in the
// outbox, and the outcome of the latest attempt, kept after its delivery
// has left the outbox.
type WebhookHealth struct {
	Webhook     string
	Pending     int64     // deliveries waiting
	NextAttempt time.Time // the earliest one due; zero when none waits
	LastAttempt time.Time // zero: never attempted
	LastStatus  int       // the latest attempt's HTTP status; 0 if none answered
	LastError   string    // why the latest attempt failed; "" if it delivered
}

// Failing reports whether the latest attempt failed.
func (h *WebhookHealth) Failing() bool { return !h.LastAttempt.IsZero() && h.LastError != "" }

// TenantRecord is a tenant as the engine keeps it.
type TenantRecord struct {
	Tenant *Tenant
	Usage  map[string]int64
	// Below is what the tenant's descendants use, by resource: its tree
	// usage is Usage plus Below.
	Below   map[string]int64
	Version int64 // increased by every commit that changes the tenant
}

// Tx is the transaction of one batch. Its reads see what is committed (a
// shared store's, under the batch's locks); reads take sets of keys, so a
// batch costs a handful of round trips, not a few per claim.
type Tx interface {
	// Versions are the versions of the batch's tenants as stored (0: the
	// tenant does not exist) and of the webhooks; a store that is not
	// shared reports none.
	Versions() (tenants map[string]int64, webhooks int64)
	// Tenants reads tenants again, after another process changed them.
	Tenants(ctx context.Context, ids []string) ([]*TenantRecord, error)
	Consumers(ctx context.Context, keys []ConsumerKey) (map[ConsumerKey]*Consumer, error)
	// TenantConsumers lists up to limit of a tenant's consumers, of the
	// given kinds (nil: all).
	TenantConsumers(ctx context.Context, tenant string, kinds []string, limit int) ([]*Consumer, error)
	// CountConsumers counts a tenant's consumers.
	CountConsumers(ctx context.Context, tenant string) (int64, error)
	// Subtree maps each descendant of root to its parent.
	Subtree(ctx context.Context, root string) (map[string]string, error)
	Tokens(ctx context.Context, names []string) (map[string]*Token, error)
	// Requests returns the requests named by ids and every pending request
	// of the tenants.
	Requests(ctx context.Context, tenants, ids []string) (map[string]*Request, error)
	// Apply records what the batch writes; Store.Commit writes it.
	Apply(w *Writes)
	// Rollback ends a transaction that will not be committed.
	Rollback()
}

// Writes is everything one batch changes, applied in the order of the fields.
type Writes struct {
	DeleteTenants   []string // with their overrides, usage and tokens
	CreateTenants   []*Tenant
	Quotas          []QuotaRow
	Limits          []LimitRow
	DeleteConsumers []ConsumerKey
	PutConsumers    []*Consumer
	Usage           []UsageRow
	Below           []UsageRow // what each tenant's descendants use
	PutTokens       []*Token
	PutRequests     []*Request
	PutWebhooks     []*Webhook
	DeleteWebhooks  []string
	Events          []*Event
	// Deliveries queue events for webhooks (the outbox), in the same
	// transaction as the events.
	Deliveries []DeliveryRow
	// Versions are the new versions of the tenants the batch changed, and
	// WebhooksVersion the webhooks' (0: unchanged); written by shared
	// stores only.
	Versions        map[string]int64
	WebhooksVersion int64
}

// DeliveryRow queues Events[Event] for a webhook.
type DeliveryRow struct {
	Webhook string
	Event   int // index into Writes.Events
	Tenant  string
}

// Empty reports whether w changes nothing.
func (w *Writes) Empty() bool {
	return len(w.DeleteTenants)+len(w.CreateTenants)+len(w.Quotas)+len(w.Limits)+
		len(w.DeleteConsumers)+len(w.PutConsumers)+len(w.Usage)+len(w.Below)+len(w.PutTokens)+len(w.Events)+
		len(w.PutRequests)+len(w.PutWebhooks)+len(w.DeleteWebhooks) == 0
}

// QuotaRow sets one tenant override of a resource.
type QuotaRow struct {
	Tenant   string
	Resource string
	QuotaOverride
}

// LimitRow sets one tenant override of a kind's limit.
type LimitRow struct {
	Tenant string
	Key    string // LimitKey(kind, limit)
	Range
}

// UsageRow is a tenant's total use of one resource.
type UsageRow struct {
	Tenant   string
	Resource string
	Used     int64
}

// ConsumerFilter selects a page of a tenant's consumers, ordered by ID.
type ConsumerFilter struct {
	Tenant string
	Kind   string // "" for any
	State  string // "" for any
	After  string // ID to start after
	Limit  int
}

// Event is one immutable ledger entry, written in the transaction of the
// change it records.
type Event struct {
	Seq     int64           `json:"seq"`
	Time    time.Time       `json:"time"`
	Type    EventType       `json:"type"`
	Tenant  string          `json:"tenant,omitempty"`
	Subject string          `json:"subject,omitempty"` // what changed: a consumer, resource, limit or token
	Actor   string          `json:"actor"`
	Role    Role            `json:"role"`
	Reason  string          `json:"reason,omitempty"`
	Before  json.RawMessage `json:"before,omitempty"`
	After   json.RawMessage `json:"after,omitempty"`
}

// RequestFilter selects requests, newest first.
type RequestFilter struct {
	Tenant string // "" for all
	Status string // "" for any
	Limit  int
}

// EventFilter selects a page of the ledger in sequence order.
type EventFilter struct {
	Tenant string // "" for all
	After  int64
	Limit  int
}

// Role is what a token may do.
type Role string

const (
	RoleAdmin   Role = "admin"   // everything
	RoleService Role = "service" // a control plane: writes consumers of any tenant, reads everything
	RoleTenant  Role = "tenant"  // reads its own tenant, asks for changes
	RoleSystem  Role = "system"  // allot itself, e.g. expiring reservations
)

// Valid reports whether r is a role a token may have.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleService || r == RoleTenant }

// Token is an API credential: a bearer token, of which only a hash is
// stored, or an AK/SK access key pair (Name is the access key), whose secret
// the server must read to verify signatures and so keeps sealed (encrypted).
type Token struct {
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Tenant    string     `json:"tenant,omitempty"`
	Hash      []byte     `json:"-"` // bearer tokens
	Sealed    []byte     `json:"-"` // access keys: the encrypted secret key`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// Actor is who asks for a change; it is recorded in the ledger.
type Actor struct {
	Name   string
	Role   Role
	Tenant string // for RoleTenant: the only tenant it may touch
}
